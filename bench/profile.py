"""Flame graphs of the write path under load: the client, the sequencer and the HTTP gateway, by py-spy.

    PYTHONPATH=. .venv/bin/python -m bench.profile {client,sequencer,gateway,gateway-single,gateway-batch}
                                                   [--seconds 20] [--rate 200] [--out docs/profiles/<name>.svg]
                                                   [--label before]

Against the stack of the environment's settings (the demo stack by default); its infrastructure
(Kafka, PostgreSQL, topics, keys, tokens) is started with ops.stack.up(settings, services=False) if
needed. Each target is put under load the way the benchmarks do, and py-spy attaches to the busy
process by its pid:

  client          a child process (`python -m bench.profile _client-load`) builds fresh realistic
                  penalty submissions (ops.workload.penalty, three departments) and sends them
                  through ledger.client.LedgerClient (Avro encode + Ed25519 sign + idempotent send,
                  acks=all) to credit.submissions, as bench.sequencer's client ingest does; the
                  sequencer and the projector are stopped meanwhile, so the submissions stay behind
                  as a backlog. py-spy records the child.
  sequencer       the sequencer and the projector are stopped; the backlog on credit.submissions is
                  topped up (same submissions, sent from this process) to what the sequencer judges
                  in --seconds and more; then the sequencer process is started on it and recorded
                  (--threads: its signature-verifying threads are their own towers).
  gateway-single  the sequencer and the gateway are started if not running, the projector stopped;
                  once the sequencer has judged every earlier submission, --clients closed-loop
                  clients (default 32) in this process POST one event each to /v1/events and wait for
                  the outcome (timeout=30), as bench.gateway's "single, synchronous" run; the gateway
                  process is recorded.
  gateway-batch   the same with /v1/events:batch, --batch-clients (2) clients, --batch-size (1000).
  gateway         both gateway graphs, one after the other.

Each recording runs `py-spy record --rate R --format flamegraph --pid P --duration S` into the SVG
and, beside it at the same time, the same command with `--format raw` into /tmp, from which the top
frames by own time and by total time are printed (function and file, share of the samples; the
line numbers are merged). Only the SVG belongs in the repository. Each run prints the date, the
machine and the load average before and after, since other work on the machine shows in a profile.

Afterwards every service is as it was (started or stopped). How long: --seconds of recording plus
the set-up: client about 10 s more (building the submissions); sequencer as long as the backlog
takes to send when it is short (about 12,000 submissions/s) plus the sequencer's start; gateway
first waits for the sequencer to drain what is pending on credit.submissions (after a client or
sequencer profile up to a few minutes), then about 10 s per graph.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from bench import gateway as bench_gateway
from bench import sequencer as bench_sequencer
from bench.producer import _say
from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, access
from ops import stack as ops_stack
from ops.procs import StackError
from schemas import registry

TARGETS = ("client", "sequencer", "gateway", "gateway-single", "gateway-batch")
CLIENT_RATE = 15_000  # submissions/s the client child is sized for (about 12,000 measured: docs/benchmarks.md)
SEQUENCER_RATE = 4_000  # submissions/s the sequencer's backlog is sized for (about 3,400 measured)
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise StackError("py-spy not found: it is a dependency in pyproject.toml (ops/bootstrap installs it)")
    return found


def machine_line() -> str:
    return (f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {len(os.sched_getaffinity(0))} CPUs ({bench_gateway._cpu_model()}); "
            f"load average {Path('/proc/loadavg').read_text().strip()}")


# --------------------------------------------------------------------------- recording and reading


def record(pid: int, seconds: int, svg: Path, rate: int, extra: list[str]) -> Path:
    """Record `pid` twice at once, into the flame graph `svg` and into collapsed stacks in /tmp.

    --nonblocking: py-spy does not pause the process for each sample. Paused (its default), on this
    machine it takes a thread waiting on a lock or in select() for a running one in a quarter of the
    samples (the sequencer's idle verify threads, the /metrics server's thread), which buries the
    real work; unpaused, such threads are seen idle and left out, and the two recorders cost the
    process nothing."""
    svg.parent.mkdir(parents=True, exist_ok=True)
    raw = Path(f"/tmp/bench-profile-{svg.stem}.txt")
    base = [_py_spy(), "record", "--rate", str(rate), "--pid", str(pid), "--duration", str(seconds), "--nonblocking",
            *extra]
    cmds = [[*base, "--format", "flamegraph", "--output", str(svg)], [*base, "--format", "raw", "--output", str(raw)]]
    _say(f"recording pid {pid} for {seconds} s at {rate} Hz: {' '.join(cmds[0][1:])}")
    _say(machine_line())
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in cmds]
    for p, c in zip(procs, cmds, strict=True):
        out, _ = p.communicate(timeout=seconds + 120)
        if p.returncode != 0 or not Path(c[-1]).exists():
            raise StackError(f"py-spy failed (exit {p.returncode}): {out[-1500:]}")
    _say(machine_line())
    return raw


def _frame(text: str) -> str:
    m = FRAME.match(text)
    return f"{m['function']} ({m['file']})" if m else text


def top_frames(raw: Path, n: int = 8) -> str:
    """The top `n` frames by own time (the leaf of a sample) and by total time (anywhere in it).

    In the total list a chain of callers that share one count (runpy, the event loop, main: the
    trunk) is one line, its deepest frame, with the number of callers above it."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    depth: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        samples += c
        names = stack.split(";")
        if names[0].startswith("thread ("):
            threads[names[0].split(": ", 1)[-1]] += c
        frames = [_frame(f) for f in names if not f.startswith(("thread (", "process "))]
        if frames:
            own[frames[-1]] += c
        for i, f in enumerate(frames):
            depth[f] = max(depth.get(f, 0), i)
        for f in set(frames):
            total[f] += c
    chains: dict[int, list[str]] = {}
    for f, c in total.items():
        chains.setdefault(c, []).append(f)
    deepest = Counter({max(fs, key=depth.__getitem__): c for c, fs in chains.items()})
    share = max(samples, 1)
    out = [f"{samples} samples"]
    if threads:
        out.append("threads: " + ", ".join(f"{name} {c / share:.1%}" for name, c in threads.most_common()))
    out.append(f"top {n} by own time:")
    out += [f"  {c / share:6.1%}  {f}" for f, c in own.most_common(n)]
    out.append(f"top {n} by total time (a chain of callers with the same total shown by its deepest frame):")
    for f, c in deepest.most_common(n):
        above = len(chains[c]) - 1
        out.append(f"  {c / share:6.1%}  {f}" + (f"  (+{above} callers with the same total)" if above else ""))
    return "\n".join(out)


