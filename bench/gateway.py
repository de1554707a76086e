"""Benchmark: the HTTP submission gateway (ledger/intake/gateway/), open loop, beside the eventsourcing peer.

    PYTHONPATH=. .venv/bin/python -m bench.gateway [--rates 500,1000,2000,3000,5000] [--seconds 10]
        [--loaders 0] [--connections 1000] [--search-steps 3] [--p99-ms 20] [--batch-events 20000]
        [--peer-events 5000] [--peer-writers 1,4,8,16] [--append-docs]

Against the stack of the environment's settings (the demo stack by default: `ops/stack up`). It
starts the infrastructure, the sequencer and the gateway if they are not running (it never restarts a
running sequencer) and stops every other service of the stack during the measurements (bench/quiet.py:
starting them again afterwards), so that the figures are the write path's alone. Every request carries realistic penalty submissions
(ops.workload.penalty: `--entities` entities, three departments, each with its bearer token), built
before the clock starts; every event id is new.

1. Open loop at fixed rates (`--rates`, events/s): single events POSTed to /v1/events with their
   outcome (timeout=30), each scheduled at a fixed instant (t0 + i/rate) whether or not earlier ones
   were answered, over up to `--connections` connections, for `--seconds`. The latency of a request
   is measured from its SCHEDULED send time, not from when it was sent, so a stalled server or a
   late load generator counts against the figure (no coordinated omission); a request due while
   every connection is busy waits for one, and that wait counts too. Reported: p50, p99,
   max, the achieved rate (answers / time from the first scheduled send to the last answer), the
   answers by status, how late the load generators sent (p99 of send time minus scheduled time) and
   the CPU the load generators used. The load comes from `--loaders` processes (0: one per 1,500/s
   of rate, at most the number of cores; each process schedules every n-th request), because one
   Python process cannot keep a 5,000/s schedule on its own; a loader busy more than 90% of the run
   is flagged in the table, and its figures are then a floor for the latency, not the gateway's.
2. The sweep: after the fixed rates, `--search-steps` bisections between the highest rate whose p99
   was at or under `--p99-ms` and the lowest that was not; the highest such rate is reported.
3. Batches of `--batch-size` (1,000) to /v1/events:batch with every outcome (timeout=30), from
   `--batch-clients` (2) closed-loop clients until `--batch-events` events are answered: events/s.
4. The peer (bench/peer.py): the first `--peer-events` events of the first open-loop run appended
   through the `eventsourcing` library's PostgreSQL recorder into a fresh database of the same
   PostgreSQL, with 1, 4, 8 and 16 concurrent writers (`--peer-writers`; entities split between
   writers so that each aggregate has one writer); the best is compared.

Between two measurements it waits until the sequencer has judged everything submitted. Each figure
is printed with the machine's load average (os.getloadavg) at its end and the cores used during it
by the gateway, the sequencer, the broker, the load generators and everything else (/proc). It also
times the gateway's own steps per event in this process, including the attestation of one event
alone against 32 signed together (one event-loop turn's worth), and reads from the gateway's
/metrics how many single events each of its signatures covered during each run. Results go to
/tmp/bench-gateway-<seed>.json; --append-docs appends the table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import platform
import random
import re
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import peer, quiet
from ledger.intake import openapi
from ledger.intake.gateway import checks
from ledger.platform import config, signing
from ledger.platform.kafka_access import ADMIN, access
from ledger.records import submissions
from ledger.rules import loader
from ops import stack as ops_stack
from ops import workload
from schemas import registry

TICK = os.sysconf("SC_CLK_TCK")
DEPARTMENTS = list(workload.PENALTY_DEPARTMENTS)
RATE_PER_LOADER = 1500  # events/s one load process schedules comfortably (uvloop, aiohttp)


# --------------------------------------------------------------------------- measuring


class Histogram:
    """Latencies in 0.1 ms buckets up to 300 s (and one overflow bucket; only the buckets used are
    kept); mergeable across processes."""

    WIDTH, BUCKETS = 0.0001, 3_000_000

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n, self.total, self.max = 0, 0.0, 0.0

    def add(self, seconds: float) -> None:
        b = min(int(seconds / self.WIDTH), self.BUCKETS)
        self.counts[b] = self.counts.get(b, 0) + 1
        self.n += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def merge(self, other: dict[str, Any]) -> None:
        for b, c in other["counts"].items():
            self.counts[int(b)] = self.counts.get(int(b), 0) + c
        self.n += other["n"]
        self.total += other["total"]
        self.max = max(self.max, other["max"])

    def state(self) -> dict[str, Any]:
        return {"counts": self.counts, "n": self.n, "total": self.total, "max": self.max}

    def percentile(self, q: float) -> float:
        """The upper edge of the bucket holding the q-th quantile, in ms."""
        rank, seen = q * self.n, 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return (b + 1) * self.WIDTH * 1000 if b < self.BUCKETS else self.max * 1000
        return 0.0

    def summary(self) -> dict[str, float]:
        return {"mean_ms": round(self.total / max(self.n, 1) * 1000, 2),
                **{f"p{k}_ms": round(self.percentile(q), 1) for k, q in (("50", 0.5), ("99", 0.99), ("99.9", 0.999))},
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


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Meter:
    """Cores used on average by each process of interest and by everything else; the load
    generators' CPU is added by the caller (`loaders`) as they report it."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {**pids, "bench": os.getpid()}
        self.loaders = 0.0

    def __enter__(self) -> Meter:
        self.t0, self.busy0 = time.perf_counter(), _machine_busy()
        self.cpu0 = {k: _pid_cpu(p) for k, p in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        used = {k: _pid_cpu(p) - self.cpu0[k] for k, p in self.pids.items()}
        used["loaders"] = self.loaders
        other = max(0.0, _machine_busy() - self.busy0 - sum(used.values()))
        self.cores = {k: round(v / self.wall, 2) for k, v in {**used, "other": other}.items()}
        self.cpu = used
        self.load = load_average()


def gateway_metric(s: config.Settings, name: str) -> float:
    """One sample of the gateway's /metrics (0 when absent)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port('gateway')}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


# --------------------------------------------------------------------------- the workload


class Workload:
    def __init__(self, seed: int, entities: int) -> None:
        self.rng = random.Random(seed)
        self.subjects = workload.subjects(self.rng, entities)
        self.seq = seed % 10_000 * 10_000_000
        self.today = datetime.now(UTC).date()

    def make(self, n: int, department: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for _ in range(n):
            self.seq += 1
            dept = department or DEPARTMENTS[self.seq % len(DEPARTMENTS)]
            decided = self.today - timedelta(days=self.rng.randrange(0, 20))
            out.append((dept, workload.penalty(self.rng, self.subjects[self.seq % len(self.subjects)], dept,
                                               self.seq, decided=decided)))
        return out


def body(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False, default=lambda v: v.isoformat()).encode()


# --------------------------------------------------------------------------- the open loop


def _loader(url: str, tokens: dict[str, str], pool: list[tuple[str, bytes]], interval: float, offset: float,
            start_at: float, connections: int, out: Any) -> None:
    """One load process: request i of `pool` is due at start_at + offset + i * interval (wall clock),
    sent then whatever happened before; its latency runs from that instant to its answer."""
    import uvloop

    gc.freeze()  # what the process inherited (the pools of every run) is never scanned: no long pauses

    async def main() -> dict[str, Any]:
        hist, lag = Histogram(), Histogram()
        statuses: dict[str, int] = {}
        last = 0.0
        conn = aiohttp.TCPConnector(limit=connections, keepalive_timeout=60)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=300)) as session:

            async def one(due: float, dept: str, data: bytes) -> None:
                nonlocal last
                lag.add(max(0.0, time.time() - due))
                headers = {"Authorization": f"Bearer {tokens[dept]}", "Content-Type": "application/json"}
                try:
                    async with session.post(url, data=data, headers=headers) as r:
                        answer = await r.read()
                        key = f"{r.status} {json.loads(answer).get('status', 'error')}"
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    key = f"failed {type(exc).__name__}"
                done = time.time()
                hist.add(done - due)
                last = max(last, done)
                statuses[key] = statuses.get(key, 0) + 1

            tasks = []
            cpu0 = time.process_time()
            for i, (dept, data) in enumerate(pool):
                due = start_at + offset + i * interval
                wait = due - time.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.ensure_future(one(due, dept, data)))
            await asyncio.gather(*tasks)
            cpu = time.process_time() - cpu0
        return {"hist": hist.state(), "lag": lag.state(), "statuses": statuses, "last": last, "cpu": cpu,
                "busy": cpu / max(last - start_at, 1e-9)}

    out.put(uvloop.run(main()))


def open_loop(url: str, tokens: dict[str, str], pool: list[tuple[str, bytes]], rate: float, loaders: int,
              connections: int) -> dict[str, Any]:
    """Send `pool` at `rate` events/s from `loaders` processes; the merged figures."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 1.0 + 0.2 * loaders  # every loader ready before the first instant
    interval = loaders / rate
    procs = [ctx.Process(target=_loader, args=(url, tokens, pool[k::loaders], interval, k / rate, start_at,
                                               max(1, connections // loaders), out), daemon=True)
             for k in range(loaders)]
    for p in procs:
        p.start()
    parts = [out.get() for _ in procs]
    for p in procs:
        p.join()
    hist, lag = Histogram(), Histogram()
    statuses: dict[str, int] = {}
    for part in parts:
        hist.merge(part["hist"])
        lag.merge(part["lag"])
        for k, v in part["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    span = max(p["last"] for p in parts) - start_at
    return {"rate": rate, "requests": hist.n, "achieved_per_second": round(hist.n / span), "seconds": round(span, 2),
            "latency": hist.summary(), "send_lag_p99_ms": round(lag.percentile(0.99), 1), "statuses": statuses,
            "loaders": loaders, "loader_cpu_s": round(sum(p["cpu"] for p in parts), 2),
            "loader_busiest": round(max(p["busy"] for p in parts), 2)}


# --------------------------------------------------------------------------- batches


async def batches(base: str, tokens: dict[str, str], work: list[tuple[str, bytes, int]], clients: int) -> dict[str, Any]:
    hist = Histogram()
    statuses: dict[str, int] = {}
    cursor = iter(work)
    events = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:

        async def client() -> None:
            nonlocal events
            for dept, data, n in cursor:
                headers = {"Authorization": f"Bearer {tokens[dept]}", "Content-Type": "application/json"}
                t0 = time.perf_counter()
                async with session.post(f"{base}/v1/events:batch", data=data, headers=headers,
                                        params={"timeout": "30"}) as r:
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


async def drained(s: config.Settings, timeout: float = 900.0) -> float:
    """Wait until the sequencer's committed offsets reach the end of credit.submissions."""
    started = time.perf_counter()
    admin = AIOKafkaAdminClient(**access(s, ADMIN).options())
    consumer = AIOKafkaConsumer(**access(s, ADMIN).options(), group_id=None)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(registry.SUBMISSIONS.name, p) for p in range(registry.SUBMISSIONS.partitions)]
        while time.perf_counter() - started < timeout:
            end = await consumer.end_offsets(tps)
            committed = await admin.list_consumer_group_offsets("credit-sequencer")
            if all(committed.get(tp) is not None and committed[tp].offset >= end[tp] for tp in tps if end[tp]):
                return time.perf_counter() - started
            await asyncio.sleep(0.5)
        raise SystemExit(f"the sequencer did not catch up within {timeout:.0f} s")
    finally:
        await consumer.stop()
        await admin.close()


def stage_costs(records: list[tuple[str, dict[str, Any]]], keys_dir: Path) -> dict[str, float]:
    """Microseconds per event of the gateway's own steps, in this process, one event at a time."""
    matrix = loader.load_departments()
    bodies = [(d, body(r)) for d, r in records]
    key = signing.private_key(keys_dir, checks.INTAKE)
    out: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        result = fn()
        out[name] = round((time.perf_counter() - t0) / len(records) * 1e6, 1)
        return result

    objs = timed("JSON parse (orjson)", lambda: [openapi.parse_json(b) for _, b in bodies])
    decoded = timed("authorize + Avro-schema decode", lambda: [
        (checks.authorize(matrix, d, o), openapi.decode_event(o))[1] for (d, _), o in zip(bodies, objs, strict=True)])
    timed("identity check (first time: not remembered yet)", lambda: [
        checks.precheck(rec, b"bench-pepper-0123456789") for _, rec in decoded])
    encoded = timed("Avro encode + key", lambda: [checks.encode(rec) for _, rec in decoded])
    pairs = [(d, rec, v) for (d, _), (_, rec), (_, v) in zip(bodies, decoded, encoded, strict=True)]
    timed("attest one event alone (a signature each)", lambda: [
        submissions.sign_batch([rec], [v], d, key, signer=checks.INTAKE) for d, rec, v in pairs])
    timed("attest 32 events together (one signature per turn)", lambda: [
        submissions.sign_batch([rec for _, rec, _ in pairs[i:i + 32]], [v for *_, v in pairs[i:i + 32]],
                               pairs[i][0], key, signer=checks.INTAKE) for i in range(0, len(pairs), 32)])
    return out


# --------------------------------------------------------------------------- the whole run


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


class Run:
    def __init__(self, a: argparse.Namespace, s: config.Settings, pids: dict[str, int | None],
                 tokens: dict[str, str]) -> None:
        self.a, self.s, self.pids, self.tokens = a, s, pids, tokens
        self.wl = Workload(a.seed, a.entities)
        self.url = f"http://127.0.0.1:{s.gateway_port}/v1/events?timeout=30"
        self.peer_records: list[dict[str, Any]] = []

    def at_rate(self, rate: float) -> dict[str, Any]:
        records = self.wl.make(int(rate * self.a.seconds))
        if not self.peer_records:
            self.peer_records = [r for _, r in records[:self.a.peer_events]]
        pool = [(d, body(r)) for d, r in records]
        del records
        loaders = self.a.loaders or min(os.cpu_count() or 1, max(1, -(-int(rate) // RATE_PER_LOADER)))
        gc.collect()
        signatures0 = gateway_metric(self.s, "ledger_gateway_attested_per_signature_count")
        signed0 = gateway_metric(self.s, "ledger_gateway_attested_per_signature_sum")
        with Meter(self.pids) as m:
            res = open_loop(self.url, self.tokens, pool, rate, loaders, self.a.connections)
            m.loaders = res["loader_cpu_s"]
        signatures = gateway_metric(self.s, "ledger_gateway_attested_per_signature_count") - signatures0
        res["events_per_signature"] = round((gateway_metric(self.s, "ledger_gateway_attested_per_signature_sum")
                                             - signed0) / signatures, 2) if signatures else None
        res["cores"], res["load_average"] = m.cores, m.load
        res["gateway_cpu_us_per_request"] = round(m.cpu["gateway"] / max(res["requests"], 1) * 1e6)
        res["drain_seconds"] = round(asyncio.run(drained(self.s)), 1)
        lat = res["latency"]
        print(f"  {rate:>6,.0f}/s: achieved {res['achieved_per_second']:,}/s, p50 {lat['p50_ms']} p99 {lat['p99_ms']} "
              f"max {lat['max_ms']} ms, send lag p99 {res['send_lag_p99_ms']} ms, {loaders} loader(s) busiest "
              f"{res['loader_busiest']:.0%}, cores {m.cores}, load {m.load}, {res['statuses']}", flush=True)
        return res

    def sweep(self) -> dict[str, Any]:
        runs = [self.at_rate(r) for r in self.a.rates]
        ok = lambda res: res["latency"]["p99_ms"] <= self.a.p99_ms and \
            res["achieved_per_second"] >= 0.95 * res["rate"]  # noqa: E731
        for _ in range(self.a.search_steps):
            good = [r["rate"] for r in runs if ok(r)]
            bad = [r["rate"] for r in runs if not ok(r) and r["rate"] > max(good, default=0)]
            if not bad:
                break
            lo, hi = max(good, default=0), min(bad)
            if hi - lo <= max(50, hi * 0.05):
                break
            runs.append(self.at_rate(round((lo + hi) / 2, -1)))
        best = max((r["rate"] for r in runs if ok(r)), default=None)
        return {"runs": sorted(runs, key=lambda r: r["rate"]), "best_rate_within_p99": best}

    def batched(self) -> dict[str, Any]:
        work = []
        for i in range(max(1, self.a.batch_events // self.a.batch_size)):
            dept = DEPARTMENTS[i % len(DEPARTMENTS)]
            recs = [r for _, r in self.wl.make(self.a.batch_size, dept)]
            work.append((dept, body(recs), len(recs)))
        gc.collect()
        base = f"http://127.0.0.1:{self.s.gateway_port}"
        with Meter(self.pids) as m:
            res = asyncio.run(batches(base, self.tokens, work, self.a.batch_clients))
        res["cores"], res["load_average"] = m.cores, m.load
        res["gateway_cpu_us_per_event"] = round(m.cpu["gateway"] / max(res["events"], 1) * 1e6)
        res["drain_seconds"] = round(asyncio.run(drained(self.s)), 1)
        print(f"  {res['per_second']:,} events/s, batch p50 {res['batch_latency']['p50_ms']} ms, cores {m.cores}, "
              f"load {m.load}, {res['statuses']}", flush=True)
        return res

    def peers(self) -> dict[str, Any]:
        out = {}
        for writers in self.a.peer_writers:
            t0, busy0 = time.perf_counter(), _machine_busy()
            n, seconds = peer.append_concurrently(self.s, self.peer_records, writers)
            cores = round((_machine_busy() - busy0) / (time.perf_counter() - t0), 2)
            out[writers] = {"events": n, "seconds": round(seconds, 2), "per_second": round(n / seconds),
                            "machine_cores": cores, "load_average": load_average()}
            print(f"  {writers} writer(s): {out[writers]}", flush=True)
        return out


def run(a: argparse.Namespace) -> dict[str, Any]:
    s = config.load()
    with quiet.only(s, ("sequencer", "gateway")) as services:
        tokens = {p.stem: p.read_text().strip() for p in s.keys_dir.glob("*.token")}
        pids = {"gateway": services["gateway"].pid(), "sequencer": services["sequencer"].pid(),
                "broker": ops_stack.Kafka(s).pid()}
        r = Run(a, s, pids, tokens)
        results: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{_cpu_model()}, nproc {os.cpu_count()}, Python {platform.python_version()}",
            "load_average_at_start": load_average(), "args": {k: v for k, v in vars(a).items()}}
        print("stage costs (this process, 2,048 events) ...", flush=True)
        results["stages_us"] = stage_costs(r.wl.make(2048), s.keys_dir)
        print(f"  {results['stages_us']}", flush=True)
        asyncio.run(drained(s))
        print(f"open loop, {a.seconds:g} s per rate, single events with their outcome ...", flush=True)
        results["open_loop"] = r.sweep()
        print(f"batches of {a.batch_size:,} with every outcome, {a.batch_clients} clients ...", flush=True)
        results["batch"] = r.batched()
    print(f"peer: {len(r.peer_records):,} of the same events through eventsourcing + PostgreSQL ...", flush=True)
    results["peer"] = r.peers()
    return results


def report(r: dict[str, Any]) -> str:
    ol, b = r["open_loop"], r["batch"]
    best_peer = max(r["peer"].values(), key=lambda p: p["per_second"])
    best_writers = next(w for w, p in r["peer"].items() if p is best_peer)
    lines = ["| measurement | achieved | latency p50 / p99 / max | gateway / sequencer / broker / loaders / other "
             "(cores) | gateway CPU | load average | notes |", "|---|---:|---|---|---:|---|---|"]
    for x in ol["runs"]:
        c, lat = x["cores"], x["latency"]
        notes = [f"{x['loaders']} loader(s), send lag p99 {x['send_lag_p99_ms']} ms",
                 f"{x['events_per_signature']} events per signature" if x["events_per_signature"] else ""]
        if x["loader_busiest"] > 0.9:
            notes.append(f"**a loader was {x['loader_busiest']:.0%} busy: latency a floor**")
        if set(x["statuses"]) != {"200 ACCEPTED"}:
            notes.append(f"answers {x['statuses']}")
        lines.append(f"| open loop {x['rate']:,.0f}/s, single events with outcome | {x['achieved_per_second']:,}/s | "
                     f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']} ms | {c['gateway']} / {c['sequencer']} / "
                     f"{c['broker']} / {c['loaders']} / {c['other']} | {x['gateway_cpu_us_per_request']} us/request | "
                     f"{x['load_average']} | {'; '.join(n for n in notes if n)} |")
    c = b["cores"]
    lines.append(f"| batches of {r['args']['batch_size']:,}, every outcome ({b['events']:,} events) | "
                 f"{b['per_second']:,} events/s | per batch {b['batch_latency']['p50_ms']} / "
                 f"{b['batch_latency']['p99_ms']} / {b['batch_latency']['max_ms']} ms | {c['gateway']} / "
                 f"{c['sequencer']} / {c['broker']} / {c['bench']} / {c['other']} | {b['gateway_cpu_us_per_event']} "
                 f"us/event | {b['load_average']} | answers {b['statuses']} |")
    for w, p in r["peer"].items():
        lines.append(f"| eventsourcing + PostgreSQL, {w} writer(s), {p['events']:,} of the same events | "
                     f"{p['per_second']:,}/s | | machine {p['machine_cores']} | | {p['load_average']} | "
                     f"{'best' if w == best_writers else ''} |")
    best = ol["best_rate_within_p99"]
    summary = (f"Highest fixed rate with p99 <= {r['args']['p99_ms']:g} ms (and at least 95% of it achieved): "
               f"{f'{best:,.0f}/s' if best else 'none of the rates tried'}; the peer's best: "
               f"{best_peer['per_second']:,}/s with {best_writers} writer(s); batches "
               f"{b['per_second'] / best_peer['per_second']:.1f}x the peer.")
    stages = "; ".join(f"{k} {v} us" for k, v in r["stages_us"].items())
    return "\n".join([*lines, "", summary, "", f"The gateway's steps per event (one process): {stages}."])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    p.add_argument("--rates", type=ints, default=[500, 1000, 2000, 3000, 5000], help="events/s, comma-separated")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each open-loop rate")
    p.add_argument("--loaders", type=int, default=0, help="load processes (0: one per 1,500/s, at most nproc)")
    p.add_argument("--connections", type=int, default=1000,
                   help="HTTP connections in all, split between loaders (a request due while all are busy waits "
                        "for one, and that wait counts in its latency)")
    p.add_argument("--p99-ms", type=float, default=20.0)
    p.add_argument("--search-steps", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--batch-events", type=int, default=20_000)
    p.add_argument("--batch-clients", type=int, default=2)
    p.add_argument("--entities", type=int, default=10_000)
    p.add_argument("--peer-events", type=int, default=5_000)
    p.add_argument("--peer-writers", type=ints, default=[1, 4, 8, 16])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", metavar="FILE", help="where to write the figures as JSON (default /tmp/bench-gateway-<seed>.json)")
    p.add_argument("--append-docs", action="store_true", help="append the results to docs/benchmarks.md")
    a = p.parse_args()
    a.seed = a.seed if a.seed is not None else random.SystemRandom().randrange(10**9)
    print(f"workload seed {a.seed} (replay with --seed {a.seed}); load average {load_average()}", flush=True)
    ops_stack.up(config.load(), services=False)
    r = run(a)
    Path(a.json or f"/tmp/bench-gateway-{a.seed}.json").write_text(json.dumps(r, indent=1, default=str))
    text = report(r)
    print(f"\ndate     {r['date']}\nmachine  {r['machine']}\nload at start {r['load_average_at_start']}\n\n{text}")
    if a.append_docs:
        args = " ".join(f"--{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, list) else v}"
                        for k, v in vars(a).items() if k not in ("append_docs", "seed", "json"))
        with open(config.ROOT / "docs" / "benchmarks.md", "a", encoding="utf-8") as f:
            f.write(f"\n### Run of {r['date']}\n\nCommand: `PYTHONPATH=. .venv/bin/python -m bench.gateway {args}`. "
                    f"Machine: {r['machine']}; load average at start {r['load_average_at_start']}.\n\n{text}\n")
        print("appended to docs/benchmarks.md")


if __name__ == "__main__":
    main()
