"""The sequencer: the single writer of credit.events.

Reads credit.submissions (read_committed, one consumer group), judges each submission
(ledger/sequencer/core.py) and writes, in ONE Kafka transaction per batch: the ledger entries to
credit.events (same partition number as the submission), the outcomes to credit.outcomes, the
state changelog to credit.sequencer.state, and the consumed submission offsets. A crash at any point
leaves either all of a batch or none of it. When a partition is assigned, its state is restored from
the changelog, starting from a local snapshot when there is a usable one (ledger/sequencer/store.py;
written every LEDGER_SEQUENCER_SNAPSHOT_SECONDS, default 60, and at a clean stop), so a restart does
not re-read every event id ever seen.

Run: python -m ledger.sequencer.service [--metrics-port 9101]
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from ledger.domain.rulebook import RuleBook
from ledger.platform import config, logs, process, signing
from ledger.platform.kafka_util import caught_up
from ledger.records import submissions
from ledger.rules import loader
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
SNAPSHOTS = Counter("ledger_sequencer_snapshots_total", "Local state snapshots written")


class _Rebalance(ConsumerRebalanceListener):
    """Forget revoked partitions; pause newly assigned ones until the main loop has restored their state.

    The restore is NOT done here: aiokafka runs this callback inside the group join, before it starts
    the heartbeat task again, so a restore longer than session.timeout.ms would get the member thrown
    out of the group, the partitions assigned again and the restore started again, for ever.
    """

    def __init__(self, svc: SequencerService) -> None:
        self.svc = svc

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self.svc.core.forget(tp.partition)
            self.svc.to_restore.pop(tp.partition, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        fresh = [tp for tp in assigned if not self.svc.core.ready(tp.partition)]
        if fresh and self.svc.consumer is not None:
            self.svc.consumer.pause(*fresh)
            for tp in fresh:
                self.svc.assignments += 1
                self.svc.to_restore[tp.partition] = self.svc.assignments


class SequencerService:
    def __init__(self, settings: config.Settings, rules: RuleBook, instance: str = "0",
                 max_records: int = 2000) -> None:
        self.s = settings
        self.instance = instance
        self.max_records = max_records
        self.core = Sequencing(signing.public_keys(settings.keys_dir), settings.id_pepper, rules)
        self._stop = asyncio.Event()
        self._pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify")
        self.fatal: BaseException | None = None
        self.consumer: AIOKafkaConsumer | None = None
        # assigned and paused, state not yet restored: partition -> the assignment it came with
        self.to_restore: dict[int, int] = {}
        self.assignments = 0
        self.snapshot_dir = settings.stack_dir / "sequencer-state" / f"instance-{instance}"
        self._snapshot_at = time.monotonic()
        self._changed: set[int] = set()  # partitions with commits since their last snapshot
        self._changelog_next: dict[int, int] = {}  # partition -> offset after its last committed record
        self._snapshot_task: asyncio.Task[None] | None = None

    def stop(self) -> None:
        self._stop.set()

    async def restore(self, partitions: list[int]) -> None:
        """Rebuild the partitions' state: the local snapshot (if usable), then the changelog from the
        snapshot's offset on (or from the beginning). Slow parts run in a thread, so the heartbeat
        of the group membership goes on."""
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        c = AIOKafkaConsumer(bootstrap_servers=self.s.bootstrap_servers, group_id=None, enable_auto_commit=False,
                             isolation_level="read_committed", auto_offset_reset="earliest")
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
        every settings.sequencer_snapshot_seconds, in the background (one writer at a time), so batches do not wait.
        Called between batches, when every change in memory is committed. The offset recorded is where
        the partition's changelog ended after the last committed batch: the snapshot covers exactly
        the records before it. A failure is logged and costs only a slower next restore."""
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return
        if not force and time.monotonic() - self._snapshot_at < self.s.sequencer_snapshot_seconds:
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

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.s.bootstrap_servers, group_id=GROUP, enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="earliest", max_poll_records=self.max_records,
            # static membership: a restarted sequencer with the same instance id takes its partitions back
            # at once instead of waiting for the old member's session to time out
            group_instance_id=f"{GROUP}-{self.instance}",
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.s.bootstrap_servers, transactional_id=f"{GROUP}-{self.instance}",
            linger_ms=2, max_batch_size=262144, request_timeout_ms=30000,
            # retriable answers inside a transaction (CONCURRENT_TRANSACTIONS while the previous
            # transaction's markers are written, NOT_ENOUGH_REPLICAS on a busy single broker) are
            # retried after this; aiokafka's default of 100 ms stalled whole batches
            retry_backoff_ms=10,
        )
        await producer.start()
        self.consumer = consumer
        consumer.subscribe([registry.SUBMISSIONS.name], listener=_Rebalance(self))
        await consumer.start()
        log.info("sequencer running", instance=self.instance, bootstrap=self.s.bootstrap_servers)
        try:
            while not self._stop.is_set():
                if self.to_restore:
                    await self._restore_pending(consumer)
                    continue
                batch = await consumer.getmany(timeout_ms=200)
                if batch:
                    await self._process(consumer, producer, batch)
                self._snapshot()
            if self.fatal is None:
                await self._final_snapshot()
        finally:
            await consumer.stop()
            await producer.stop()
            log.info("sequencer stopped")
        if self.fatal is not None:
            raise RuntimeError("the sequencer stopped because it could not restore its state") from self.fatal

    async def _restore_pending(self, consumer: AIOKafkaConsumer) -> None:
        """Restore the state of the paused, newly assigned partitions while the heartbeat keeps the
        membership alive, then resume them. A partition revoked meanwhile is left alone."""
        started_with = dict(self.to_restore)
        partitions = sorted(started_with)
        try:
            await self.restore(partitions)
        except Exception as exc:  # without its state the sequencer must not judge anything: stop
            log.exception("state restore failed; stopping")
            self.fatal = exc
            self.stop()
            return
        for p in partitions:
            if self.to_restore.get(p) == started_with[p]:
                del self.to_restore[p]
            else:  # revoked during the restore (and maybe assigned again): the state read may be stale
                self.core.forget(p)
        consumer.resume(*[tp for tp in consumer.assignment() if self.core.ready(tp.partition)])

    async def _verify(self, records: list[tuple[Any, Any, dict[str, bytes]]]) -> list[bool | None]:
        """Check the batch's signatures in VERIFY_THREADS threads (Ed25519 verification releases the GIL)."""
        keys = self.core.public_keys
        chunks = [records[i::VERIFY_THREADS] for i in range(VERIFY_THREADS)]
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(loop.run_in_executor(
            self._pool, lambda c=c: [submissions.signature_valid(m.value, h, keys) for _tp, m, h in c])
            for c in chunks))
        out: list[bool | None] = [None] * len(records)
        for i, chunk_results in enumerate(results):
            out[i::VERIFY_THREADS] = chunk_results
        return out

    @staticmethod
    async def _send_state(producer: AIOKafkaProducer, partition: int,
                          record: tuple[str, dict[str, Any]]) -> asyncio.Future[Any]:
        key, value = record
        return await producer.send(registry.SEQUENCER_STATE.name, key=key.encode(),
                                   value=registry.encode("SequencerState", value), partition=partition)

    async def _process(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, batch: Any) -> None:
        unready = [tp for tp in batch if not self.core.ready(tp.partition)]
        if unready:  # records fetched while the partition's state is still being restored: read them later
            for tp in unready:
                consumer.seek(tp, batch[tp][0].offset)
            batch = {tp: msgs for tp, msgs in batch.items() if tp not in unready}
            if not batch:
                await asyncio.sleep(0.1)
                return
        started = time.monotonic()
        statuses: dict[str, int] = {}
        try:
            records = [(tp, m, dict(m.headers or ())) for tp, msgs in batch.items() for m in msgs]
            verified = await self._verify(records)
            state_sent: list[tuple[int, asyncio.Future[Any]]] = []
            async with producer.transaction():
                judged = []
                for (tp, m, headers), ok in zip(records, verified, strict=True):
                    v = self.core.judge(tp.partition, m.offset, m.key, m.value, headers, ok)
                    fut = None
                    if v.status == "ACCEPTED":
                        assert v.entity_id is not None
                        fut = await producer.send(registry.EVENTS.name, key=v.entity_id.encode(),
                                                  value=v.entry_bytes, partition=tp.partition)
                    judged.append((tp.partition, v, fut))
                last_state: dict[str, tuple[int, Verdict]] = {}
                for partition, v, fut in judged:
                    if fut is not None:
                        md = await fut
                        seen = self.core.record_position(partition, v, md.offset)
                        state_sent.append((partition, await self._send_state(producer, partition,
                                                                              seen_record(v, seen))))
                        last_state[v.entity_id or ""] = (partition, v)
                        out = outcome_record(v, partition, md.offset)
                    elif v.seen is not None:
                        # the original may be an entry of this very batch, placed a moment ago
                        original = self.core.seen(partition, v.event_id) or v.seen
                        out = outcome_record(v, original.ledger_partition, original.ledger_offset)
                    else:
                        out = outcome_record(v, None, None)
                    # outcomes are co-partitioned with the submissions they answer (readers read all partitions)
                    await producer.send(registry.OUTCOMES.name, key=v.event_id.encode(),
                                        value=registry.encode("Outcome", out), partition=partition)
                    statuses[v.status] = statuses.get(v.status, 0) + 1
                for partition, v in last_state.values():
                    state_sent.append((partition, await self._send_state(producer, partition, entity_record(v))))
                await producer.send_offsets_to_transaction(
                    {tp: msgs[-1].offset + 1 for tp, msgs in batch.items() if msgs}, GROUP)
        except Exception:
            self.core.rollback()
            for tp, msgs in batch.items():
                consumer.seek(tp, msgs[0].offset)
            log.exception("batch aborted; it will be read again", submissions=sum(len(m) for m in batch.values()))
            await asyncio.sleep(1)
            return
        self.core.commit()
        for p, fut in state_sent:  # committed: where the partition's changelog now ends
            self._changelog_next[p] = max(self._changelog_next.get(p, 0), fut.result().offset + 1)
            self._changed.add(p)
        for _, v, _ in judged:
            SUBMISSIONS.labels(v.status).inc()
            for r in v.reasons:
                REJECTIONS.labels(r.code).inc()
                log.info("submission refused", event_id=v.event_id, status=v.status, field=r.field, code=r.code)
            for w in v.warnings:
                WARNINGS.labels(w).inc()
            if v.status == "ACCEPTED":
                APPENDED.inc()
        BATCH_SECONDS.observe(time.monotonic() - started)
        log.info("batch committed", submissions=len(judged), **{k.lower(): n for k, n in statuses.items()},
                 seconds=round(time.monotonic() - started, 4))


def main() -> None:
    p = process.parser("python -m ledger.sequencer.service", __doc__, 9101)
    p.add_argument("--instance", default="0", help="stable id of this sequencer process (its transactional id "
                   "is credit-sequencer-<instance>; a restarted process with the same id fences the old one)")
    args = p.parse_args()
    rules = loader.load()
    process.run(args, lambda a: SequencerService(config.load(), rules, instance=a.instance))


if __name__ == "__main__":
    main()