def report(svg: Path, raw: Path) -> None:
    print(f"\n== {svg} ({svg.stat().st_size / 1e6:.2f} MB; collapsed stacks in {raw})", flush=True)
    if svg.stat().st_size > 1_000_000:
        print("   larger than 1 MB: lower --rate or --seconds", flush=True)
    print(top_frames(raw), flush=True)


# --------------------------------------------------------------------------- the services


@contextlib.contextmanager
def services(s: config.Settings, running: tuple[str, ...] = (),
             stopped: tuple[str, ...] = ()) -> Iterator[dict[str, ops_stack.Service]]:
    """Run with `running` up and `stopped` down; afterwards each service is started or stopped as it was."""
    svcs = {n: ops_stack.Service(s, n) for n in (*running, *stopped)}
    before = {n: svc.pid() is not None for n, svc in svcs.items()}
    try:
        for n in stopped:
            svcs[n].stop()
        for n in running:
            svcs[n].start()
        yield svcs
    finally:
        for n, svc in svcs.items():
            if before[n] and svc.pid() is None:
                svc.start()
            elif not before[n] and svc.pid() is not None:
                svc.stop()


def _workload(seed: int | None, entities: int = 10_000) -> bench_gateway.Workload:
    return bench_gateway.Workload(seed if seed is not None else random.SystemRandom().randrange(10**9), entities)


