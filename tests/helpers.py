"""Shared helpers of the integration and end-to-end tests (real Kafka, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from ledger.client import LedgerClient, submit_as_departments
from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, access
from ledger.platform.kafka_util import caught_up
from ledger.rules import loader
from ops.procs import real_clock_env  # noqa: F401  (the tests' children that run librdkafka)
from ops.root import CLOCK
from schemas import registry


def client(settings: config.Settings, department: str = "xc-samr") -> LedgerClient:
    return LedgerClient.of(settings, department)


async def stream_until_acknowledged(settings: config.Settings, chunks: list[list[tuple[str, dict[str, Any]]]],
                                    acknowledged: list[int], pause: float = 0.2) -> list[dict[str, Any]]:
    """Submit chunk after chunk of (department, record) pairs; a chunk not acknowledged (the broker away,
    leaders moving) is sent again with the same event ids, as a department would. Each chunk's index
    goes to `acknowledged` once answered. Returns every outcome."""
    outcomes = []
    for i, pairs in enumerate(chunks):
        for attempt in range(1, 31):
            try:
                got = await submit_as_departments(settings, pairs, timeout=60)
                break
            except (KafkaError, TimeoutError) as exc:
                if attempt == 30:
                    raise
                print(f"chunk {i} not acknowledged ({type(exc).__name__}); sending it again", flush=True)
                await asyncio.sleep(1)
        # a chunk sent again may find part of it recorded already: those are answered DUPLICATE
        assert {o["status"] for o in got} <= {"ACCEPTED", "DUPLICATE"}, [o["reasons"] for o in got][:3]
        outcomes.extend(got)
        acknowledged.append(i)
        await asyncio.sleep(pause)
    return outcomes


async def read_topic(settings: config.Settings, topic: registry.Topic) -> list[tuple[int, int, bytes | None, bytes]]:
    """Every committed record of a topic: (partition, offset, key, value)."""
    c = AIOKafkaConsumer(**access(settings, ADMIN).options(), group_id=None, enable_auto_commit=False,
                         isolation_level="read_committed")
    await c.start()
    try:
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out = []
        while not await caught_up(c, end):
            for tp, msgs in (await c.getmany(timeout_ms=500)).items():
                out.extend((tp.partition, m.offset, m.key, m.value) for m in msgs)
        return out
    finally:
        await c.stop()


async def ledger_entries(settings: config.Settings, entity_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The committed ledger entries of the given entities, per entity in log order."""
    per: dict[str, list[dict[str, Any]]] = defaultdict(list)
    keys = {k.encode() for k in entity_ids}
    for p, o, key, value in await read_topic(settings, registry.EVENTS):
        if key in keys:  # (the key is the entity id; other entities' records are not even decoded)
            _, e = registry.decode(value, "LedgerEntry")
            per[e["entity_id"]].append({**e, "_partition": p, "_offset": o})
    for entries in per.values():
        entries.sort(key=lambda e: e["_offset"])
    return per


async def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def pg_rows(settings: config.Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


# The run's seed: every random world of the tests derives from it. A new one each run (new entities
# every run), printed in pytest's header and after a failure; LEDGER_TEST_SEED=<n> replays a run.
SEED_VARIABLE = "LEDGER_TEST_SEED"


def _run_seed() -> int:
    given = os.environ.get(SEED_VARIABLE, "").strip()
    if not given:
        return random.SystemRandom().randrange(10**9)
    try:
        return int(given)
    except ValueError:
        raise SystemExit(f"{SEED_VARIABLE}: '{given}' is not a whole number (the seed a run printed)") from None


RUN_SEED = _run_seed()
_drawn: Counter[str] = Counter()


def rng(name: str) -> random.Random:
    """A generator seeded per name, per call and per run: new entities every run, the same ones when
    the run is replayed with its seed (LEDGER_TEST_SEED) and the tests run in the same order."""
    _drawn[name] += 1
    return random.Random(f"{name}-{RUN_SEED}-{_drawn[name]}")


# A decision this many days before today reaches the ledger late (after 7 working days) but is still
# inside its publication window, whatever today is (the shortest window, a minor penalty's, is 3 months).
LATE_DECISION_DAYS = 60


def today() -> date:
    """Today as the ledger counts it: the China Standard Time date of the one clock (the machine's,
    or the one libfaketime fakes), the same as the sequencer's."""
    return CLOCK.today()


async def end_offsets(settings: config.Settings, topic: registry.Topic = registry.EVENTS) -> dict[int, int]:
    c = AIOKafkaConsumer(**access(settings, ADMIN).options(), group_id=None, isolation_level="read_committed")
    await c.start()
    try:
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        return {tp.partition: o for tp, o in (await c.end_offsets(tps)).items()}
    finally:
        await c.stop()


def view_positions(settings: config.Settings) -> dict[int, int]:
    return dict(pg_rows(settings, "select partition, next_offset from views.positions where topic = %s",
                        (registry.EVENTS.name,)))


async def last_records(settings: config.Settings, topic: registry.Topic = registry.EVENTS) -> dict[int, int]:
    """Per partition, the offset after the last committed record (the end offset also counts the
    transaction markers, which are no records)."""
    end = await end_offsets(settings, topic)
    c = AIOKafkaConsumer(**access(settings, ADMIN).options(), group_id=None, enable_auto_commit=False,
                         isolation_level="read_committed")
    await c.start()
    try:
        out = {}
        for p, e in end.items():
            tp = TopicPartition(topic.name, p)
            c.assign([tp])
            c.seek(tp, max(0, e - 20))
            last = -1
            while await c.position(tp) < e:
                for msgs in (await c.getmany(tp, timeout_ms=500)).values():
                    last = max([last, *(m.offset for m in msgs)])
            out[p] = last + 1 if last >= 0 else 0
        return out
    finally:
        await c.stop()


async def projected(settings: config.Settings, timeout: float = 120.0) -> dict[int, int]:
    """Wait until the live views have applied every committed record of credit.events; returns the positions."""
    want = await last_records(settings)
    await wait_until(lambda: all(view_positions(settings).get(p, 0) >= o for p, o in want.items() if o),
                     timeout=timeout, what=f"the projector to reach {want}")
    return view_positions(settings)


def metric(settings: config.Settings, service: str, name: str, labels: str = "") -> float:
    """The value of one Prometheus sample of a running service (0 if absent)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port(service)}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + (("{" + labels + "}") if labels else "") + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def copy_rules(directory: Path, *names: str) -> Path:
    """Every version of the named rules files (all files if none is named) copied into ``directory``:
    the loader reads versions 1..N of a file, so a test that edits the newest must have the others."""
    for path in loader.default_directory().glob("*.v*.json"):
        if not names or path.name.split(".v")[0] in names:
            shutil.copy(path, directory / path.name)
    return directory
