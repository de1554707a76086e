"""The sequencer: the single writer of credit.events.

Reads credit.submissions (read_committed, one consumer group), judges each submission
(ledger/sequencer/core.py) and writes, in ONE Kafka transaction per batch (the shared loop of
ledger/platform/transactional.py): the ledger entries to
credit.events (same partition number as the submission), the outcomes to credit.outcomes, the
state changelog to credit.sequencer.state, and the consumed submission offsets. A crash at any point
leaves either all of a batch or none of it. When a partition is assigned, its state is restored from
the changelog, starting from a local snapshot when there is a usable one (ledger/sequencer/store.py;
written every LEDGER_SEQUENCER_SNAPSHOT_SECONDS, default 60, and at a clean stop), so a restart does
not re-read every event id ever seen.

Run: python -m ops.run sequencer [--instance 0] [--metrics-port 9101] (wired in ops/root.py)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from ledger.platform import logs
from ledger.platform.kafka_util import KafkaClients, caught_up
from ledger.platform.transactional import TransactionalProcessor
from ledger.records import submissions
from ledger.sequencer import store as state_snapshot
from ledger.sequencer.core import (
    PartitionState,
    Sequencing,
    Verdict,
    entity_record,
    outcome_record,
    seen_record,
)
from schemas import registry

GROUP = "credit-sequencer"
VERIFY_THREADS = 2
log = logs.get("sequencer")

SUBMISSIONS = Counter("ledger_submissions_total", "Submissions judged by the sequencer", ["status"])
REJECTIONS = Counter("ledger_rejections_total", "Refused submissions by reason code", ["code"])
WARNINGS = Counter("ledger_identity_warnings_total", "Accepted events flagged for review", ["code"])
BATCH_SECONDS = Histogram("ledger_sequencer_batch_seconds", "Time to judge and commit one batch")
APPENDED = Counter("ledger_events_appended_total", "Ledger entries appended to credit.events")
RESTORED = Counter("ledger_sequencer_restored_records_total", "State entries (entity states, event ids) restored, by source", ["source"])
RESTORE_SECONDS = Gauge("ledger_sequencer_restore_seconds", "Duration of the last state restore")
SIGNATURE_CHECKS = Counter("ledger_sequencer_signature_checks_total",
                           "Signature work per kind: first_scheme (one Ed25519 per submission), batch_path (an "
                           "inclusion path walked), batch_signature (one Ed25519 per distinct signed batch), "
                           "batch_signature_remembered (a submission whose batch an earlier poll verified)", ["kind"])
SNAPSHOTS = Counter("ledger_sequencer_snapshots_total", "Local state snapshots written")


class SequencerService(TransactionalProcessor):
    """The sequencer's Kafka side on the shared transactional loop (ledger/platform/transactional.py):
    the judgement is `core` (a Sequencing), the batch's outputs are written by `write`, the state is
    restored from the changelog (and a local snapshot) when a partition is assigned."""

    name = "sequencer"
    source = registry.SUBMISSIONS
    group = GROUP
    poll_ms = 200
    measure_lag = False

    def __init__(self, kafka: KafkaClients, core: Sequencing, snapshot_dir: Path, snapshot_seconds: float = 60.0,
                 instance: str = "0", max_records: int = 2000, verified_batches: int = 4096) -> None:
        super().__init__(kafka, instance, max_records)
        self.core = core
        self._pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify")
        self.verified_batches = submissions.VerifiedBatches(verified_batches)
        self.snapshot_dir = snapshot_dir
        self.snapshot_seconds = snapshot_seconds
        self._snapshot_at = time.monotonic()
        self._changed: set[int] = set()  # partitions with commits since their last snapshot
        self._changelog_next: dict[int, int] = {}  # partition -> offset after its last committed record
        self._snapshot_task: asyncio.Task[None] | None = None
        # the batch in flight: its signature checks, start, verdicts and changelog sends
        self._verified: list[bool | None] = []
        self._started = 0.0
        self._judged: list[tuple[int, Verdict, Any]] = []
        self._statuses: dict[str, int] = {}
        self._state_sent: list[tuple[int, asyncio.Future[Any]]] = []

    def consumer_options(self) -> dict[str, Any]:
        return {}

    def producer_options(self) -> dict[str, Any]:
        return {"linger_ms": 2, "max_batch_size": 262144, "request_timeout_ms": 30000,
                # retriable answers inside a transaction (CONCURRENT_TRANSACTIONS while the previous
                # transaction's markers are written, NOT_ENOUGH_REPLICAS on a busy single broker) are
                # retried after this; aiokafka's default of 100 ms stalled whole batches
                "retry_backoff_ms": 10}

    def running_fields(self) -> dict[str, Any]:
        return {"instance": self.instance, "bootstrap": self.kafka.bootstrap_servers}

    def forget(self, partition: int) -> None:
        self.core.forget(partition)

    async def restore(self, partitions: list[int]) -> None:
        """Rebuild the partitions' state: the local snapshot (if usable), then the changelog from the
        snapshot's offset on (or from the beginning). Slow parts run in a thread, so the heartbeat
        of the group membership goes on."""
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        c = self.kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                                auto_offset_reset="earliest")
        await c.start()
        try:
            tps = {p: TopicPartition(registry.SEQUENCER_STATE.name, p) for p in partitions}
            c.assign(list(tps.values()))
            begin = await c.beginning_offsets(list(tps.values()))
            end = await c.end_offsets(list(tps.values()))
            records: dict[int, list[dict[str, Any]]] = {p: [] for p in partitions}
            bases: dict[int, PartitionState] = {}
            for p, tp in tps.items():
                snap = await loop.run_in_executor(None, self._usable_snapshot, p, begin[tp], end[tp])
                if snap is None:
                    await c.seek_to_beginning(tp)
                else:
                    bases[p] = snap.state
                    c.seek(tp, snap.changelog_offset)
            while not await caught_up(c, end):
                batch = await c.getmany(*tps.values(), timeout_ms=500)
                for tp, msgs in batch.items():
                    for m in msgs:
                        if m.value is not None:
                            records[tp.partition].append(registry.decode(m.value, "SequencerState")[1])
            for p, tp in tps.items():
                await loop.run_in_executor(None, self.core.restore, p, records[p], bases.get(p))
                self._changelog_next[p] = end[tp]
            from_changelog = sum(len(r) for r in records.values())
            from_snapshot = sum(len(b.entities) + len(b.seen) for b in bases.values())
            RESTORED.labels("snapshot").inc(from_snapshot)
            RESTORED.labels("changelog").inc(from_changelog)
            RESTORE_SECONDS.set(time.monotonic() - started)
            log.info("state restored", partitions=partitions, from_snapshot=from_snapshot,
                     from_changelog=from_changelog, snapshots=sorted(bases),
                     seconds=round(time.monotonic() - started, 3))
        finally:
            await c.stop()

    def _usable_snapshot(self, partition: int, begin: int, end: int) -> state_snapshot.Snapshot | None:
        try:
            snap = state_snapshot.read(self.snapshot_dir, partition)
        except state_snapshot.SnapshotUnusable as exc:
            log.warning("state snapshot ignored; reading the whole changelog", partition=partition, reason=str(exc))
            return None
        if snap is not None and not begin <= snap.changelog_offset <= end:
            log.warning("state snapshot ignored; reading the whole changelog", partition=partition,
                        reason=f"it covers the changelog up to offset {snap.changelog_offset}, but the changelog "
                               f"now runs from {begin} to {end} (was the topic recreated?)")
            return None
        return snap

    def _snapshot(self, force: bool = False) -> None:
        """Start writing a local snapshot of each owned partition changed since its last one, at most
        every `snapshot_seconds`, in the background (one writer at a time), so batches do not wait.
        Called between batches, when every change in memory is committed. The offset recorded is where
        the partition's changelog ended after the last committed batch: the snapshot covers exactly
        the records before it. A failure is logged and costs only a slower next restore."""
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return
        if not force and time.monotonic() - self._snapshot_at < self.snapshot_seconds:
            return
        self._snapshot_at = time.monotonic()
        work = [(p, self._changelog_next[p], self.core.frozen_state(p))
                for p in sorted(self._changed) if self.core.ready(p) and p in self._changelog_next]
        self._changed.clear()
        if work:
            self._snapshot_task = asyncio.create_task(self._write_snapshots(work))

    async def _write_snapshots(self, work: list[tuple[int, int, PartitionState]]) -> None:
        loop = asyncio.get_running_loop()
        for p, offset, frozen in work:
            try:
                await loop.run_in_executor(None, state_snapshot.write, self.snapshot_dir, p, offset, frozen)
            except Exception:
                log.exception("state snapshot failed", partition=p)
                self._changed.add(p)
                continue
            SNAPSHOTS.inc()
            log.info("state snapshot written", partition=p, changelog_offset=offset,
                     entities=len(frozen.entities), event_ids=len(frozen.seen))

    async def _final_snapshot(self) -> None:
        if self._snapshot_task is not None:
            await self._snapshot_task
        self._snapshot_task = None
        self._snapshot(force=True)
        if self._snapshot_task is not None:
            await self._snapshot_task

    def between_batches(self) -> None:
        self._snapshot()

    async def finish(self) -> None:
        await self._final_snapshot()

    async def _verify(self, records: list[tuple[Any, Any, dict[str, bytes]]]) -> list[bool | None]:
        """Check the poll's signatures. A batch-scheme submission costs its inclusion path; each distinct
        signed batch (signer, department, size, root, signature) one Ed25519 verification, none when
        an earlier poll verified it (`verified_batches`). First-scheme submissions are verified one by
        one. The Ed25519 verifications run in VERIFY_THREADS threads (they release the GIL)."""
        keys = self.core.public_keys
        pending = self.verified_batches.plan([(m.value, h) for _tp, m, h in records], keys)
        singles = [(records[i][1].value, records[i][2]) for i in pending.singles]
        claims = list(pending.batches)
        single_results, batch_results = await asyncio.gather(
            self._in_threads(lambda c: [submissions.signature_valid(v, h, keys) for v, h in c], singles),
            self._in_threads(lambda c: [submissions.batch_signed(b, keys) for b in c], claims))
        SIGNATURE_CHECKS.labels("first_scheme").inc(len(singles))
        SIGNATURE_CHECKS.labels("batch_path").inc(len(records) - len(singles))
        SIGNATURE_CHECKS.labels("batch_signature").inc(len(claims))
        SIGNATURE_CHECKS.labels("batch_signature_remembered").inc(pending.cached)
        return self.verified_batches.settle(pending, single_results, batch_results)

    async def _in_threads(self, check: Callable[[list[Any]], list[Any]], items: list[Any]) -> list[Any]:
        """check(items) split over VERIFY_THREADS threads, results in the items' order."""
        if len(items) < 2:
            return check(items)
        chunks = [items[i::VERIFY_THREADS] for i in range(VERIFY_THREADS)]
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(loop.run_in_executor(self._pool, check, c) for c in chunks))
        out: list[Any] = [None] * len(items)
        for i, chunk_results in enumerate(results):
            out[i::VERIFY_THREADS] = chunk_results
        return out

    async def prepare(self, batch: dict[TopicPartition, list[Any]]) -> None:
        self._started = time.monotonic()
        self._judged, self._statuses, self._state_sent = [], {}, []
        self._verified = await self._verify(self._records(batch))

    @staticmethod
    def _records(batch: dict[TopicPartition, list[Any]]) -> list[tuple[TopicPartition, Any, dict[str, bytes]]]:
        return [(tp, m, dict(m.headers or ())) for tp, msgs in batch.items() for m in msgs]

    async def write(self, producer: AIOKafkaProducer, batch: dict[TopicPartition, list[Any]]) -> dict[str, int]:
        """Judge the batch and send, in its transaction: the accepted entries to credit.events, then
        (once their offsets are known) the changelog records and the outcomes."""
        produced: dict[str, int] = {}

        async def send(topic: registry.Topic, key: bytes, value: bytes, partition: int,
                       headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
            produced[topic.name] = produced.get(topic.name, 0) + 1
            return await producer.send(topic.name, key=key, value=value, partition=partition, headers=headers)

        judged, statuses, state_sent = self._judged, self._statuses, self._state_sent
        for (tp, m, headers), ok in zip(self._records(batch), self._verified, strict=True):
            v = self.core.judge(tp.partition, m.offset, m.key, m.value, headers, ok)
            fut = None
            if v.status == "ACCEPTED":
                assert v.entity_id is not None
                fut = await send(registry.EVENTS, v.entity_id.encode(), v.entry_bytes, tp.partition,
                                 entry_headers(v))
            judged.append((tp.partition, v, fut))
        last_state: dict[str, tuple[int, Verdict]] = {}
        for partition, v, fut in judged:
            if fut is not None:
                md = await fut
                seen = self.core.record_position(partition, v, md.offset)
                state_sent.append((partition, await send(*_state(partition, seen_record(v, seen)))))
                last_state[v.entity_id or ""] = (partition, v)
                out = outcome_record(v, partition, md.offset, self.core.now())
            elif v.seen is not None:
                # the original may be an entry of this very batch, placed a moment ago
                original = self.core.seen(partition, v.event_id) or v.seen
                out = outcome_record(v, original.ledger_partition, original.ledger_offset, self.core.now())
            else:
                out = outcome_record(v, None, None, self.core.now())
            # outcomes are co-partitioned with the submissions they answer (readers read all partitions)
            await send(registry.OUTCOMES, v.event_id.encode(), registry.encode("Outcome", out), partition)
            statuses[v.status] = statuses.get(v.status, 0) + 1
        for partition, v in last_state.values():
            state_sent.append((partition, await send(*_state(partition, entity_record(v)))))
        return produced

    def aborted(self) -> None:
        self.core.rollback()

    def committed(self) -> None:
        self.core.commit()
        for p, fut in self._state_sent:  # committed: where the partition's changelog now ends
            self._changelog_next[p] = max(self._changelog_next.get(p, 0), fut.result().offset + 1)
            self._changed.add(p)
        for _, v, _ in self._judged:
            SUBMISSIONS.labels(v.status).inc()
            for r in v.reasons:
                REJECTIONS.labels(r.code).inc()
                self.log.info("submission refused", event_id=v.event_id, status=v.status, field=r.field, code=r.code)
            for w in v.warnings:
                WARNINGS.labels(w).inc()
            if v.status == "ACCEPTED":
                APPENDED.inc()
        BATCH_SECONDS.observe(time.monotonic() - self._started)
        self.log.info("batch committed", submissions=len(self._judged),
                      **{k.lower(): n for k, n in self._statuses.items()},
                      seconds=round(time.monotonic() - self._started, 4))


def entry_headers(v: Verdict) -> list[tuple[str, bytes]]:
    """The headers of a ledger entry on credit.events (a copy of fields of the entry, which alone is
    chained and signed), so that a reader can route or skip an entry without decoding it."""
    assert v.entry is not None
    return [("event-type", v.entry["event_type"].encode()), ("event-id", v.event_id.encode())]


def _state(partition: int, record: tuple[str, dict[str, Any]]) -> tuple[registry.Topic, bytes, bytes, int]:
    """A changelog record of credit.sequencer.state, in the partition of the state it belongs to."""
    key, value = record
    return registry.SEQUENCER_STATE, key.encode(), registry.encode("SequencerState", value), partition
