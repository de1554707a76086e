"""Benchmark: the HTTP submission gateway (ledger/intake/gateway/), beside the eventsourcing peer.

    PYTHONPATH=. .venv/bin/python -m bench.gateway [--seconds 20] [--clients 32] [--batch-events 30000]
                                                   [--peer-events 10000] [--append-docs]

Against the stack of the environment's settings (the demo stack by default: `ops/stack up`, the
gateway on 127.0.0.1:8081). It starts the infrastructure and the sequencer and the gateway if they
are not running (it never restarts a running sequencer), and stops the projector during the
measurements (restarting it afterwards if it ran), so that the figures are the write path's.

Measurements, each on fresh realistic penalty submissions (ops.workload.penalty: 10,000 entities,
three departments, each request with its department's bearer token; the JSON bodies are built
before the timer starts):

1. single, synchronous: `--clients` closed-loop clients (default 32), each POSTing one event to
   /v1/events and waiting for the answer, which carries the sequencer's outcome (timeout=30), for
   `--seconds`; throughput (answers/s) and latency percentiles from a histogram (0.1 ms buckets).
2. single, acknowledged only: the same with timeout=0: the answer (202) comes once Kafka has the
   signed submission, before the sequencer's judgement: the gateway's own capacity.
3. batch, synchronous: /v1/events:batch with batches of `--batch-size` (1,000) events from
   `--batch-clients` (2) closed-loop clients until `--batch-events` are answered with outcomes.
4. batch, acknowledged only: the same with timeout=0.
5. the peer: the first `--peer-events` events of (1) appended one entity at a time through the
   `eventsourcing` library's PostgreSQL recorder (bench/peer.py), and the ratios.

Between two measurements it waits until the sequencer has judged everything submitted. Around
each one it reads from /proc the CPU used by the gateway, the sequencer, the broker, this client and
everything else. It also times the gateway's own steps per event in this process (JSON parse,
Avro-schema decode, identity check, Avro encode + Ed25519 sign). --append-docs appends the results
to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from bench import peer
from ledger.intake import openapi
from ledger.intake.gateway import checks
from ledger.platform import config, signing
from ledger.records import submissions
from ledger.rules import loader
from ops import stack as ops_stack
from ops import workload
from schemas import registry

TICK = os.sysconf("SC_CLK_TCK")
DEPARTMENTS = list(workload.PENALTY_DEPARTMENTS)
TARGETS = {"single": (5000, 20.0), "batch": 30000}


# --------------------------------------------------------------------------- measuring


class Histogram:
    """Latencies in 0.1 ms buckets up to 2 s (and one overflow bucket)."""

    WIDTH, BUCKETS = 0.0001, 20000

    def __init__(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)
        self.n, self.total, self.max = 0, 0.0, 0.0

    def add(self, seconds: float) -> None:
        self.counts[min(int(seconds / self.WIDTH), self.BUCKETS)] += 1
        self.n += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def percentile(self, q: float) -> float:
        """The upper edge of the bucket holding the q-th quantile, in ms."""
        rank, seen = q * self.n, 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank and c:
                return (i + 1) * self.WIDTH * 1000 if i < self.BUCKETS else self.max * 1000
        return 0.0

    def summary(self) -> dict[str, float]:
        return {"mean_ms": round(self.total / max(self.n, 1) * 1000, 2),
                **{f"p{k}_ms": round(self.percentile(q), 1) for k, q in
                   (("50", 0.5), ("90", 0.9), ("99", 0.99), ("99.9", 0.999))},
                "max_ms": round(self.max * 1000, 1)}


def _pid_cpu(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _machine_busy() -> float:
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / TICK


class Meter:
    """Cores used on average by each process of interest and by everything else."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {**pids, "client": os.getpid()}

    def __enter__(self) -> Meter:
        self.t0, self.busy0 = time.perf_counter(), _machine_busy()
        self.cpu0 = {k: _pid_cpu(p) for k, p in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        used = {k: _pid_cpu(p) - self.cpu0[k] for k, p in self.pids.items()}
        other = max(0.0, _machine_busy() - self.busy0 - sum(used.values()))
        self.cores = {k: round(v / self.wall, 2) for k, v in {**used, "other": other}.items()}
        self.cpu = used


# --------------------------------------------------------------------------- the workload


class Workload:
    def __init__(self, seed: int, entities: int, tokens: dict[str, str]) -> None:
        self.rng = random.Random(seed)
        self.subjects = workload.subjects(self.rng, entities)
        self.seq = seed % 10_000 * 10_000_000
        self.tokens = tokens
        self.today = datetime.now(UTC).date()

    def make(self, n: int) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for _ in range(n):
            self.seq += 1
            dept = DEPARTMENTS[self.seq % len(DEPARTMENTS)]
            decided = self.today - timedelta(days=self.rng.randrange(0, 20))
            out.append((dept, workload.penalty(self.rng, self.subjects[self.seq % len(self.subjects)], dept,
                                               self.seq, decided=decided)))
        return out


def as_json(record: dict[str, Any]) -> Any:
    return json.loads(json.dumps(record, ensure_ascii=False, default=lambda v: v.isoformat()))


def body(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, default=lambda v: v.isoformat()).encode()


def build_batches(wl: Workload, count: int, size: int) -> list[tuple[str, bytes, int]]:
    """`count` JSON bodies for /v1/events:batch of `size` events each, departments in turn."""
    batches: list[tuple[str, bytes, int]] = []
    for _ in range(count):
        dept = DEPARTMENTS[len(batches) % len(DEPARTMENTS)]
        recs = [r for d, r in wl.make(size * len(DEPARTMENTS)) if d == dept][:size]
        batches.append((dept, json.dumps([as_json(r) for r in recs], ensure_ascii=False).encode(), len(recs)))
    return batches


# --------------------------------------------------------------------------- the runs


async def single(session: aiohttp.ClientSession, base: str, tokens: dict[str, str],
                 pool: list[tuple[str, bytes]], clients: int, seconds: float, timeout: float) -> dict[str, Any]:
    hist = Histogram()
    statuses: dict[str, int] = {}
    cursor = iter(pool)
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        for dept, data in cursor:
            if time.perf_counter() >= deadline:
                return
            headers = {"Authorization": f"Bearer {tokens[dept]}", "Content-Type": "application/json"}
            t0 = time.perf_counter()
            async with session.post(f"{base}/v1/events", data=data, headers=headers,
                                    params={"timeout": str(timeout)}) as r:
                answer = await r.json()
            hist.add(time.perf_counter() - t0)
            key = f"{r.status} {answer.get('status', answer.get('error', '')[:40])}"
            statuses[key] = statuses.get(key, 0) + 1
        raise RuntimeError("the pre-built pool ran out: raise the pool size")

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"requests": hist.n, "seconds": round(wall, 2), "per_second": round(hist.n / wall),
            "latency": hist.summary(), "statuses": statuses}


