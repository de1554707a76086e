"""The list keeper: credit.events -> the list feeds and the joint-punishment alerts, in one hop.

For every ledger entry that changes a red or black list (a listing, a delisting, an expiry, a
repair of a listing, a red-list honour) it writes, in ONE Kafka transaction with its input offsets
(ledger/platform/transactional.py):

* credit.lists.changes: a ListChange (key: entity id), every change, kept forever;
* credit.lists.current: the entity's ListStatus on that list (key '<entity id>|<list kind>',
  compacted), with `listed = false` for a delisting instead of a null tombstone;
* credit.alerts: one Alert per (change, measure, implementing department), keyed by the department,
  the catalogue applied being the version the sequencer judged the entry under
  (ledger/domain/alerts.py: impose, lift, or maintain when another listing keeps the measure in
  force); headers `alert-id` and `event-id`, so a receiver can deduplicate without decoding.

Each entry is read once: an entry whose `event-type` header names a type that changes no list is
passed over without being decoded. The feeds and the state go to the partition of the ledger entry,
so the keeper that owns ledger partition p restores its state from credit.lists.current partition p
on assignment (consumers/list_keeper/core.py); the list change itself comes from
ledger/domain/lists.py, as for the projector's list_entries. Exactly once under kill -9: an entry
delivered again is skipped by its entity version; the alert id is deterministic besides.

Run: python -m ops.run list-keeper [--instance 0] [--metrics-port 9105] (wired in ops/root.py)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from consumers.list_keeper.core import ListBook, Output
from ledger.domain import alerts, lists
from ledger.domain.rulebook import RuleBook
from ledger.platform.clock import SYSTEM
from ledger.platform.kafka_util import KafkaClients
from ledger.platform.transactional import Out, TransactionalProcessor, read_partitions
from schemas import registry

CHANGES = Counter("ledger_list_changes_total", "List changes written to the feeds", ["list_kind", "status"])
ALERTS = Counter("ledger_alerts_total", "Alerts written, by implementing department and action",
                 ["department", "action"])
SKIPPED = Counter("ledger_list_entries_skipped_total",
                  "Ledger entries passed over by their event-type header (a type that changes no list)", ["processor"])
INCONSISTENT = Counter("ledger_list_inconsistent_total",
                       "Ledger entries ending a listing the process does not hold (reported, not written)",
                       ["processor"])


def list_entry(msg: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A ledger record's entry and its submission, decoded once; None, undecoded, when its
    `event-type` header names a type that changes no list (registry.SchemaError: no schema reads it)."""
    event_type = dict(msg.headers or ()).get("event-type")
    if event_type is not None and event_type.decode() not in lists.MAY_CHANGE_LISTS:
        return None
    _, entry = registry.decode(msg.value, "LedgerEntry")
    return entry, registry.decode(entry["submission"])[1]


def alert_out(alert: dict[str, Any]) -> Out:
    """The credit.alerts record of one Alert (key: the department; headers: its id and the ledger
    event that raised it, so a receiver can deduplicate or pick out an event's alerts undecoded)."""
    return Out(registry.ALERTS, alert["department"].encode(), registry.encode("Alert", alert),
               headers=(("alert-id", alert["alert_id"].encode()), ("event-id", alert["trigger_event_id"].encode())))


class ListKeeper(TransactionalProcessor):
    name = "list-keeper"
    group = "credit-list-keeper"
    source = registry.EVENTS
    state_topic = registry.LISTS_CURRENT

    def __init__(self, kafka: KafkaClients, rules: RuleBook, instance: str = "0",
                 clock: Callable[[], datetime] = SYSTEM.now) -> None:
        super().__init__(kafka, instance)
        self.rules = rules
        self.book = ListBook(rules)
        self.clock = clock  # the alerts' alerted_at
        self.changes: list[tuple[str, str]] = []  # counted once the transaction commits
        self.alerted: list[tuple[str, str]] = []

    async def restore(self, partitions: list[int]) -> None:
        records = await read_partitions(self.kafka, self.state_topic, partitions)
        for p in partitions:
            self.book.restore(p, [registry.decode(m.value, "ListStatus")[1] for m in records[p] if m.value])
        self.log.info("state restored", partitions=partitions, records=sum(len(r) for r in records.values()))

    def forget(self, partition: int) -> None:
        self.book.forget(partition)

    def transform(self, partition: int, msg: Any) -> list[Out]:
        found = list_entry(msg)
        if found is None:
            SKIPPED.labels(self.name).inc()
            return []  # by its header: an entry that changes no list is not even decoded
        entry, rec = found
        records: list[Out] = []
        for out in self.book.apply(partition, msg.offset, entry, rec):
            if out.inconsistent:
                INCONSISTENT.labels(self.name).inc()
                self.log.error("an ending of a listing this process does not hold", event_id=entry["event_id"],
                               entity=entry["entity_id"], partition=partition, offset=msg.offset)
                return []
            records += self.emit(partition, out)
        return records

    def emit(self, partition: int, out: Output) -> list[Out]:
        """The records of one list change: the change, the entity's status on that list, its alerts."""
        c = out.change
        found = self.alerts(out)
        self.changes.append((c["list_kind"], c["status"]))
        self.alerted += [(a["department"], a["action"]) for a in found]
        self.log.info("list change", event_id=c["event_id"], entity=out.change_key, list_kind=c["list_kind"],
                      status=c["status"], ref=c["ref"], catalogue_version=out.catalogue_version, alerts=len(found))
        return [Out(registry.LISTS_CHANGES, out.change_key.encode(), registry.encode("ListChange", c), partition),
                Out(self.state_topic, out.status_key.encode(), registry.encode("ListStatus", out.status), partition),
                *(alert_out(a) for a in found)]

    def alerts(self, out: Output) -> list[dict[str, Any]]:
        """The Alert records of one list change, under the catalogue its ledger entry was judged under."""
        c = out.change
        imposed = None if out.imposed_under is None else self.rules.at("punishment_catalogue", out.imposed_under)
        decisions = alerts.alerts_for(self.rules.at("punishment_catalogue", out.catalogue_version), c["change_id"],
                                      c["list_kind"], c["category"], alerts.listed(c), c["active_list_kinds"],
                                      imposed_under=imposed)
        return alerts.alert_records(decisions, c, self.clock())

    def committed(self) -> None:
        self.book.commit()
        for labels in self.changes:
            CHANGES.labels(*labels).inc()
        for labels in self.alerted:
            ALERTS.labels(*labels).inc()
        self.changes.clear()
        self.alerted.clear()

    def aborted(self) -> None:
        self.book.rollback()
        self.changes.clear()
        self.alerted.clear()