# --------------------------------------------------------------------------- the targets


def client_load(argv: list[str]) -> int:
    """The child of the client profile: build the submissions, say "ready", send them all."""
    n, seed = int(argv[0]), int(argv[1])
    records = [r for _, r in _workload(seed).make(n)]
    print("ready", flush=True)
    seconds = asyncio.run(bench_sequencer._ingest(config.load(), records))
    print(f"sent {n} submissions in {seconds:.1f} s ({n / seconds:,.0f}/s)", flush=True)
    return 0


def profile_client(s: config.Settings, a: argparse.Namespace, svg: Path) -> None:
    n = (a.seconds + 5) * CLIENT_RATE
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(10**9)
    with services(s, stopped=("sequencer", "projector")):
        _say(f"client child: {n} penalty submissions through LedgerClient (seed {seed})")
        child = subprocess.Popen([sys.executable, "-m", "bench.profile", "_client-load", str(n), str(seed)],
                                 stdout=subprocess.PIPE, text=True, cwd=config.ROOT)
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise StackError(f"the client child exited with code {child.wait()} before sending")
            raw = record(child.pid, a.seconds, svg, a.rate, [])
            if child.poll() is not None:
                _say("the client child finished before the recording did: its graph covers less than --seconds")
        finally:
            if child.poll() is None:
                child.terminate()
            _say(f"client child: {child.communicate(timeout=60)[0].strip() or 'stopped after the recording'}")
    report(svg, raw)


def profile_sequencer(s: config.Settings, a: argparse.Namespace, svg: Path) -> None:
    want = (a.seconds + 15) * SEQUENCER_RATE
    with services(s, stopped=("sequencer", "projector")) as svcs:
        backlog = asyncio.run(_lag(s))
        if backlog < want:
            _say(f"backlog {backlog} submissions: sending {want - backlog} more")
            asyncio.run(bench_sequencer._ingest(s, [r for _, r in _workload(a.seed).make(want - backlog)]))
        else:
            _say(f"backlog {backlog} submissions (enough)")
        svcs["sequencer"].start()
        pid = svcs["sequencer"].pid()
        assert pid is not None
        raw = record(pid, a.seconds, svg, a.rate, ["--threads"])
        _say(f"left on credit.submissions: {asyncio.run(_lag(s))}")
    report(svg, raw)


# ------------------------------------------------------------------ closed-loop load for the recordings


def build_batches(wl: bench_gateway.Workload, count: int, size: int) -> list[tuple[str, bytes, int]]:
    """`count` JSON bodies for /v1/events:batch of `size` events each, departments in turn."""
    batches: list[tuple[str, bytes, int]] = []
    for _ in range(count):
        dept = bench_gateway.DEPARTMENTS[len(batches) % len(bench_gateway.DEPARTMENTS)]
        recs = [r for d, r in wl.make(size * len(bench_gateway.DEPARTMENTS)) if d == dept][:size]
        batches.append((dept, bench_gateway.body(recs), len(recs)))
    return batches


# --------------------------------------------------------------------------- the runs


async def single(session: aiohttp.ClientSession, base: str, tokens: dict[str, str],
                 pool: list[tuple[str, bytes]], clients: int, seconds: float, timeout: float) -> dict[str, Any]:
    hist = bench_gateway.Histogram()
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


@contextlib.asynccontextmanager
async def lag_probe(s: config.Settings) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """A function that counts the submissions on credit.submissions the sequencer has not committed yet."""
    admin = AIOKafkaAdminClient(**access(s, ADMIN).options())
    consumer = AIOKafkaConsumer(**access(s, ADMIN).options(), group_id=None)
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


async def _lag(s: config.Settings) -> int:
    async with lag_probe(s) as lag:
        return await lag()


