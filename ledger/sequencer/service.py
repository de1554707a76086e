"""The sequencer: the single writer of credit.events.

Reads credit.submissions (read_committed, one consumer group), judges each submission
(ledger/sequencer/core.py) and writes, in ONE Kafka transaction per batch (the shared loop of
ledger/platform/transactional.py): the ledger entries to
credit.events (same partition number as the submission), the outcomes to credit.outcomes, the
state changelog to credit.sequencer.state, and the consumed submission offsets. A crash at any point
leaves either all of a batch or none of it. Each owned partition's state lives in a local RocksDB
store (ledger/sequencer/store.py), written after each committed batch together with the changelog
offset it covers; when a partition is assigned, only the changelog from the store's offset on is
read, so a restart takes seconds whatever the ledger's size, and memory does not grow with it.

Run: python -m ops.run sequencer [--instance 0] [--metrics-port 9101] (wired in ops/root.py)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from ledger.platform import logs, process
from ledger.platform.clock import BrokerClock
from ledger.platform.kafka_util import KafkaClients, caught_up
from ledger.platform.transactional import TransactionalProcessor
from ledger.records import submissions
from ledger.sequencer import store as state_store
from ledger.sequencer.core import (
    Changes,
    Sequencing,
    Verdict,
    changes_of,
    entity_record,
    outcome_record,
    seen_record,
)
from schemas import registry

GROUP = "credit-sequencer"
VERIFY_THREADS = 2
INLINE_CHECKS = 16  # fewer signature checks than this in a poll run in the event loop itself
log = logs.get("sequencer")

SUBMISSIONS = Counter("ledger_submissions_total", "Submissions judged by the sequencer", ["status"])
REJECTIONS = Counter("ledger_rejections_total", "Refused submissions by reason code", ["code"])
WARNINGS = Counter("ledger_identity_warnings_total", "Accepted events flagged for review", ["code"])
BATCH_SECONDS = Histogram("ledger_sequencer_batch_seconds", "Time to judge and commit one batch")
APPENDED = Counter("ledger_events_appended_total", "Ledger entries appended to credit.events")
RESTORED = Counter("ledger_sequencer_restored_records_total",
                   "State entries found in the local store (estimate) or read from the changelog at a restore",
                   ["source"])
RESTORE_SECONDS = Gauge("ledger_sequencer_restore_seconds", "Duration of the last state restore")
SIGNATURE_CHECKS = Counter("ledger_sequencer_signature_checks_total",
                           "Signature work per kind: first_scheme (one Ed25519 per submission), batch_path (an "
                           "inclusion path walked), batch_signature (one Ed25519 per distinct signed batch), "
                           "batch_signature_remembered (a submission whose batch an earlier poll verified)", ["kind"])
STORE_WIPES = Counter("ledger_sequencer_store_wipes_total", "Local stores wiped (damaged, foreign, out of range)")
CLOCK_SKEW = Gauge("ledger_sequencer_clock_skew_seconds", "This machine's clock minus the broker's (ledger time "
                   "is the broker's: the skew changes no decision, but other processes on this machine read "
                   "this clock)")
SKEW_WARNING_S = 60.0  # a larger skew is logged (every SKEW_WARNING_EVERY_S at most)
SKEW_WARNING_EVERY_S = 600.0
RESTORE_CHUNK = 5_000  # changelog records applied to the store in one write (and checkpointed) during a restore
PROGRESS_SECONDS = 5.0
TRIM_SECONDS = 10.0  # how often freed C heap is given back to the system between batches
SUMMARY_SECONDS = 10.0  # one info line of what was judged, at most this often (no line per batch or event)
LOG_APPEND_TIME = 1  # a record's timestamp_type when the broker stamped it (aiokafka: 0 is CreateTime)


class SequencerService(TransactionalProcessor):
    """The sequencer's Kafka side on the shared transactional loop (ledger/platform/transactional.py):
    the judgement is `core` (a Sequencing), the batch's outputs are written by `write`, each partition's
    state is a local store (ledger/sequencer/store.py) brought up to the changelog's end on assignment."""

    name = "sequencer"
    source = registry.SUBMISSIONS
    group = GROUP
    poll_ms = 200
    measure_lag = False

    def __init__(self, kafka: KafkaClients, core: Sequencing, store_dir: Path, instance: str = "0",
                 max_records: int = 2000, cache_mib: int = 32, verified_batches: int = 4096,
                 ledger_time: BrokerClock | None = None) -> None:
        super().__init__(kafka, instance, max_records)
        # ledger time: the broker's clock, fed with the LogAppendTime of every submission read and of
        # every entry written (None: the core was given a clock of its own, as in some tests)
        self.ledger_time = ledger_time
        self._skew_warned = -SKEW_WARNING_EVERY_S
        process.limit_malloc_arenas()  # (before the threads: signature checks, RocksDB, restores)
        self._trimmed_at = time.monotonic()
        self.core = core
        self._pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify")
        self.verified_batches = submissions.VerifiedBatches(verified_batches)
        self._since = Tally(SUMMARY_SECONDS)  # what the periodic "sequenced" line reports
        self.store_dir = store_dir
        self.resources = state_store.Resources(cache_mib)
        # the batch in flight: its signature checks, start, verdicts and changelog sends
        self._verified: list[bool | None] = []
        self._started = 0.0
        self._judged: list[tuple[int, Verdict, Any, list[tuple[str, bytes]]]] = []
        self._statuses: dict[str, int] = {}
        self._state_sent: list[tuple[int, asyncio.Future[Any]]] = []

    def consumer_options(self) -> dict[str, Any]:
        # a fetch long-polls the broker, which answers as soon as a submission arrives; the wait only
        # bounds an idle poll. The session and rebalance timeouts are the client's defaults: the
        # restore runs outside the group join (ledger/platform/transactional.py), so a restarted
        # sequencer need not wait two minutes for an old member to be expelled.
        return {"fetch_max_wait_ms": 500, "max_partition_fetch_bytes": 262144}

    def running_fields(self) -> dict[str, Any]:
        return {"instance": self.instance, "bootstrap": self.kafka.bootstrap_servers}

    def forget(self, partition: int) -> None:
        store = self.core.forget(partition)
        if store is not None:
            store.close()

    async def restore(self, partitions: list[int]) -> None:
        """Bring each partition's local store up to the changelog's end: open it (wiped, with the reason
        logged, when it is damaged or its offset lies outside the changelog), read the changelog from
        its checkpoint on (the whole changelog for a new or wiped store) and apply it in checkpointed
        chunks, so a restore killed half-way goes on from its last chunk. Slow parts run in a thread,
        so the heartbeat of the group membership goes on."""
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        c = self.kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                                auto_offset_reset="earliest")
        await c.start()
        stores: dict[int, state_store.PartitionStore] = {}
        try:
            tps = {p: TopicPartition(registry.SEQUENCER_STATE.name, p) for p in partitions}
            c.assign(list(tps.values()))
            begin = await c.beginning_offsets(list(tps.values()))
            end = await c.end_offsets(list(tps.values()))
            in_store = 0
            for p, tp in tps.items():
                store, wiped = await loop.run_in_executor(None, state_store.open_checked, self.store_dir, p,
                                                          self.resources, begin[tp], end[tp])
                stores[p] = store
                if wiped is not None:
                    STORE_WIPES.inc()
                    log.warning("state store wiped; restoring it from the whole changelog", partition=p, reason=wiped)
                offset = store.checkpoint()
                if offset is None:
                    await c.seek_to_beginning(tp)
                else:
                    c.seek(tp, offset)
                    in_store += await loop.run_in_executor(None, store.estimated_keys)
                log.info("state store opened", partition=p, checkpoint=offset, changelog_begin=begin[tp],
                         changelog_end=end[tp])
            read = await self._read_tail(c, stores, tps, end)
            for p, tp in tps.items():
                if stores[p].checkpoint() != end[tp]:  # the tail ends in control records, or there was none
                    await loop.run_in_executor(None, stores[p].apply_batch, Changes(), end[tp])
                self.core.attach(p, stores.pop(p))
            RESTORED.labels("store").inc(in_store)
            RESTORED.labels("changelog").inc(read)
            RESTORE_SECONDS.set(time.monotonic() - started)
            log.info("state restored", partitions=partitions, in_store=in_store, from_changelog=read,
                     seconds=round(time.monotonic() - started, 3))
            process.release_free_memory()
        finally:
            for store in stores.values():  # not attached: the restore failed
                store.close()
            await c.stop()

    async def _read_tail(self, c: AIOKafkaConsumer, stores: dict[int, state_store.PartitionStore],
                         tps: dict[int, TopicPartition], end: dict[TopicPartition, int]) -> int:
        """Read the changelog from each consumer position to `end`, applying it to the stores in
        chunks of RESTORE_CHUNK records, each chunk with the offset after its last record. Returns the
        number of records read; logs progress every PROGRESS_SECONDS."""
        loop = asyncio.get_running_loop()
        chunks: dict[int, list[bytes]] = {p: [] for p in tps}
        read, started, said = 0, time.monotonic(), time.monotonic()

        def apply(p: int, values: list[bytes], next_offset: int) -> None:
            stores[p].apply_batch(changes_of(registry.decode(v, "SequencerState")[1] for v in values), next_offset)

        total = 0
        for tp in tps.values():
            total += max(0, end[tp] - await c.position(tp))
        while not await caught_up(c, end):
            batch = await c.getmany(*tps.values(), timeout_ms=500)
            for tp, msgs in batch.items():
                chunk = chunks[tp.partition]
                chunk.extend(m.value for m in msgs if m.value is not None)
                read += len(msgs)
                if len(chunk) >= RESTORE_CHUNK:
                    await loop.run_in_executor(None, apply, tp.partition, chunk, msgs[-1].offset + 1)
                    chunks[tp.partition] = []
            if time.monotonic() - said >= PROGRESS_SECONDS:
                said = time.monotonic()
                log.info("state restore in progress", records_read=read, records_to_read=total,
                         per_second=round(read / (said - started)))
        for p, chunk in chunks.items():
            if chunk:
                await loop.run_in_executor(None, apply, p, chunk, end[tps[p]])
        return read

    def between_batches(self) -> None:
        # resident memory stays bounded: a batch's records, entries and sends are freed after it, and
        # what the C heap keeps of them is given back now and then
        if time.monotonic() - self._trimmed_at >= TRIM_SECONDS:
            self._trimmed_at = time.monotonic()
            process.release_free_memory()

    async def finish(self) -> None:
        for p in list(self.core.stores):
            self.forget(p)

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
        if len(items) < INLINE_CHECKS:  # a handful: handing them to threads costs more than it saves
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
        if self.ledger_time is not None:  # the broker stamped each submission when it appended it
            for msgs in batch.values():
                for m in msgs:
                    if m.timestamp_type == LOG_APPEND_TIME:
                        self.ledger_time.observe(m.timestamp)
        self._judged, self._statuses, self._state_sent = [], {}, []
        self._verified = await self._verify(self._records(batch))

    @staticmethod
    def _records(batch: dict[TopicPartition, list[Any]]) -> list[tuple[TopicPartition, Any, dict[str, bytes]]]:
        return [(tp, m, dict(m.headers or ())) for tp, msgs in batch.items() for m in msgs]

    async def write(self, producer: AIOKafkaProducer, batch: dict[TopicPartition, list[Any]]) -> dict[str, int]:
        """Judge the batch and send, in its transaction: the accepted entries to credit.events, then
        (once their offsets are known) the changelog records and the outcomes."""
        produced: dict[str, int] = {}

        # every record of the batch carries ledger time, not this machine's clock (on credit.events
        # the broker stamps its own time anyway; a record stamped more than an hour ahead of the
        # broker's clock would be refused: log.message.timestamp.after.max.ms)
        stamp = int(self.core.now().timestamp() * 1000)

        async def send(topic: registry.Topic, key: bytes, value: bytes, partition: int,
                       headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
            produced[topic.name] = produced.get(topic.name, 0) + 1
            return await producer.send(topic.name, key=key, value=value, partition=partition, headers=headers,
                                       timestamp_ms=stamp)

        judged, statuses, state_sent = self._judged, self._statuses, self._state_sent
        for (tp, m, headers), ok in zip(self._records(batch), self._verified, strict=True):
            v = self.core.judge(tp.partition, m.offset, m.key, m.value, headers, ok)
            fut = None
            if v.status == "ACCEPTED":
                assert v.entity_id is not None
                fut = await send(registry.EVENTS, v.entity_id.encode(), v.entry_bytes, tp.partition,
                                 entry_headers(v))
            judged.append((tp.partition, v, fut, outcome_headers(headers)))
        last_state: dict[str, tuple[int, Verdict]] = {}
        for partition, v, fut, answer_headers in judged:
            if fut is not None:
                md = await fut
                if self.ledger_time is not None and md.timestamp_type == LOG_APPEND_TIME:
                    self.ledger_time.observe(md.timestamp)
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
            await send(registry.OUTCOMES, v.event_id.encode(), registry.encode("Outcome", out), partition,
                       answer_headers)
            statuses[v.status] = statuses.get(v.status, 0) + 1
        for partition, v in last_state.values():
            state_sent.append((partition, await send(*_state(partition, entity_record(v)))))
        return produced

    def aborted(self) -> None:
        self.core.rollback()

    def committed(self) -> None:
        # committed: the stores take the batch, each with the changelog offset after its records. (If a
        # store cannot be written the process stops; its restart reads the changelog from the store's
        # last checkpoint.)
        changelog_next: dict[int, int] = {}
        for p, fut in self._state_sent:
            changelog_next[p] = max(changelog_next.get(p, 0), fut.result().offset + 1)
        self.core.commit(changelog_next)
        for _, v, _, _ in self._judged:
            SUBMISSIONS.labels(v.status).inc()
            for r in v.reasons:
                REJECTIONS.labels(r.code).inc()
                self.log.info("submission refused", event_id=v.event_id, status=v.status, field=r.field, code=r.code)
            for w in v.warnings:
                WARNINGS.labels(w).inc()
            if v.status == "ACCEPTED":
                APPENDED.inc()
        BATCH_SECONDS.observe(time.monotonic() - self._started)
        self.log.debug("batch committed", submissions=len(self._judged),
                       **{k.lower(): n for k, n in self._statuses.items()},
                       seconds=round(time.monotonic() - self._started, 4))
        self._since.add(self._statuses)
        if self._since.due():
            self.log.info("sequenced", **self._since.take())
        self._measure_skew()

    def _measure_skew(self) -> None:
        skew = self.ledger_time.skew() if self.ledger_time is not None else None
        if skew is None:
            return
        CLOCK_SKEW.set(round(skew, 3))
        if abs(skew) > SKEW_WARNING_S and time.monotonic() - self._skew_warned > SKEW_WARNING_EVERY_S:
            self._skew_warned = time.monotonic()
            self.log.warning("this machine's clock differs from the broker's; ledger time is the broker's",
                             skew_seconds=round(skew, 1))


class Tally:
    """Counts by status since the last summary line, and whether the next one is due."""

    def __init__(self, every: float) -> None:
        self.every, self.at, self.batches = every, time.monotonic(), 0
        self.counts: dict[str, int] = {}

    def add(self, statuses: dict[str, int]) -> None:
        self.batches += 1
        for k, n in statuses.items():
            self.counts[k] = self.counts.get(k, 0) + n

    def due(self) -> bool:
        return time.monotonic() - self.at >= self.every

    def take(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.at
        out = {"batches": self.batches, "submissions": sum(self.counts.values()),
               **{k.lower(): n for k, n in sorted(self.counts.items())}, "seconds": round(seconds, 1)}
        self.at, self.batches, self.counts = time.monotonic(), 0, {}
        return out


def entry_headers(v: Verdict) -> list[tuple[str, bytes]]:
    """The headers of a ledger entry on credit.events (a copy of fields of the entry, which alone is
    chained and signed), so that a reader can route or skip an entry without decoding it."""
    assert v.entry is not None
    return [("event-type", v.entry["event_type"].encode()), ("event-id", v.event_id.encode())]


def outcome_headers(submission_headers: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """The headers of an outcome on credit.outcomes: the `department` the submission named (as it
    named it, also when the submission was refused for it; absent when it named none), so that a
    reader counts answers per department without the submission (the department supervision,
    consumers/supervision/)."""
    department = submission_headers.get("department")
    return [("department", department)] if department else []


def _state(partition: int, record: tuple[str, dict[str, Any]]) -> tuple[registry.Topic, bytes, bytes, int]:
    """A changelog record of credit.sequencer.state, in the partition of the state it belongs to."""
    key, value = record
    return registry.SEQUENCER_STATE, key.encode(), registry.encode("SequencerState", value), partition
