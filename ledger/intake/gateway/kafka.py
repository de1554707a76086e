"""The gateway's side of Kafka: one shared idempotent producer of attested submissions, one shared
watcher of credit.outcomes that hands each outcome to the request waiting for it.

The gateway holds no department's private key: it signs with its own (LEDGER_KEYS_DIR/
ledger-gateway.key) an attestation of what a department's token sent (ledger/records/batch.py: the
message names the signer, ledger-gateway, and the department). A batch request is one signature;
single events handed over in the same event-loop turn are signed together too (`attest`: no timer,
the batch is whatever the loop already holds), one Merkle root per department per turn. It reads
the departments' public keys only, to check a client's own detached signature.

The producer (acks=all) writes to credit.submissions, keyed and partitioned as every submission.
The watcher reads credit.outcomes (read_committed) from the end at start; an outcome of an event
not submitted here is not even decoded. `Ledger` also remembers, per department, what it was told
of the events it submitted (a bounded cache behind GET /v1/outcomes/{id}).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram

from ledger.intake import openapi
from ledger.intake.gateway.checks import INTAKE
from ledger.intake.gateway.errors import Unavailable
from ledger.platform import logs, signing
from ledger.platform.kafka_util import KafkaClients
from ledger.records import submissions
from schemas import registry

log = logs.get("gateway")

SUBMITTED = Counter("ledger_gateway_events_submitted_total", "Events attested and acknowledged by Kafka")
Headers = submissions.Headers
ATTESTED = Histogram("ledger_gateway_attested_per_signature", "Single events signed together in one event-loop "
                     "turn (one Ed25519 signature over their Merkle root)", buckets=(1, 2, 4, 8, 16, 32, 64, 128))
IN_FLIGHT = Gauge("ledger_gateway_events_waiting", "Submitted events whose outcome has not arrived yet")

DELIVERY_TIMEOUT = 30.0  # seconds Kafka may take to acknowledge a submission before the answer is 503
OUTCOME_CACHE = 200_000  # events whose outcome GET /v1/outcomes can give (least recently submitted forgotten)


@dataclass(slots=True)
class Tracked:
    """What a department was told of an event: its Outcome as the Avro bytes of credit.outcomes (about
    a fifth of the memory of the decoded record: the cache holds up to OUTCOME_CACHE of them, and a
    decoded one cost about 0.9 KiB), decoded again only when GET /v1/outcomes asks for it."""

    department: str
    raw: bytes | None = None  # the Outcome record's bytes, once it came
    failed: str | None = None

    @property
    def outcome(self) -> dict[str, Any] | None:
        return None if self.raw is None else openapi.plain(registry.decode(self.raw, "Outcome")[1])


@dataclass
class Ledger:
    """The gateway's side of Kafka: submits signed records and matches outcomes to the requests."""

    kafka: KafkaClients  # the client factory (ops/root.py builds it)
    keys_dir: Path  # the gateway's own key (ledger-gateway.key) and the departments' public keys (<dept>.pub)
    cache_size: int = OUTCOME_CACHE
    coalesce: bool = True  # sign the single events of one event-loop turn together
    intake: str = INTAKE  # whose key attests (the public intake, ledger/intake/public, is another)
    # event id -> the requests waiting for its outcome, oldest first: (subject's entity id, outcome, department)
    _waiting: dict[str, deque[tuple[str, asyncio.Future[dict[str, Any]], str]]] = field(default_factory=dict)
    # (department, event id) -> what that department was told: another department sending the same
    # event id neither hides nor sees it
    _tracked: OrderedDict[tuple[str, str], Tracked] = field(default_factory=OrderedDict)
    _public: dict[str, str] = field(default_factory=dict)
    # department -> the single events waiting for this turn's attestation: (record, value, headers' future)
    _turn: dict[str, list[tuple[dict[str, Any], bytes, asyncio.Future[Headers]]]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.intake_key = signing.private_key(self.keys_dir, self.intake)  # FileNotFoundError: no key, no intake
        self.producer = self.kafka.producer(enable_idempotence=True, acks="all", linger_ms=1, max_batch_size=262144,
                                            request_timeout_ms=30000)
        self.consumer = self.kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                                            fetch_max_wait_ms=100, max_partition_fetch_bytes=4 * 1048576)
        await self.producer.start()
        try:
            await self.consumer.start()
            tps = [TopicPartition(registry.OUTCOMES.name, p) for p in range(registry.OUTCOMES.partitions)]
            self.consumer.assign(tps)
            await self.consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the lazy seek now: nothing decided after start() is missed
                await self.consumer.position(tp)
        except BaseException:
            await self.producer.stop()
            raise
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()
        await self.producer.stop()

    # ------------------------------------------------------------------ attesting
    def public_key(self, department: str) -> str | None:
        """The department's public key (LEDGER_KEYS_DIR/<department>.pub), or None if there is none."""
        if department not in self._public:
            key = signing.public_key(self.keys_dir, department)
            if key is None:
                return None
            self._public[department] = key
        return self._public[department]

    def attest_batch(self, department: str, records: list[dict[str, Any]], values: list[bytes]) -> list[Headers]:
        """The headers of a batch of the department's submissions: one attestation by this gateway."""
        return submissions.sign_batch(records, values, department, self.intake_key, signer=self.intake)

    def attest(self, department: str, record: dict[str, Any], value: bytes) -> asyncio.Future[Headers]:
        """The headers of one submission, signed with the others of the same event-loop turn (the
        requests whose bodies arrived together): the first one of a turn schedules the signing right
        after the callbacks already ready, so no request waits for a timer."""
        loop = asyncio.get_running_loop()
        headers: asyncio.Future[Headers] = loop.create_future()
        if not self.coalesce:
            headers.set_result(self.attest_batch(department, [record], [value])[0])
            return headers
        if not self._turn:
            loop.call_soon(self._attest_turn)
        self._turn.setdefault(department, []).append((record, value, headers))
        return headers

    def _attest_turn(self) -> None:
        turn, self._turn = self._turn, {}
        for department, items in turn.items():
            ATTESTED.observe(len(items))
            try:
                signed = self.attest_batch(department, [r for r, _, _ in items], [v for _, v, _ in items])
            except Exception as exc:  # noqa: BLE001 - every request of the turn gets the failure
                for *_, f in items:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for (*_, f), h in zip(items, signed, strict=True):
                if not f.done():
                    f.set_result(h)

    # ------------------------------------------------------------------ outcomes
    async def _watch(self) -> None:
        while True:
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker away: keep watching, it comes back
                log.warning("outcome watcher: fetch failed", error=type(exc).__name__)
                await asyncio.sleep(1)
                continue
            for msgs in batch.values():
                for m in msgs:
                    try:
                        self._decided(m.key, m.value)
                    except Exception:
                        log.exception("outcome watcher: record skipped", partition=m.partition, offset=m.offset)

    def _decided(self, key: bytes | None, value: bytes) -> None:
        eid = key.decode("utf-8", errors="surrogateescape") if key else ""
        queue = self._waiting.get(eid)
        if not queue:
            return  # not submitted here (or already answered): not even decoded
        _, out = registry.decode(value, "Outcome")
        outcome = openapi.plain(out)
        if queue:
            # the oldest request for this event id about the same entity (an event id reused for
            # another subject is judged in another partition, and its outcome may come first)
            entry = next((w for w in queue if w[0] == outcome["entity_id"]), queue[0])
            tracked = self._tracked.get((entry[2], eid))
            if tracked is not None:
                tracked.raw, tracked.failed = value, None
            queue.remove(entry)
            if not entry[1].done():
                entry[1].set_result(outcome)
            IN_FLIGHT.dec()
            if not queue:
                del self._waiting[eid]

    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ submitting
    async def submit(self, department: str, entity_id: str, key: bytes, value: bytes,
                     headers: list[tuple[str, bytes]],
                     event_id: str) -> tuple[asyncio.Future[Any], asyncio.Future[dict[str, Any]]]:
        """Hand one attested record to the producer; returns (Kafka's acknowledgement, the outcome)."""
        outcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(event_id, deque()).append((entity_id, outcome, department))
        IN_FLIGHT.inc()
        tracked = self._tracked.pop((department, event_id), None)
        self._tracked[(department, event_id)] = Tracked(department, tracked.raw if tracked else None)
        while len(self._tracked) > self.cache_size:
            self._tracked.popitem(last=False)
        try:
            delivery = await self.producer.send(registry.SUBMISSIONS.name, key=key, value=value, headers=headers,
                                                partition=submissions.partition_of(key))
        except BaseException as exc:
            self._not_delivered(event_id, outcome, exc)
            raise
        delivery.add_done_callback(lambda f: self._delivered(event_id, outcome, f))
        return delivery, outcome

    def _delivered(self, event_id: str, outcome: asyncio.Future[Any], delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            self._not_delivered(event_id, outcome, delivery.exception() if not delivery.cancelled() else None)
        else:
            SUBMITTED.inc()

    def _not_delivered(self, event_id: str, outcome: asyncio.Future[Any], exc: BaseException | None) -> None:
        queue = self._waiting.get(event_id)
        entry = next((w for w in queue if w[1] is outcome), None) if queue else None
        if queue is not None and entry is not None:
            queue.remove(entry)
            IN_FLIGHT.dec()
            if not queue:
                del self._waiting[event_id]
        if not outcome.done():
            outcome.cancel()
        tracked = self._tracked.get((entry[2], event_id)) if entry is not None else None
        if tracked is not None and tracked.raw is None and not any(
                w[2] == entry[2] for w in self._waiting.get(event_id, ())):
            tracked.failed = type(exc).__name__ if exc else "cancelled"
        log.warning("submission not acknowledged by Kafka", error=type(exc).__name__ if exc else "cancelled")

    def lookup(self, department: str, event_id: str) -> tuple[Tracked | None, asyncio.Future[Any] | None]:
        """What this gateway knows of an event the department submitted: (tracked, pending outcome)."""
        tracked = self._tracked.get((department, event_id))
        if tracked is None:
            return None, None
        mine = [w for w in self._waiting.get(event_id, ()) if w[2] == department]
        return tracked, (mine[-1][1] if mine else None)



async def acknowledged(delivery: asyncio.Future[Any]) -> None:
    """Wait for Kafka's acknowledgement of a submission; Unavailable (503) if it fails or takes too long."""
    try:
        await asyncio.wait_for(asyncio.shield(delivery), DELIVERY_TIMEOUT)
    except (KafkaError, TimeoutError, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and not delivery.cancelled():
            raise  # the request itself was cancelled
        raise Unavailable(type(exc).__name__) from None