async def _gateway_load(s: config.Settings, a: argparse.Namespace, kind: str, pid: int, svg: Path) -> Path:
    tokens = {p.stem: p.read_text().strip() for p in s.keys_dir.glob("*.token")}
    wl = _workload(a.seed)
    base = f"http://127.0.0.1:{s.gateway_port}"
    run = a.seconds + 3  # the load starts before the recording and ends after it
    _say(f"{kind}: building the requests")
    if kind == "single":
        pool = [(d, bench_gateway.body(r)) for d, r in wl.make(run * 3000)]
    else:
        batches = build_batches(wl, max(4, run * 2000 // a.batch_size), a.batch_size)
    _say("waiting until the sequencer has judged every earlier submission")
    await bench_gateway.drained(s)
    connector = aiohttp.TCPConnector(limit=max(a.clients, a.batch_clients) + 4)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        if kind == "single":
            _say(f"{a.clients} clients POSTing single events to /v1/events")
            load = asyncio.create_task(single(session, base, tokens, pool, a.clients, run, 30.0))
        else:
            _say(f"{a.batch_clients} clients POSTing batches of {a.batch_size} to /v1/events:batch")
            load = asyncio.create_task(bench_gateway.batches(base, tokens, batches, a.batch_clients))
        await asyncio.sleep(1.0)
        raw = await asyncio.to_thread(record, pid, a.seconds, svg, a.rate, [])
        if kind == "single" or load.done():  # the single run ends on its own deadline, two seconds on
            _say(f"the load: {await load}")
        else:
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)
    return raw


def profile_gateway(s: config.Settings, a: argparse.Namespace, kinds: list[tuple[str, Path]]) -> None:
    with services(s, running=("sequencer", "gateway"), stopped=("projector",)) as svcs:
        pid = svcs["gateway"].pid()
        assert pid is not None
        for kind, svg in kinds:
            report(svg, asyncio.run(_gateway_load(s, a, kind, pid, svg)))


# --------------------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_client-load"]:
        return client_load(argv[1:])
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", choices=TARGETS)
    p.add_argument("--seconds", type=int, default=20, help="length of each recording (default 20)")
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second (default 200)")
    p.add_argument("--label", default="before", help="the graphs' name prefix (default before)")
    p.add_argument("--out", type=Path, default=None, help="the SVG (default docs/profiles/<label>-<target>.svg; "
                   "not with target gateway, which writes <label>-gateway-single.svg and -batch.svg)")
    p.add_argument("--clients", type=int, default=32, help="gateway-single: concurrent clients (default 32)")
    p.add_argument("--batch-clients", type=int, default=2, help="gateway-batch: concurrent clients (default 2)")
    p.add_argument("--batch-size", type=int, default=1000, help="gateway-batch: events per request (default 1000)")
    p.add_argument("--seed", type=int, default=None, help="workload seed (default random)")
    a = p.parse_args(argv)
    if a.out is not None and a.target == "gateway":
        p.error("--out names one graph; target gateway writes two (use gateway-single or gateway-batch)")
    if a.seconds < 1 or a.rate < 1:
        p.error("--seconds and --rate must be positive")
    names = ["gateway-single", "gateway-batch"] if a.target == "gateway" else [a.target]
    svgs = [a.out or config.ROOT / "docs" / "profiles" / f"{a.label}-{n}.svg" for n in names]
    s = config.load()
    try:
        ops_stack.up(s, services=False)
        _say(machine_line())
        if a.target == "client":
            profile_client(s, a, svgs[0])
        elif a.target == "sequencer":
            profile_sequencer(s, a, svgs[0])
        else:
            profile_gateway(s, a, [(n.removeprefix("gateway-"), svg) for n, svg in zip(names, svgs, strict=True)])
    except StackError as exc:
        _say(f"ERROR: {exc}")
        return 1
    print("\nflame graphs: " + ", ".join(str(x) for x in svgs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
