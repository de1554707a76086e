"""The list keeper: credit.events -> the two list feeds for sector systems.

For every ledger entry that changes a red or black list (a listing, a delisting, an expiry, a
repair of a listing, a red-list honour) it writes, in ONE Kafka transaction with its input offsets
(ledger/platform/transactional.py):

* credit.lists.changes: a ListChange (key: entity id), every change, kept forever;
* credit.lists.current: the entity's ListStatus on that list (key '<entity id>|<list kind>',
  compacted), with `listed = false` for a delisting instead of a null tombstone.

Both go to the partition of the ledger entry, so the keeper that owns ledger partition p restores
its state from credit.lists.current partition p on assignment (consumers/list_keeper/core.py). The list
change itself comes from ledger/domain/lists.py, as for the projector's list_entries.
`ListFollower` is the part it shares with the alerter, which follows the ledger the same way.

Run: python -m ops.run list-keeper [--instance 0] [--metrics-port 9105] (wired in ops/root.py)
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from consumers.list_keeper.core import ListBook, Output
from ledger.domain import lists
from ledger.domain.rulebook import RuleBook
from ledger.platform.kafka_util import KafkaClients
from ledger.platform.transactional import Out, TransactionalProcessor, read_partitions
from schemas import registry

CHANGES = Counter("ledger_list_changes_total", "List changes written to the feeds", ["list_kind", "status"])
SKIPPED = Counter("ledger_list_entries_skipped_total",
                  "Ledger entries passed over by their event-type header (a type that changes no list)", ["processor"])
INCONSISTENT = Counter("ledger_list_inconsistent_total",
                       "Ledger entries ending a listing the process does not hold (reported, not written)",
                       ["processor"])


class ListFollower(TransactionalProcessor):
    """Follows credit.events with a ListBook whose state is a compacted topic written in the same
    transaction (key '<entity id>|<list kind>', the ledger's partition), restored on assignment."""

    source = registry.EVENTS
    state_topic: registry.Topic
    counter: Counter  # counted per output once its transaction commits, labelled as in self.counts

    def __init__(self, kafka: KafkaClients, rules: RuleBook, instance: str = "0") -> None:
        super().__init__(kafka, instance)
        self.book = ListBook(rules)
        self.counts: list[tuple[str, str]] = []

    async def restore(self, partitions: list[int]) -> None:
        records = await read_partitions(self.kafka, self.state_topic, partitions)
        for p in partitions:
            self.book.restore(p, [registry.decode(m.value, "ListStatus")[1] for m in records[p] if m.value])
        self.log.info("state restored", partitions=partitions, records=sum(len(r) for r in records.values()))

    def forget(self, partition: int) -> None:
        self.book.forget(partition)

    def emit(self, partition: int, out: Output) -> list[Out]:
        """The records of one list change besides the state."""
        raise NotImplementedError

    def transform(self, partition: int, msg: Any) -> list[Out]:
        event_type = dict(msg.headers or ()).get("event-type")
        if event_type is not None and event_type.decode() not in lists.MAY_CHANGE_LISTS:
            SKIPPED.labels(self.name).inc()
            return []  # by its header: an entry that changes no list is not even decoded
        _, entry = registry.decode(msg.value, "LedgerEntry")
        _, rec = registry.decode(entry["submission"])
        records: list[Out] = []
        for out in self.book.apply(partition, msg.offset, entry, rec):
            if out.inconsistent:
                INCONSISTENT.labels(self.name).inc()
                self.log.error("an ending of a listing this process does not hold", event_id=entry["event_id"],
                               entity=entry["entity_id"], partition=partition, offset=msg.offset)
                return []
            records += [*self.emit(partition, out), Out(self.state_topic, out.status_key.encode(),
                                                        registry.encode("ListStatus", out.status), partition)]
        return records

    def committed(self) -> None:
        self.book.commit()
        for labels in self.counts:
            self.counter.labels(*labels).inc()
        self.counts.clear()

    def aborted(self) -> None:
        self.book.rollback()
        self.counts.clear()


class ListKeeper(ListFollower):
    name = "list-keeper"
    group = "credit-list-keeper"
    state_topic = registry.LISTS_CURRENT
    counter = CHANGES

    def emit(self, partition: int, out: Output) -> list[Out]:
        c = out.change
        self.counts.append((c["list_kind"], c["status"]))
        self.log.info("list change", event_id=c["event_id"], entity=out.change_key, list_kind=c["list_kind"],
                      status=c["status"], ref=c["ref"])
        return [Out(registry.LISTS_CHANGES, out.change_key.encode(), registry.encode("ListChange", c), partition)]