async def batch(session: aiohttp.ClientSession, base: str, tokens: dict[str, str],
                batches: list[tuple[str, bytes, int]], clients: int, timeout: float) -> dict[str, Any]:
    hist = Histogram()
    statuses: dict[str, int] = {}
    cursor = iter(batches)
    events = 0

    async def client() -> None:
        nonlocal events
        for dept, data, n in cursor:
            headers = {"Authorization": f"Bearer {tokens[dept]}", "Content-Type": "application/json"}
            t0 = time.perf_counter()
            async with session.post(f"{base}/v1/events:batch", data=data, headers=headers,
                                    params={"timeout": str(timeout)}) as r:
                answer = await r.json()
            hist.add(time.perf_counter() - t0)
            if r.status not in (200, 202):
                raise RuntimeError(f"batch answered {r.status}: {str(answer)[:300]}")
            for status, count in answer["counts"].items():
                statuses[status] = statuses.get(status, 0) + count
            events += n

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"batches": hist.n, "events": events, "seconds": round(wall, 2), "per_second": round(events / wall),
            "batch_latency": hist.summary(), "statuses": statuses}


@contextlib.asynccontextmanager
async def lag_probe(s: config.Settings) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """A function that counts the submissions on credit.submissions the sequencer has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=None)
    await admin.start()
    await consumer.start()
    tps = [TopicPartition(registry.SUBMISSIONS.name, p) for p in range(registry.SUBMISSIONS.partitions)]

    async def lag() -> int:
        end = await consumer.end_offsets(tps)
        try:
            committed = await admin.list_consumer_group_offsets("credit-sequencer")
        except GroupCoordinatorNotAvailableError:  # on a new stack no group has committed yet
            committed = {}
        return sum(max(0, end[tp] - (committed[tp].offset if committed.get(tp) is not None else 0)) for tp in tps)

    try:
        yield lag
    finally:
        await consumer.stop()
        await admin.close()


async def drained(s: config.Settings, timeout: float = 600.0) -> float:
    """Wait until the sequencer's committed offsets reach the end of credit.submissions."""
    started = time.perf_counter()
    async with lag_probe(s) as lag:
        while time.perf_counter() - started < timeout:
            if await lag() == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.5)
    raise SystemExit(f"the sequencer did not catch up within {timeout:.0f} s")


