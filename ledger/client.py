"""The Python client for departments that produce Avro directly: sign, submit, wait for the outcome.

    async with LedgerClient(bootstrap, "xc-samr", private_key_hex) as client:
        outcome = await client.submit_and_wait(record)          # one event
        outcomes = await client.submit_many_and_wait(records)   # many, pipelined

The producer is idempotent with acks=all, so an acknowledged submission is on the broker's log.
Outcomes are read from credit.outcomes (read_committed) from the moment the client started.

Command line:  python -m ledger.client --department xc-samr events.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ledger.platform import config, signing
from ledger.records import submissions
from schemas import registry


class OutcomeTimeout(Exception):
    """No outcome arrived in time; the submission may still be judged later (ask again by event id)."""


class LedgerClient:
    def __init__(self, bootstrap: str, department: str, private_key_hex: str, linger_ms: int = 5) -> None:
        self.bootstrap = bootstrap
        self.department = department
        self._key = private_key_hex
        self._linger = linger_ms
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LedgerClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, watch_outcomes: bool = True) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all",
                                         linger_ms=self._linger, max_batch_size=262144)
        await self.producer.start()
        self.consumer: AIOKafkaConsumer | None = None
        if watch_outcomes:
            self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                             enable_auto_commit=False, isolation_level="read_committed")
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
    async def submit(self, record: dict[str, Any]) -> asyncio.Future[Any]:
        """Sign and send one record; returns the producer's future (resolves when the broker has it)."""
        key, value, headers = submissions.make(record, self.department, self._key)
        eid = record["envelope"]["event_id"]
        if self.consumer is not None:  # a resubmission waits for its own, new outcome
            self._outcomes.pop(eid, None)
            self._waiters.setdefault(eid, asyncio.get_running_loop().create_future())
        return await self.producer.send(registry.SUBMISSIONS.name, key=key, value=value, headers=headers,
                                        partition=submissions.partition_of(key))

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
        futures = [await self.submit(r) for r in records]
        await asyncio.gather(*futures)
        return len(futures)

    async def submit_many_and_wait(self, records: list[dict[str, Any]], timeout: float = 60.0) -> list[dict[str, Any]]:
        await self.submit_many(records)
        return [await self.outcome(r["envelope"]["event_id"], timeout) for r in records]


async def submit_as_departments(bootstrap: str, keys_dir: Path, pairs: list[tuple[str, dict[str, Any]]],
                                timeout: float = 60.0) -> list[dict[str, Any]]:
    """Submit (department, record) pairs, each signed by its department; outcomes in input order.
    One client per department: records of one department keep their order."""
    clients: dict[str, LedgerClient] = {}
    try:
        for dept, _ in pairs:
            if dept not in clients:
                clients[dept] = LedgerClient(bootstrap, dept, signing.private_key(keys_dir, dept))
                await clients[dept].start()
        for dept, rec in pairs:
            await clients[dept].submit(rec)
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
    key = signing.private_key(s.keys_dir, args.department)
    records = _read_records(args.file)
    failed = 0
    async with LedgerClient(s.bootstrap_servers, args.department, key) as client:
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
                   "key is read from LEDGER_KEYS_DIR/<department>.key")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the outcomes")
    sys.exit(uvloop.run(_cli(p.parse_args())))


if __name__ == "__main__":
    main()
