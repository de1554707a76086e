"""Read given records of credit.events back from Kafka (read_committed), and compare an entity's
ledger copy (PostgreSQL) with the log itself: the auditor's check that the copy is the log.

`compare` is pure: it takes the copy's rows, the log's records at the copy's positions and the
notary's leaf hashes, recomputes the hash chain from the log's bytes and reports every divergence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ledger.audit.merkle import leaf_hash
from ledger.platform.kafka_access import KafkaAccess
from ledger.records import chain
from schemas import registry


class LogReader:
    """One consumer without a group, assigned by hand; reads are serialised (seek + fetch)."""

    def __init__(self, kafka: KafkaAccess | Callable[[], KafkaAccess], topic: str = registry.EVENTS.name) -> None:
        # a principal that may read the topic (an auditor, the query API), or how to get it when the
        # first read comes (a web app is built before anything asks it for the log)
        self.kafka = kafka
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            # a short fetch wait: after a seek near the log's end, a long-polling fetch in flight would
            # otherwise hold the next read for up to fetch_max_wait_ms (500 ms by default)
            kafka = self.kafka() if callable(self.kafka) else self.kafka
            c = AIOKafkaConsumer(**kafka.options(), group_id=None, enable_auto_commit=False,
                                 isolation_level="read_committed", auto_offset_reset="none", fetch_max_wait_ms=5)
            await c.start()
            self._consumer = c
        return self._consumer

    async def records(self, partition: int, offsets: list[int], timeout_s: float = 10.0) -> dict[int, bytes]:
        """offset -> the record's value, for those of `offsets` the log holds (committed)."""
        async with self._lock:
            c = await self._started()
            tp = TopicPartition(self.topic, partition)
            if c.assignment() != {tp}:
                c.assign([tp])  # only the partition read: no fetching of the others in between
            end = (await c.end_offsets([tp]))[tp]
            found: dict[int, bytes] = {}
            wanted = sorted(o for o in set(offsets) if 0 <= o < end)
            i = 0
            while i < len(wanted):
                c.seek(tp, wanted[i])
                batch = await c.getmany(tp, timeout_ms=int(timeout_s * 1000), max_records=500)
                msgs = batch.get(tp, [])
                if not msgs:
                    break
                got = {m.offset: m.value for m in msgs}
                last = msgs[-1].offset
                while i < len(wanted) and wanted[i] <= last:
                    if wanted[i] in got:
                        found[wanted[i]] = got[wanted[i]]
                    i += 1
            return found

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def compare(entity_id: str, rows: list[dict[str, Any]], log: Mapping[int, bytes],
            leaves: Mapping[int, tuple[int, bytes]] | None = None) -> list[str]:
    """Divergences between the ledger copy's rows (by version) and the log; empty when they agree."""
    problems: list[str] = []
    entries = []
    for r in rows:
        where = f"version {r['version']} (partition {r['partition']}, offset {r['offset']})"
        raw = log.get(r["offset"])
        if raw is None:
            problems.append(f"{where}: the copy names a record the log does not hold")
            continue
        try:
            _, e = registry.decode(raw, expect="LedgerEntry")
        except registry.SchemaError as exc:
            problems.append(f"{where}: the log's record is not a readable LedgerEntry ({exc})")
            continue
        if (e["entity_id"], e["entity_version"]) != (entity_id, r["version"]):
            problems.append(f"{where}: the log has {e['entity_id']} version {e['entity_version']} there")
            continue
        if bytes(r["hash"]) != e["hash"]:
            problems.append(f"{where}: the copy's hash {bytes(r['hash']).hex()[:16]}... differs from the log's "
                            f"{e['hash'].hex()[:16]}...")
        if r["event_id"] != e["event_id"] or r["event_type"] != e["event_type"]:
            problems.append(f"{where}: the copy's event {r['event_id']} ({r['event_type']}) is "
                            f"{e['event_id']} ({e['event_type']}) in the log")
        if leaves is not None:
            leaf = leaves.get(r["offset"])
            if leaf is not None and leaf[1] != leaf_hash(raw):
                problems.append(f"{where}: the notary's leaf {leaf[0]} is not the hash of the log's record")
        entries.append(e)
    problems += [f"log: {p}" for p in chain.broken_links(entries)]
    versions = [r["version"] for r in rows]
    if versions != list(range(1, len(rows) + 1)):
        problems.append(f"the copy's versions are not 1..{len(rows)} without a gap: {versions[:20]}")
    return problems