def stage_costs(records: list[tuple[str, dict[str, Any]]], keys_dir: Path) -> dict[str, float]:
    """Microseconds per event of the gateway's own steps, in this process, one event at a time."""
    matrix = loader.load_departments()
    bodies = [(d, body(r)) for d, r in records]
    keys = {d: signing.private_key(keys_dir, d) for d in DEPARTMENTS}
    out: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        result = fn()
        out[name] = round((time.perf_counter() - t0) / len(records) * 1e6, 1)
        return result

    objs = timed("json parse", lambda: [openapi.parse_json(b) for _, b in bodies])
    decoded = timed("authorize + Avro-schema decode", lambda: [
        (checks.authorize(matrix, d, o), openapi.decode_event(o))[1] for (d, _), o in zip(bodies, objs, strict=True)])
    timed("identity check (first time: not remembered yet)", lambda: [
        checks.precheck(rec, b"bench-pepper-0123456789") for _, rec in decoded])
    timed("Avro encode + key", lambda: [(registry.encode(n, rec), submissions.submission_key(
        rec["envelope"]["subject"]["id_type"], rec["envelope"]["subject"]["id"])) for n, rec in decoded])
    timed("encode + Ed25519 sign (submissions.make)", lambda: [
        submissions.make(rec, d, keys[d]) for (d, _), (_, rec) in zip(bodies, decoded, strict=True)])
    return out


# --------------------------------------------------------------------------- the whole run


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


