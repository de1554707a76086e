"""The Python client for departments that produce Avro directly: sign, submit, wait for the outcome.

    async with LedgerClient.of(settings, "xc-samr") as client:    # (or LedgerClient(kafka_access, department, key))
        outcome = await client.submit_and_wait(record)          # one event
        outcomes = await client.submit_many_and_wait(records)   # many, pipelined

What is signed (ledger/records/batch.py, ledger/records/submissions.py `make_batch`): records are
signed in batches of up to `batch_records` (1,000), one Ed25519 signature per batch over
(signer, department, batch size, Merkle root of the batch's encoded records); each submission
carries the signature and its own inclusion proof (`batch` header). A single `submit` is a batch of
one. The sequencer checks each submission's proof up to the root and each batch's signature once;
an auditor checks the same with `python -m ledger.audit.verify --department-keys`.

A batch goes to Kafka as whole record batches (aiokafka's `create_batch` / `send_batch`: no
future per record), one per partition and chunk, in order, so the submissions of one entity keep
their order. The producer is idempotent with acks=all, so an acknowledged submission is on the
broker's log. Outcomes are read from credit.outcomes (read_committed) from the moment the client
started.

Command line:  python -m ledger.client --department xc-samr events.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from itertools import islice
from typing import Any

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ledger.platform import config, kafka_util, signing
from ledger.platform.kafka_access import KafkaAccess, access
from ledger.records import submissions
from schemas import registry

MAX_BATCH_BYTES = 262144  # the largest Kafka record batch the client builds (the broker allows 1 MiB)


class OutcomeTimeout(Exception):
    """No outcome arrived in time; the submission may still be judged later (ask again by event id)."""


BATCH_RECORDS = 1000  # submissions signed at once (one signature, one Merkle root)


class LedgerClient:
    def __init__(self, kafka: KafkaAccess, department: str, private_key_hex: str, linger_ms: int = 5,
                 batch_records: int = BATCH_RECORDS, topic: str = registry.SUBMISSIONS.name) -> None:
        """`kafka`: the department's own principal (it may write credit.submissions and read
        credit.outcomes); `topic` is credit.submissions but for benchmarks, which measure this path on a
        topic of their own."""
        self.kafka = kafka
        self.department = department
        self.batch_records = batch_records
        self.topic = topic
        self._key = private_key_hex
        self._linger = linger_ms
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None

    @classmethod
    def of(cls, s: config.Settings, department: str, **options: Any) -> LedgerClient:
        """The department's client on the settings' cluster: its Kafka principal and its signing key
        from LEDGER_KEYS_DIR."""
        return cls(access(s, department), department, signing.private_key(s.keys_dir, department), **options)

    async def __aenter__(self) -> LedgerClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, watch_outcomes: bool = True) -> None:
        self.producer = AIOKafkaProducer(**self.kafka.options(), enable_idempotence=True, acks="all",
                                         linger_ms=self._linger, max_batch_size=MAX_BATCH_BYTES)
        await self.producer.start()
        if watch_outcomes:
            self.consumer = AIOKafkaConsumer(**self.kafka.options(), group_id=None,
                                             enable_auto_commit=False, isolation_level="read_committed",
                                             fetch_max_wait_ms=100)
            await self.consumer.start()
            tps = [TopicPartition(registry.OUTCOMES.name, p) for p in range(registry.OUTCOMES.partitions)]
            self.consumer.assign(tps)
            await self.consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the lazy seek now, so nothing decided after start() is missed
                await self.consumer.position(tp)
            self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.consumer:
            await self.consumer.stop()
        if self.producer is not None:  # (None: start() failed before the producer was made)
            await self.producer.stop()

    async def _watch(self) -> None:
        assert self.consumer is not None
        while True:
            batch = await self.consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                for m in msgs:
                    _, out = registry.decode(m.value, "Outcome")
                    self._outcomes[out["event_id"]] = out
                    w = self._waiters.pop(out["event_id"], None)
                    if w is not None and not w.done():
                        w.set_result(out)

    # ------------------------------------------------------------------ submitting
    def _expect(self, records: list[dict[str, Any]]) -> None:
        """A resubmission waits for its own, new outcome."""
        if self.consumer is None:
            return
        loop = asyncio.get_running_loop()
        for r in records:
            eid = r["envelope"]["event_id"]
            self._outcomes.pop(eid, None)
            if eid not in self._waiters:
                self._waiters[eid] = loop.create_future()

    async def submit(self, record: dict[str, Any]) -> asyncio.Future[Any]:
        """Sign (a batch of one) and send one record; returns the producer's future (resolves when the
        broker has it). Concurrent single submissions share Kafka record batches (linger_ms)."""
        [(key, value, headers)] = submissions.make_batch([record], self.department, self._key)
        self._expect([record])
        return await self.producer.send(self.topic, key=key, value=value, headers=headers,
                                        partition=submissions.partition_of(key))

    async def submit_batch(self, records: list[dict[str, Any]]) -> asyncio.Future[Any]:
        """Sign `records` as one batch (at most `batch_records`) and send them; returns a future that
        resolves when the broker has all of them. registry.SchemaError (nothing sent) when a record
        cannot be encoded."""
        if not 1 <= len(records) <= self.batch_records:
            raise ValueError(f"a batch holds 1 to {self.batch_records} records, not {len(records)}")
        signed = submissions.make_batch(records, self.department, self._key)
        self._expect(records)
        acks = await kafka_util.send_grouped(self.producer, [
            (self.topic, submissions.partition_of(key), key, value, headers) for key, value, headers in signed])
        return asyncio.gather(*acks)

    def decided(self) -> int:
        """How many outcomes this client has seen so far."""
        return len(self._outcomes)

    async def outcome(self, event_id: str, timeout: float = 30.0) -> dict[str, Any]:
        if event_id in self._outcomes:
            return self._outcomes[event_id]
        fut = self._waiters.setdefault(event_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            raise OutcomeTimeout(f"no outcome for event {event_id} within {timeout} s") from None

    async def submit_and_wait(self, record: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        await (await self.submit(record))
        return await self.outcome(record["envelope"]["event_id"], timeout)

    async def submit_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Sign and send records in batches of `batch_records`, pipelined: a batch is signed and
        handed to the producer while the previous one is on its way; returns when the broker has all."""
        it, sent, unacked = iter(records), 0, None
        while chunk := list(islice(it, self.batch_records)):
            acked = await self.submit_batch(chunk)
            sent += len(chunk)
            if unacked is not None:
                await unacked
            unacked = acked
        if unacked is not None:
            await unacked
        return sent

    async def submit_many_and_wait(self, records: list[dict[str, Any]], timeout: float = 60.0) -> list[dict[str, Any]]:
        await self.submit_many(records)
        return [await self.outcome(r["envelope"]["event_id"], timeout) for r in records]


