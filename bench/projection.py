"""Benchmark: projection throughput (ledger copy + every view), and a labelled estimate for a 10M rebuild.

    PYTHONPATH=. .venv/bin/python -m bench.projection [--events 200000] [--max-records 5000 20000]
                                                      [--workers 1 2] [--indexes inline deferred]
                                                      [--profile 50000] [--seed 7] [--keep]
                                                      [--wait-quiet 600] [--quiet-cores 0.5]

1. Workload. N realistic ledger entries (ops.workload): mostly administrative penalties for many
   entities (about 3 per entity, 20 % natural persons), plus full `life()` histories (22 events
   of every family) and `honoured_life()` histories (red list), so that every view is written:
   ledger copy, entity state, entities, list entries (inserted and updated), publicity (inserted
   and updated). Each event is a real submission (`submissions.make`: Avro + Ed25519, signed with
   a key generated for the run) sealed into a real LedgerEntry the way ledger/sequencer/core.py does it:
   entity id and category from ledger.domain.identity, entity_version, prev_hash, `chain.seal`.
   The entities' histories are interleaved at random (each entity's own order kept), as arrivals
   from many departments would be.
2. The topic `bench.events` (registry.BENCH_EVENTS, 4 partitions, not in registry.TOPICS) is
   deleted and created again, and the entries are written to it, each in the partition of its
   submission key (`submissions.partition_of`), as the sequencer does.
3. Fold only: the same entries folded in memory (projections.rows.Folder, batches of 5,000, no
   Kafka, no database), an upper bound of the projector's rate on this CPU.
4. For each --max-records: a fresh schema (projections.schema.create) with a stored position 0 per
   partition of bench.events (see _fresh_schema: it avoids an aiokafka race of seek_to_beginning),
   then `ops.root.projector_service(settings, schema_name, max_records, topic=BENCH_EVENTS, takes_switch_lock=False)
   .run(until=<end offsets>)`, timed from the call to its return. A run that applied fewer events
   than were written is reported as INVALID and left out of the figures. The projector's own
   per-batch log lines ("batch projected": load_s, fold_s, write_s) are captured for the per-phase
   split; CPU time of this process, of PostgreSQL (the postmaster and all its backends) and of the
   broker is read from /proc around the run. The row counts of every table are checked, then the
   schema is dropped.
   With --workers N > 1 the run is consumers.projector.rebuild's `project_into`: N projector processes, each
   with a share of the partitions; with --indexes deferred the schema's secondary indexes are dropped
   first and built after the projection, inside the timed run, as the rebuild did before its bulk
   load; with --indexes load the run is the rebuild's bulk load (consumers/projector/bulk.py: no
   primary keys on the large tables, states in each worker's own store, each entity's rows written
   once at the end), timed to the end of its deferred status updates, keys and indexes. Each run also
   reports CPU time per event (projector processes, PostgreSQL, broker), the figure that other work
   on the machine disturbs least.
5. --profile M: one more run over the first M records under cProfile (not part of the figures); the
   fold's worker thread has a profiler of its own, merged into the report.

The 10M-event rebuild figure is an ESTIMATE (10,000,000 / the measured rate), never a measurement.
Before each run it waits (--wait-quiet, at most 600 s) for the rest of the machine to be nearly
idle, and says whether it was. Kafka and PostgreSQL are those of the environment's settings (the
demo stack by default); the infrastructure is started if Kafka is not running. The schemas and the
topic are dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import copy_floor
from consumers.projector import rebuild
from consumers.projector import service as projector_module
from ledger.domain import identity
from ledger.domain.model import EntityState
from ledger.platform import config, logs, signing
from ledger.platform.kafka_access import ADMIN, PROJECTOR, KafkaAccess, access
from ledger.records import chain, submissions
from ledger.rules import loader
from ops import access as acls
from ops import root, stack, workload
from projections import schema
from projections.rows import Folder, Incoming, Loaded
from schemas import registry

TOPIC = registry.BENCH_EVENTS
TICK = os.sysconf("SC_CLK_TCK")
TEN_MILLION = 10_000_000
LIFE_EVENTS = 22  # len of both phases of workload.life()


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine and CPU


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
    return {"date": datetime.now(UTC).strftime("%a %d %b %Y %H:%M:%S UTC"), "cpu": cpu,
            "nproc": len(os.sched_getaffinity(0)), "mem_gib": round(mem_kib / 1024 / 1024, 1),
            "python": platform.python_version(), "load": os.getloadavg()}


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _pid_cpu(pid: int | None, children: bool = False) -> float:
    f = _stat(pid) if pid else None
    if f is None:
        return 0.0
    return (int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)) / TICK


def pg_cpu_seconds(postmaster: int | None) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster with its reaped children, plus every live backend."""
    if not postmaster:
        return 0.0
    total = _pid_cpu(postmaster, children=True)
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            f = _stat(int(d.name))
            if f is not None and int(f[1]) == postmaster:
                total += (int(f[11]) + int(f[12])) / TICK
    return total