async def run(a: argparse.Namespace) -> dict[str, Any]:
    s = config.load()
    services = {n: ops_stack.Service(s, n) for n in ("sequencer", "projector", "gateway")}
    projector_ran = services["projector"].pid() is not None
    if projector_ran:
        await asyncio.to_thread(services["projector"].stop)
    for name in ("sequencer", "gateway"):
        if services[name].pid() is None:
            await asyncio.to_thread(services[name].start)
    tokens = {p.stem: p.read_text().strip() for p in s.keys_dir.glob("*.token")}
    base = f"http://127.0.0.1:{s.gateway_port}"
    pids = {"gateway": services["gateway"].pid(), "sequencer": services["sequencer"].pid(),
            "broker": ops_stack.Kafka(s).pid()}
    wl = Workload(a.seed, a.entities, tokens)
    peer_records: list[dict[str, Any]] = []
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "args": vars(a)}
    try:
        print("stage costs (this process, 2,000 events) ...", flush=True)
        results["stages_us"] = stage_costs(wl.make(2000), s.keys_dir)
        pool_size = int(a.seconds * 6000) + 1000
        connector = aiohttp.TCPConnector(limit=max(a.clients, a.batch_clients) + 4)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
            await drained(s)
            for name, timeout in (("single_sync", 30.0), ("single_ack", 0.0)):
                records = wl.make(pool_size)
                if name == "single_sync":
                    peer_records = [r for _, r in records[:a.peer_events]]
                pool = [(d, body(r)) for d, r in records]
                del records
                gc.collect()
                gc.freeze()
                print(f"{name}: {a.clients} clients for {a.seconds:g} s ...", flush=True)
                with Meter(pids) as m:
                    res = await single(session, base, tokens, pool, a.clients, a.seconds, timeout)
                res["cores"] = m.cores
                res["gateway_cpu_us_per_request"] = round(m.cpu["gateway"] / max(res["requests"], 1) * 1e6)
                res["drain_seconds"] = round(await drained(s), 1)
                results[name] = res
                print(f"  {res}", flush=True)
            for name, timeout in (("batch_sync", 30.0), ("batch_ack", 0.0)):
                batches = build_batches(wl, max(1, a.batch_events // a.batch_size), a.batch_size)
                gc.collect()
                gc.freeze()
                print(f"{name}: {len(batches)} batches of {a.batch_size}, {a.batch_clients} clients ...", flush=True)
                with Meter(pids) as m:
                    res = await batch(session, base, tokens, batches, a.batch_clients, timeout)
                res["cores"] = m.cores
                res["gateway_cpu_us_per_event"] = round(m.cpu["gateway"] / max(res["events"], 1) * 1e6)
                res["drain_seconds"] = round(await drained(s), 1)
                results[name] = res
                print(f"  {res}", flush=True)
    finally:
        if projector_ran:
            await asyncio.to_thread(services["projector"].start)
    print(f"peer: {len(peer_records)} events through eventsourcing + PostgreSQL ...", flush=True)
    n, seconds = peer.append_one_entity_at_a_time(s, peer_records)
    results["peer"] = {"events": n, "seconds": round(seconds, 2), "per_second": round(n / seconds)}
    return results


def report(r: dict[str, Any]) -> str:
    ss, sa, bs, ba, pe = r["single_sync"], r["single_ack"], r["batch_sync"], r["batch_ack"], r["peer"]
    lat = ss["latency"]
    peer_rate = pe["per_second"]
    rows = [
        ("single events, synchronous outcome (32 clients)", f"{ss['per_second']:,}/s",
         f"p50 {lat['p50_ms']} / p99 {lat['p99_ms']} / max {lat['max_ms']} ms",
         f">= {TARGETS['single'][0]:,}/s, p99 <= {TARGETS['single'][1]:g} ms", f"{ss['per_second'] / peer_rate:.1f}x"),
        ("single events, acknowledged by Kafka only (timeout=0)", f"{sa['per_second']:,}/s",
         f"p50 {sa['latency']['p50_ms']} / p99 {sa['latency']['p99_ms']} ms", "", f"{sa['per_second'] / peer_rate:.1f}x"),
        (f"batch of {r['args']['batch_size']:,}, synchronous outcomes", f"{bs['per_second']:,} events/s",
         f"per batch p50 {bs['batch_latency']['p50_ms']:,} ms", f">= {TARGETS['batch']:,} events/s",
         f"{bs['per_second'] / peer_rate:.1f}x"),
        (f"batch of {r['args']['batch_size']:,}, acknowledged only", f"{ba['per_second']:,} events/s",
         f"per batch p50 {ba['batch_latency']['p50_ms']:,} ms", "", f"{ba['per_second'] / peer_rate:.1f}x"),
        (f"eventsourcing 9.5.6 + PostgreSQL, one entity at a time ({pe['events']:,} of the same events)",
         f"{peer_rate:,}/s", "", "(peer)", "1x"),
    ]
    lines = ["| path | throughput | latency | target | vs peer |", "|---|---:|---|---|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    cores = ["| run | gateway | sequencer | broker | bench client | other | gateway CPU per event |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in ("single_sync", "single_ack", "batch_sync", "batch_ack"):
        c, x = r[name]["cores"], r[name]
        per = x.get("gateway_cpu_us_per_request", x.get("gateway_cpu_us_per_event"))
        cores.append(f"| {name} | {c['gateway']} | {c['sequencer']} | {c['broker']} | {c['client']} | {c['other']} "
                     f"| {per} us |")
    stages = "; ".join(f"{k} {v} us" for k, v in r["stages_us"].items())
    statuses = "; ".join(f"{n}: {r[n]['statuses']}" for n in ("single_sync", "single_ack", "batch_sync", "batch_ack"))
    return "\n".join([*lines, "", "Cores busy on average during each run (2 cores in all):", "", *cores, "",
                      f"The gateway's steps per event (one process, one event at a time): {stages}.", "",
                      f"Answers: {statuses}."])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0, help="duration of each single-event run")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--batch-events", type=int, default=30_000)
    p.add_argument("--batch-clients", type=int, default=2)
    p.add_argument("--entities", type=int, default=10_000)
    p.add_argument("--peer-events", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--append-docs", action="store_true", help="append the results to docs/benchmarks.md")
    a = p.parse_args()
    a.seed = a.seed if a.seed is not None else random.SystemRandom().randrange(10**9)
    print(f"workload seed {a.seed} (replay with --seed {a.seed})", flush=True)
    ops_stack.up(config.load(), services=False)
    r = asyncio.run(run(a))
    text = report(r)
    print(f"\ndate     {r['date']}\nmachine  {r['machine']}\n\n{text}")
    Path(f"/tmp/bench-gateway-{a.seed}.json").write_text(json.dumps(r, indent=1, default=str))
    if a.append_docs:
        with open(config.ROOT / "docs" / "benchmarks.md", "a", encoding="utf-8") as f:
            f.write(f"\n## HTTP gateway: single events and batches, beside the eventsourcing peer (run of {r['date']})\n\n"
                    f"Command: `PYTHONPATH=. .venv/bin/python -m bench.gateway --seconds {a.seconds:g} --clients "
                    f"{a.clients} --batch-events {a.batch_events} --peer-events {a.peer_events} --append-docs` "
                    f"(demo stack; projector stopped during the runs). Machine: {r['machine']}.\n\n{text}\n")
        print("appended to docs/benchmarks.md")


if __name__ == "__main__":
    main()