async def submit_as_departments(s: config.Settings, pairs: list[tuple[str, dict[str, Any]]],
                                timeout: float = 60.0) -> list[dict[str, Any]]:
    """Submit (department, record) pairs, each signed by its department and sent as its principal
    (in batches); outcomes in input order. One client per department: records of one department keep
    their order."""
    by_department: dict[str, list[dict[str, Any]]] = {}
    for dept, rec in pairs:
        by_department.setdefault(dept, []).append(rec)
    clients: dict[str, LedgerClient] = {}
    try:
        for dept in by_department:
            clients[dept] = LedgerClient.of(s, dept)
            await clients[dept].start()
        await asyncio.gather(*(clients[d].submit_many(recs) for d, recs in by_department.items()))
        return [await clients[d].outcome(r["envelope"]["event_id"], timeout) for d, r in pairs]
    finally:
        for c in clients.values():
            await c.stop()


def _read_records(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                obj = json.loads(line)
                out.append(registry.from_json(obj["envelope"]["event_type"], obj))
            except (ValueError, KeyError, registry.SchemaError) as exc:
                raise SystemExit(f"line {n}: not a credit event in JSON ({exc})") from None
    return out


async def _cli(args: argparse.Namespace) -> int:
    s = config.load()
    records = _read_records(args.file)
    failed = 0
    async with LedgerClient.of(s, args.department) as client:
        for out in await client.submit_many_and_wait(records, timeout=args.timeout):
            reasons = "; ".join(f"{r['field']}: {r['message']}" for r in out["reasons"])
            where = f"version {out['entity_version']} at {out['ledger_partition']}:{out['ledger_offset']}" \
                if out["entity_version"] else ""
            print(f"{out['event_id']}\t{out['status']}\t{where}{reasons}")
            failed += out["status"] in ("REJECTED", "CONFLICT")
    return 1 if failed else 0


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m ledger.client",
        description="Sign and submit credit events (JSON lines, one event record per line) as a department, "
                    "then print each outcome: ACCEPTED with the ledger position, DUPLICATE, or REJECTED with "
                    "the field and the reason. Exits 1 if anything was refused.")
    p.add_argument("file", help="JSON-lines file of event records ('-' for standard input)")
    p.add_argument("--department", required=True, help="the emitting department id, e.g. xc-samr; its private "
                   "key is read from LEDGER_KEYS_DIR/<department>.key, its Kafka password from "
                   "LEDGER_KEYS_DIR/kafka/<department>.password")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the outcomes")
    sys.exit(uvloop.run(_cli(p.parse_args())))


if __name__ == "__main__":
    main()