def machine_busy_seconds() -> float:
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / TICK


def wait_quiet(max_wait: float, threshold: float = 0.3, window: float = 10.0) -> str:
    """Wait (at most max_wait seconds) until the machine uses less than `threshold` cores over
    `window` seconds; the others' work on this shared machine would otherwise be measured too."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_busy_seconds(), time.perf_counter()
        time.sleep(window)
        busy = (machine_busy_seconds() - b0) / (time.perf_counter() - t0)
        if busy < threshold:
            return f"machine quiet before the measurement ({busy:.2f} cores busy over {window:.0f} s)"
        if time.monotonic() > deadline:
            return (f"machine NOT quiet: {busy:.2f} cores busy over {window:.0f} s before the measurement "
                    f"(waited {max_wait:.0f} s)")
        _say(f"  waiting for a quiet machine: {busy:.2f} cores busy elsewhere")


class Meter:
    """Wall time and CPU time (cores busy on average) of this process, PostgreSQL, the broker, the rest."""

    def __init__(self, pg_pid: int | None, broker_pid: int | None) -> None:
        self.pg_pid, self.broker_pid = pg_pid, broker_pid

    def _now(self) -> tuple[float, ...]:
        t = os.times()
        # children: the worker processes of --workers, counted once they have exited
        return (time.perf_counter(), t.user + t.system + t.children_user + t.children_system, pg_cpu_seconds(self.pg_pid), _pid_cpu(self.broker_pid),
                machine_busy_seconds())

    def start(self) -> None:
        self._t0 = self._now()

    def stop(self) -> dict[str, float]:
        wall, own, pg, broker, busy = (b - a for a, b in zip(self._t0, self._now(), strict=True))
        return {"wall_s": wall, "projector_cores": own / wall, "postgres_cores": pg / wall,
                "broker_cores": broker / wall, "other_cores": max(0.0, busy - own - pg - broker) / wall}


# --------------------------------------------------------------------------- the workload


@dataclass
class Built:
    entries: list[tuple[int, bytes, bytes]]  # (partition, key = entity id, LedgerEntry value)
    entities: int
    lives: int
    honoured: int
    penalty_entities: int
    by_type: dict[str, int]
    build_s: float


def histories(events: int, seed: int, life_share: float) -> tuple[list[tuple[workload.Subject, list[Any]]],
                                                                  int, int, int]:
    """Per entity, its records in order: (department, family record)."""
    rng = random.Random(seed)
    lives = max(1, round(events * life_share / LIFE_EVENTS))
    honoured = max(1, lives // 4)
    orgs = workload.subjects(rng, lives + honoured, persons_share=0.0)
    out: list[tuple[workload.Subject, list[Any]]] = []
    for n, subject in enumerate(orgs[:lives]):
        phases = workload.life(rng, subject, n)
        out.append((subject, [x for phase in phases for x in phase]))
    for subject in orgs[lives:]:
        out.append((subject, workload.honoured_life(subject)))
    left = max(0, events - sum(len(r) for _, r in out))
    penalty_entities = max(1, left // 3)
    people = workload.subjects(rng, penalty_entities)
    records: list[list[Any]] = [[] for _ in people]
    departments = list(workload.PENALTY_DEPARTMENTS)
    for i in range(left):
        d, j = departments[i % len(departments)], rng.randrange(penalty_entities)
        records[j].append((d, workload.penalty(rng, people[j], d, seq=1_000_000 + i)))
    out.extend((subject, recs) for subject, recs in zip(people, records, strict=True) if recs)
    return out, lives, honoured, sum(1 for recs in records if recs)


def build(events: int, seed: int, life_share: float, pepper: bytes, private_key: str | None = None,
          clock: Any = None, chains: dict[str, tuple[int, bytes]] | None = None,
          keep: Callable[[str], bool] | None = None, sub_offsets: list[int] | None = None) -> Built:
    """Real signed submissions sealed into real LedgerEntry records with valid per-entity chains.
    `private_key` (hex) and `clock` (a callable giving the ledger time) make the output reproducible
    (bench/fold.py); by default a fresh key and the current time. A ledger built in several calls
    passes the same `chains` (entity id -> (version, hash), updated here) and `sub_offsets` to each,
    so that an entity drawn again goes on from its last version; `keep` (an entity id -> bool) leaves
    out the entities of other builders (before anything of them is encoded)."""
    started = time.perf_counter()
    per_entity, lives, honoured, penalty_entities = histories(events, seed, life_share)
    private_key = private_key or signing.new_keypair()[0]
    clock = clock or (lambda: datetime.now(UTC))
    rng = random.Random(seed + 1)
    slots = [i for i, (_, recs) in enumerate(per_entity) for _ in recs]
    rng.shuffle(slots)  # arrivals interleaved, each entity's own order kept
    cursor = [0] * len(per_entity)
    chains = {} if chains is None else chains  # by entity id: two subjects may be one entity (same id)
    before = len(chains)
    ids: dict[int, tuple[str, str, list[str]]] = {}
    sub_offsets = [0] * TOPIC.partitions if sub_offsets is None else sub_offsets
    entries: list[tuple[int, bytes, bytes]] = []
    by_type: dict[str, int] = {}
    for i in slots:
        subject, recs = per_entity[i]
        department, record = recs[cursor[i]]
        recs[cursor[i]] = None  # let it go once encoded
        cursor[i] += 1
        if i not in ids:
            ident = submissions.check_subject(subject.as_avro())
            ids[i] = (identity.entity_key(ident, pepper), ident.category, list(ident.warnings))
        entity_id, category, warnings = ids[i]
        if keep is not None and not keep(entity_id):
            continue
        key, value, headers = submissions.make(record, department, private_key)
        partition = submissions.partition_of(key)
        version, prev = chains.get(entity_id, (0, chain.GENESIS))
        entry = {
            "entity_id": entity_id, "entity_version": version + 1, "event_id": record["envelope"]["event_id"],
            "event_type": record["envelope"]["event_type"], "category": category, "department": department,
            "sequenced_at": clock(), "submission_partition": partition,
            "submission_offset": sub_offsets[partition], "warnings": warnings, "submission": value,
            "signature": dict(headers)["signature"], "signer": "", "batch_proof": dict(headers)["batch"],
            "client_signature": b"", "client_body": b"", "prev_hash": prev, "hash": b"",
        }
        sub_offsets[partition] += 1
        sealed = chain.seal(entry)
        chains[entity_id] = (version + 1, entry["hash"])
        entries.append((partition, entity_id.encode(), sealed))
        by_type[entry["event_type"]] = by_type.get(entry["event_type"], 0) + 1
    return Built(entries, len(chains) - before, lives, honoured, penalty_entities, by_type, time.perf_counter() - started)


# --------------------------------------------------------------------------- the topic


async def recreate_topic(kafka: KafkaAccess) -> None:
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        if TOPIC.name in await admin.list_topics():
            await admin.delete_topics([TOPIC.name])
            deadline = time.monotonic() + 60
            while TOPIC.name in await admin.list_topics():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {TOPIC.name} was not deleted within 60 s")
                await asyncio.sleep(0.2)
        deadline = time.monotonic() + 60
        while True:  # right after a delete the broker may still answer TOPIC_ALREADY_EXISTS (36)
            resp = await admin.create_topics([NewTopic(TOPIC.name, TOPIC.partitions, 1, topic_configs=TOPIC.configs)])
            errors = [(code, msg) for _, code, *msg in resp.topic_errors if code]
            if not errors:
                break
            if errors[0][0] != 36 or time.monotonic() > deadline:
                raise RuntimeError(f"creating topic {TOPIC.name} failed: {errors}")
            await asyncio.sleep(0.5)
        deadline = time.monotonic() + 60
        while True:
            described = await admin.describe_topics([TOPIC.name])
            parts = described[0]["partitions"] if described and not described[0]["error_code"] else []
            if len(parts) == TOPIC.partitions and all(p["leader"] >= 0 for p in parts):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {TOPIC.name} has no leader for every partition after 60 s")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def delete_topic(kafka: KafkaAccess) -> None:
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        if TOPIC.name in await admin.list_topics():
            await admin.delete_topics([TOPIC.name])
    finally:
        await admin.close()


async def produce(kafka: KafkaAccess, entries: list[tuple[int, bytes, bytes]]) -> dict[int, int]:
    """Write the entries (idempotent, acks=all); returns the end offsets (partition -> offset)."""
    producer = AIOKafkaProducer(**kafka.options(), acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=262144, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        pending: list[Any] = []
        for partition, key, value in entries:
            pending.append(await producer.send(TOPIC.name, value=value, key=key, partition=partition))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**kafka.options(), group_id=None, isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC.name, p) for p in range(TOPIC.partitions)]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- fold only


def fold_only(entries: list[tuple[int, bytes, bytes]], batch: int) -> float:
    """Fold every entry in memory, in batches, carrying the states between batches as JSON (as the
    database does); returns seconds. No Kafka, no database: the fold's ceiling on this CPU."""
    rules = loader.load()
    folder = Folder(rules)
    states: dict[str, tuple[int, str]] = {}
    now_ms = int(time.time() * 1000)
    offsets = [0] * TOPIC.partitions
    started = time.perf_counter()
    for at in range(0, len(entries), batch):
        incoming = []
        for partition, key, value in entries[at:at + batch]:
            incoming.append(Incoming(partition, offsets[partition], key, value, now_ms))
            offsets[partition] += 1
        keys = {m.key.decode() for m in incoming if m.key is not None}
        loaded = Loaded({k: (states[k][0], EntityState.from_json(states[k][1])) for k in keys if k in states}, set())
        ops = folder.fold(incoming, loaded)
        states.update(ops.states)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the projector's own log lines

BATCHES: list[dict[str, Any]] = []


def _capture(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    if event.get("event") == "batch projected":
        BATCHES.append(dict(event))
        raise structlog.DropEvent
    if event.get("event") in ("projector running",):
        raise structlog.DropEvent
    return event


def capture_projector_logs() -> None:
    logs.configure("INFO")
    structlog.configure(processors=[_capture, *structlog.get_config()["processors"]])


# --------------------------------------------------------------------------- a projection run

TABLES = ("ledger_copy", "entity_state", "entities", "list_entries", "publicity", "quarantine", "held_entities",
          "positions")


def _fresh_schema(s: config.Settings, name: str, load: bool = False) -> tuple[list[str], list[Any]]:
    """A fresh schema of views, with a stored position 0 per partition of bench.events: the projector
    then seeks to 0 instead of calling seek_to_beginning, which races in aiokafka 0.14 with the
    consumer's own initial reset to "latest" (auto_offset_reset's default) and can leave a partition
    at its END, silently (seen here: a run that skipped all of partition 0). `load`: prepared for the
    rebuild's bulk load (returns its dropped indexes and keys)."""
    dropped: tuple[list[str], list[Any]] = ([], [])
    with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
        schema.drop(conn, name)
        if load:
            dropped = rebuild.prepare_load(conn, name)
        else:
            schema.create(conn, name)
        for partition in range(TOPIC.partitions):
            conn.execute(f'insert into "{name}".positions (topic, partition, next_offset) values (%s, %s, 0)',
                         (TOPIC.name, partition))
    return dropped


def _drop_schema(s: config.Settings, name: str) -> None:
    with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
        schema.drop(conn, name)


def _counts(s: config.Settings, name: str) -> dict[str, int]:
    with psycopg.connect(s.pg_dsn) as conn:
        out = {t: conn.execute(f'select count(*) from "{name}".{t}').fetchone()[0] for t in TABLES}  # type: ignore
        out["list_entries_ended"] = conn.execute(
            f"select count(*) from \"{name}\".list_entries where status <> 'active'").fetchone()[0]  # type: ignore
        out["publicity_ended"] = conn.execute(
            f"select count(*) from \"{name}\".publicity where status not in ('published', 'valid')"
        ).fetchone()[0]  # type: ignore
        return out


async def project(s: config.Settings, name: str, max_records: int, until: dict[int, int],
                  meter: Meter, workers: int = 1, indexes: str = "inline") -> dict[str, Any]:
    deferred, keys = _fresh_schema(s, name, load=indexes == "load")
    if indexes == "deferred":  # as consumers.projector.rebuild: secondary indexes built after the load (timed)
        with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
            deferred = schema.drop_secondary_indexes(conn, name)
    BATCHES.clear()
    gc.collect()
    rules = loader.load()
    projector = root.projector_service(s, Folder(rules), schema_name=name, max_records=max_records,
                                       topic=TOPIC, takes_switch_lock=False)
    meter.start()
    if workers > 1 or indexes == "load":  # as consumers.projector.rebuild does it; a worker's log lines are not captured
        applied = await rebuild.project_into(s, name, until, workers, TOPIC, max_records, rules=rules,
                                             load=indexes == "load")
        projector.records_read = applied
    else:
        applied = await projector.run(until=until)
    index_s = 0.0
    if indexes == "load":  # as the rebuild: the deferred status updates, the keys and the indexes (timed)
        t0 = time.perf_counter()
        with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
            rebuild.finish_load(conn, name, deferred, keys)
        index_s = time.perf_counter() - t0
    elif deferred:
        t0 = time.perf_counter()
        with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
            conn.execute("set local maintenance_work_mem = '256MB'")
            schema.create_indexes(conn, deferred)
        index_s = time.perf_counter() - t0
    cpu = meter.stop()
    phases = {k: sum(b.get(k, 0.0) for b in BATCHES) for k in ("seconds", "load_s", "fold_s", "write_s", "wait_s")}
    sizes = [b["records"] for b in BATCHES]
    return {"schema": name, "max_records": max_records, "workers": workers, "indexes": indexes,
            "index_s": index_s, "applied": applied, "read": projector.records_read,
            "rate": applied / cpu["wall_s"], "cpu": cpu, "phases": phases, "batches": len(BATCHES),
            "batch_records": (statistics.median(sizes), max(sizes)) if sizes else (0, 0)}


def profile_run(s: config.Settings, name: str, until: dict[int, int], top: int) -> str:
    _fresh_schema(s, name)
    projector = root.projector_service(s, schema_name=name, topic=TOPIC, takes_switch_lock=False)
    prof = cProfile.Profile()
    # the fold runs in a worker thread (asyncio.to_thread), overlapping the write of the batch before;
    # cProfile sees one thread, so the fold has a profiler of its own, merged into the figures
    fold_prof = cProfile.Profile()
    timed_fold = projector_module._timed_fold

    def profiled_fold(*args: Any) -> Any:
        fold_prof.enable()
        try:
            return timed_fold(*args)
        finally:
            fold_prof.disable()

    async def go() -> float:
        started = time.perf_counter()
        prof.enable()
        try:
            await projector.run(until=until)
        finally:
            prof.disable()
        return time.perf_counter() - started

    projector_module._timed_fold = profiled_fold  # type: ignore[assignment]
    try:
        wall = asyncio.run(go())
    finally:
        projector_module._timed_fold = timed_fold  # type: ignore[assignment]
    stats = pstats.Stats(prof)
    stats.add(fold_prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]

    def cum(fragment: str, func: str) -> float:
        return sum(v[3] for (f, _, n), v in stats.stats.items() if fragment in f and n == func)  # type: ignore

    def own(fragment: str, func: str) -> float:
        return sum(v[2] for (f, _, n), v in stats.stats.items() if fragment in f and n == func)  # type: ignore

    fold = cum("projections/rows.py", "fold")
    wait = own("~", "<method 'poll' of 'select.epoll' objects>") or own("", "<method 'poll' of 'select.epoll' objects>")
    write = cum("projections/views.py", "write")
    load = cum("projections/views.py", "load")
    lines = [f"cProfile of one run over {sum(until.values()):,} records: {wall:.1f} s wall under the profiler, "
             f"{total:.1f} s profiled (the fold's thread and the event loop's together: they overlap)",
             f"  fold (projections/rows.py Folder.fold, pure Python)      {fold:7.2f} s  {fold / total:6.1%}",
             f"  views.write, client-side Python only (COPY rows, psycopg) {write:7.2f} s  {write / total:6.1%}",
             f"  views.load, client-side (EntityState.from_json ...)       {load:7.2f} s  {load / total:6.1%}",
             f"  waiting in epoll (PostgreSQL and Kafka answering)         {wait:7.2f} s  {wait / total:6.1%}",
             "  (coroutines are profiled per resumption: their cumulative time is Python CPU time, not the time",
             "   spent awaiting the server, which is in the epoll wait)", ""]
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.add(fold_prof)
    st.sort_stats("tottime").print_stats(top)
    return "\n".join(lines) + buf.getvalue()


# --------------------------------------------------------------------------- the run


def _cut(end: dict[int, int], records: int) -> dict[int, int]:
    total = sum(end.values())
    if records >= total:
        return dict(end)
    return {p: o * records // total for p, o in end.items()}


def report_run(r: dict[str, Any]) -> None:
    c, ph = r["cpu"], r["phases"]
    wall = c["wall_s"]
    workers = r.get("workers", 1)
    per = 1e6 * wall / max(r["applied"], 1)  # us of wall per event; x cores busy = us of CPU per event
    built = f" (of which building the secondary indexes {r['index_s']:.1f} s)" if r.get("index_s") else ""
    print(f"  max_records {r['max_records']:>6,}, {workers} projector process{'es' if workers > 1 else ''}, "
          f"{r.get('indexes', 'inline')} secondary indexes: {r['applied']:,} events in {wall:.1f} s{built} = "
          f"{r['rate']:,.0f} events/s")
    print(f"    CPU per event: projector {c['projector_cores'] * per:.0f} us, PostgreSQL {c['postgres_cores'] * per:.0f} us, "
          f"broker {c['broker_cores'] * per:.0f} us; at these costs two free cores would give about "
          f"{2e6 / max((c['projector_cores'] + c['postgres_cores'] + c['broker_cores']) * per, 1e-9):,.0f} events/s")
    if workers > 1:
        print(f"    CPU cores busy on average: projector processes {c['projector_cores']:.2f}, PostgreSQL "
              f"{c['postgres_cores']:.2f}, broker {c['broker_cores']:.2f}, other {c['other_cores']:.2f}; "
              f"{r.get('quiet', '')}")
        return
    print(f"    {r['batches']} batches, median {r['batch_records'][0]:,.0f} records, max {r['batch_records'][1]:,}")
    print(f"    phases (sum over batches, from the projector's 'batch projected' log lines; a batch is loaded and "
          f"folded while the one before is written): load {ph['load_s']:.1f} s ({ph['load_s'] / wall:.0%}), fold "
          f"{ph['fold_s']:.1f} s ({ph['fold_s'] / wall:.0%}), write+commit {ph['write_s']:.1f} s "
          f"({ph['write_s'] / wall:.0%}), folded and waiting for the write before {ph['wait_s']:.1f} s "
          f"({ph['wait_s'] / wall:.0%})")
    print(f"    CPU cores busy on average: projector process {c['projector_cores']:.2f}, PostgreSQL "
          f"{c['postgres_cores']:.2f}, broker {c['broker_cores']:.2f}, other {c['other_cores']:.2f}; "
          f"{r.get('quiet', '')}")


def infrastructure(s: config.Settings) -> tuple[stack.Kafka, stack.Postgres]:
    """Kafka and PostgreSQL of the settings, started (without the services) if Kafka is not running."""
    kafka, pg = stack.Kafka(s), stack.Postgres(s)
    if kafka.pid() is None or not pg.running():
        _say("Kafka or PostgreSQL is not running: starting the infrastructure (ops.stack.up, services=False)")
        stack.up(s, services=False)
    return kafka, pg


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.projection", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--life-share", type=float, default=0.10,
                   help="share of the events that come from full life() histories (default 0.10)")
    p.add_argument("--max-records", type=int, nargs="+", default=[5000, 20000],
                   help="the projector's max_records, one run each (default: 5000 20000)")
    p.add_argument("--workers", type=int, nargs="+", default=[1],
                   help="projector processes sharing the partitions, one run each (as consumers.projector.rebuild "
                        "--workers; default: 1)")
    p.add_argument("--indexes", nargs="+", choices=("inline", "deferred", "load"), default=["inline"],
                   help="secondary indexes kept up to date while projecting (inline, as the live projector), "
                        "or dropped and built after the load (deferred), or the rebuild's bulk load (load, as "
                        "consumers.projector.rebuild: no keys on the large tables, each entity's rows once); one run each")
    p.add_argument("--profile", type=int, default=0, metavar="M",
                   help="also profile one run over the first M records (cProfile)")
    p.add_argument("--top", type=int, default=25, help="functions listed by the profile")
    p.add_argument("--no-fold-only", action="store_true", help="skip the in-memory fold measurement")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the floor: a plain binary COPY of the same final rows into the same tables "
                        "(bench/copy_floor.py)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--wait-quiet", type=float, default=600, metavar="S",
                   help="before each run, wait up to S seconds for the rest of the machine to be idle (0: no)")
    p.add_argument("--quiet-cores", type=float, default=0.5,
                   help="'quiet': the machine busy with less than this many cores (the idle demo stack "
                        "itself uses 0.1-0.4)")
    p.add_argument("--keep", action="store_true", help="keep the schemas and the topic")
    a = p.parse_args()

    s = config.load()
    kafka, pg = infrastructure(s)
    capture_projector_logs()
    facts = machine()
    meter = Meter(pg.pid(), kafka.pid())

    _say(f"building {a.events:,} sealed ledger entries (seed {a.seed}) ...")
    built = build(a.events, a.seed, a.life_share, s.id_pepper)
    n = len(built.entries)
    value_bytes = statistics.fmean(len(v) for _, _, v in built.entries)
    _say(f"  {n:,} entries for {built.entities:,} entities in {built.build_s:.1f} s")
    fold_s = None
    if not a.no_fold_only:
        _say("fold only (in memory, batches of 5,000) ...")
        gc.collect()
        gc.freeze()  # the built entries out of the collector's reach, as in the projector's runs below
        fold_s = fold_only(built.entries, 5000)
    floor_rows = None
    if not a.no_floor:
        _say("folding the entries in memory for the floor's rows (untimed) ...")
        floor_rows = copy_floor.final_rows(built.entries, Folder(loader.load()), TOPIC.partitions)
    _say(f"recreating topic {TOPIC.name} and writing the entries ...")
    asyncio.run(recreate_topic(access(s, ADMIN)))
    t0 = time.perf_counter()
    end = asyncio.run(produce(access(s, ADMIN), built.entries))
    produce_s = time.perf_counter() - t0
    by_type, entities, lives, honoured, penalty_entities, build_s = (
        built.by_type, built.entities, built.lives, built.honoured, built.penalty_entities, built.build_s)
    del built
    gc.collect()
    gc.freeze()  # nothing of the workload is left in memory: the projector runs as in its own process
    assert sum(end.values()) == n, (end, n)

    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    runs, schemas_made = [], []
    # the projector reads as its own principal: for the run, it may read the benchmark's topic too
    with acls.granted(s, [acls.Grant(PROJECTOR, acls.TOPIC, TOPIC.name, acls.READ)]):
        try:
            for mr, workers, indexes in ((mr, w, i) for i in a.indexes for w in a.workers for mr in a.max_records):
                name = f"bench_projection_{stamp}_{mr}_{workers}_{indexes}"
                schemas_made.append(name)
                quiet = wait_quiet(a.wait_quiet, a.quiet_cores) if a.wait_quiet > 0 else "did not wait for a quiet machine"
                _say(f"projecting {n:,} events into the fresh schema {name} (max_records {mr}, {workers} "
                     f"process(es); {quiet}) ...")
                runs.append(asyncio.run(project(s, name, mr, end, meter, workers, indexes)))
                runs[-1]["quiet"] = quiet
                runs[-1]["counts"] = _counts(s, name)
                with psycopg.connect(s.pg_dsn) as conn:  # every run must write the same views
                    runs[-1]["digest"] = schema.combined(schema.digest(conn, name))
                if not a.keep:
                    _drop_schema(s, name)
            floor = None
            if floor_rows is not None:
                name = f"bench_projection_{stamp}_floor"
                schemas_made.append(name)
                quiet = wait_quiet(a.wait_quiet, a.quiet_cores) if a.wait_quiet > 0 else "did not wait for a quiet machine"
                _say(f"the floor: a plain binary COPY of the same rows into the fresh schema {name} ({quiet}) ...")
                _fresh_schema(s, name)
                floor = asyncio.run(copy_floor.copy_floor(s, name, *floor_rows, meter.start, meter.stop))
                floor["quiet"], floor["counts"] = quiet, _counts(s, name)
                del floor_rows
                if not a.keep:
                    _drop_schema(s, name)
            profile = None
            if a.profile:
                name = f"bench_projection_{stamp}_profile"
                schemas_made.append(name)
                _say(f"profiling one run over the first {min(a.profile, n):,} records ...")
                profile = profile_run(s, name, _cut(end, a.profile), a.top)
                if not a.keep:
                    _drop_schema(s, name)
        finally:
            if not a.keep:
                for name in schemas_made:
                    _drop_schema(s, name)
                asyncio.run(delete_topic(access(s, ADMIN)))

    print()
    print(f"Projection benchmark, {facts['date']}")
    print(f"machine     {facts['cpu']}, {facts['nproc']} cores, {facts['mem_gib']} GiB, Python {facts['python']}; "
          f"load average at start {facts['load'][0]:.2f} {facts['load'][1]:.2f} {facts['load'][2]:.2f}")
    print(f"workload    {n:,} sealed LedgerEntry records ({value_bytes:,.0f} B mean value) for {entities:,} entities: "
          f"{lives:,} full life() histories, {honoured:,} honoured_life(), {penalty_entities:,} penalty-only entities "
          f"(seed {a.seed}); built in {build_s:.1f} s")
    types = sorted(by_type.items(), key=lambda x: -x[1])
    print("            event types: " + ", ".join(f"{t} {c:,}" for t, c in types))
    print(f"topic       {TOPIC.name}, {TOPIC.partitions} partitions, end offsets {end}; written in {produce_s:.1f} s")
    if fold_s is not None:
        print(f"fold only   {n / fold_s:,.0f} events/s  (projections.rows.Folder in memory, batches of 5,000, "
              f"states carried as JSON; no Kafka, no database)")
    print("projector   Projector(..., topic=bench.events, takes_switch_lock=False).run(until=end offsets), "
          "fresh schema each run:")
    for r in runs:
        report_run(r)
        if r["applied"] != n:
            print(f"    INVALID RUN: {r['applied']:,} events applied of {n:,}")
    runs = [r for r in runs if r["applied"] == n]
    if runs:
        c = runs[0]["counts"]
        print("    rows written (first run): " + ", ".join(f"{t} {v:,}" for t, v in c.items()))
        for r in runs[1:]:
            if r["counts"] != c:
                print(f"    WARNING: the run with max_records {r['max_records']} wrote other counts: {r['counts']}")
        digests = {r["digest"] for r in runs}
        print("    digests of the views (projections.schema.digest): "
              + ("the same in every run" if len(digests) == 1 else f"WARNING: {len(digests)} different ones")
              + f" ({runs[0]['digest'][:16]})")
        best = max(runs, key=lambda r: r["rate"])
        # what consumers.projector.rebuild uses: max_records 5,000, 2 worker processes, the bulk load
        default = next((r for r in runs if r["max_records"] == 5000 and r.get("workers") == 2
                        and r.get("indexes") == "load"),
                       next((r for r in runs if r["max_records"] == 5000), runs[0]))
        print(f"target      >= 25,000 events/s: {'met' if best['rate'] >= 25_000 else 'NOT met'} "
              f"(best {best['rate']:,.0f} events/s, {best['rate'] / 25_000:.2f}x of the target)")
        print(f"ESTIMATE    (not a measurement) full rebuild of 10,000,000 events at the measured rate with "
              f"max_records {default['max_records']} and {default.get('workers', 1)} process(es) and {default.get('indexes')} "
              f"indexes (consumers.projector.rebuild uses 5,000, 2 and load): 10,000,000 / "
              f"{default['rate']:,.0f} = {TEN_MILLION / default['rate'] / 60:,.0f} min; at the best measured rate "
              f"{TEN_MILLION / best['rate'] / 60:,.0f} min (target <= 5 min). Linear extrapolation from "
              f"{n:,} events: it ignores the growth of the tables and their indexes beyond memory.")
    if floor is not None:
        c, wall = floor["cpu"], floor["wall_s"]
        per = 1e6 * wall / n
        print("floor       a plain COPY (FORMAT BINARY, psycopg write_row) of the same final rows into the same "
              "tables and indexes, one transaction (bench/copy_floor.py): "
              + ", ".join(f"{t} {v:,}" for t, v in floor["rows"].items()))
        print(f"    {n:,} events' rows in {wall:.2f} s = {n / wall:,.0f} events/s; CPU per event: client "
              f"{c['projector_cores'] * per:.0f} us, PostgreSQL {c['postgres_cores'] * per:.0f} us; "
              f"other work {c['other_cores']:.2f} cores; {floor['quiet']}")
        for r in runs:
            print(f"    projector (max_records {r['max_records']:,}, {r.get('workers', 1)} process(es), "
                  f"{r.get('indexes')} indexes) / floor = {r['rate']:,.0f} / {n / wall:,.0f} = "
                  f"{r['rate'] * wall / n:.2f}x (target >= 0.5x)")
        if runs and any(floor["counts"][t] != runs[0]["counts"][t] for t in floor["counts"] if t != "positions"):
            print(f"    WARNING: the floor's tables hold other counts than the projector's: {floor['counts']}")
    if profile:
        print()
        print(profile)


if __name__ == "__main__":
    main()

