"""Soak (issue 18, item 10): the whole stack at a fixed, realistic rate for half an hour; each
process's memory at the start and the end, the lags, and the errors.

    PYTHONPATH=. .venv/bin/python -m bench.soak [--minutes 30] [--lives 1.0] [--reads 5] [--sample 30]

Against the stack of the environment's settings, with every service running (`ops/stack up`). The
departments submit through the gateway, as they do: every `1/--lives` seconds an organisation's whole
history starts (ops/workload.py `life()`: 22 events of every family, from 12 departments), its
first phase (registration, licences, penalties, listings) POSTed as one batch per department to
/v1/events:batch with the outcomes awaited (the scheduler's expiries and a sector's feedback, which
the department matrix keeps off the gateway, through the signed Avro client, one per department), then its second phase (repairs, expiries, delistings, feedback)
once the first is recorded. The schedule is open loop: a history starts on time whether or not the
earlier ones are done. Meanwhile the public reads: `--reads` entity profiles a second from the query
API, each of an organisation written earlier. At the default one history a second that is 22 events/s,
about 1.9 million a day: more than a city of four million records, kept up for the whole run.

Every `--sample` seconds, and once more after the load stops and the lags drained: the resident
memory (VmRSS) of every process of the stack (each service, the broker, PostgreSQL's postmaster), the
records each consumer has still to read (its `*_lag_records` gauges on /metrics), and the log lines
at level error or above that each service wrote since the start. A progress line each sample.

The verdict: memory flat (no process grew by more than 20 % and 24 MiB from its sample at a fifth of
the run to the end; for the broker, a JVM whose resident memory grows as its heap expands toward
-Xmx before old objects are collected, the live heap, what a full collection keeps (`jcmd GC.class_histogram`),
at a fifth of the run and at the end, by the same rule), lag bounded (every consumer's lag below --max-lag at
every sample and drained to 0 within two minutes of the end), no errors (no error line in any log,
every submission ACCEPTED, every read answered 200). Exit status 1 if any of it failed. The figures
go to docs/benchmarks.md ("Soak"); run it on a quiet machine, nothing else on the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.gateway import body
from bench.procfs import rss_mib
from ledger.client import LedgerClient
from ledger.domain.errors import Rejection
from ledger.intake.gateway.checks import INTAKE as GATEWAY
from ledger.platform import config
from ledger.rules import loader
from ops import workload
from ops.infra import Kafka, Postgres
from ops.stack import SERVICES, Service

GROWTH_SHARE, GROWTH_MIB = 0.20, 24.0  # what "flat" allows from the sample at a fifth of the run to the end
DRAIN_S = 120.0


@dataclass
class Sample:
    at: float  # seconds since the start
    rss: dict[str, float]
    lag: dict[str, float]
    errors: dict[str, int]


@dataclass
class Soak:
    s: config.Settings
    minutes: float
    lives: float
    reads: float
    every: float
    max_lag: int
    seed: int
    samples: list[Sample] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # submissions by outcome status
    refused: list[str] = field(default_factory=list)
    read_status: Counter[int] = field(default_factory=Counter)
    read_ms: list[float] = field(default_factory=list)
    life_s: list[float] = field(default_factory=list)  # a history's start to its last outcome
    written: list[str] = field(default_factory=list)  # organisations' entity ids, for the reads
    log_start: dict[str, int] = field(default_factory=dict)
    broker_heap: list[float] = field(default_factory=list)  # MiB in use after a full GC: at 1/5, at the end
    direct: dict[str, LedgerClient] = field(default_factory=dict)  # departments that may not use the gateway

    # ------------------------------------------------------------ what is watched
    def processes(self) -> dict[str, int | None]:
        found: dict[str, int | None] = {n: Service(self.s, n).pid() for n in SERVICES}
        found["kafka"] = Kafka(self.s).pid()
        found["postgresql"] = Postgres(self.s).pid()
        return found

    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in SERVICES:
            log = Service(self.s, n).log
            if not log.exists():
                continue
            with open(log, "rb") as f:
                f.seek(self.log_start.get(n, 0))
                out[n] = sum(1 for line in f if _is_error(line))
        return out

    def first_errors(self, limit: int = 5) -> list[str]:
        lines: list[str] = []
        for n in SERVICES:
            log = Service(self.s, n).log
            if log.exists():
                with open(log, "rb") as f:
                    f.seek(self.log_start.get(n, 0))
                    lines += [f"{n}: {line.decode(errors='replace').strip()[:300]}" for line in f if _is_error(line)]
        return lines[:limit]

    async def lags(self, session: aiohttp.ClientSession) -> dict[str, float]:
        out: dict[str, float] = {}
        for n in SERVICES:
            try:
                async with session.get(f"http://127.0.0.1:{self.s.metrics_port(n)}/metrics") as r:
                    text = await r.text()
            except (aiohttp.ClientError, TimeoutError):
                continue
            total, seen = 0.0, False
            for line in text.splitlines():
                name = line.split("{", 1)[0].split(" ", 1)[0]
                if not line.startswith("#") and name.endswith("_lag_records"):
                    total += float(line.rsplit(" ", 1)[1])
                    seen = True
            if seen:
                out[n] = total
        return out

    async def sample(self, session: aiohttp.ClientSession, t0: float) -> Sample:
        smp = Sample(time.monotonic() - t0, {n: rss_mib(p) for n, p in self.processes().items() if p},
                     await self.lags(session), self.errors())
        self.samples.append(smp)
        return smp

    # ------------------------------------------------------------ the load
    async def post(self, session: aiohttp.ClientSession, tokens: dict[str, str],
                   phase: list[tuple[str, dict[str, Any]]]) -> bool:
        """One phase, a batch per department; True when every event was ACCEPTED."""
        by_department: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for dept, record in phase:
            by_department[dept].append(record)

        async def one(dept: str, records: list[dict[str, Any]]) -> bool:
            if dept in self.direct:  # a system or sector department: its own key, the Avro client
                outcomes = await self.direct[dept].submit_many_and_wait(records, timeout=30)
                return self._count(dept, outcomes)
            headers = {"Authorization": f"Bearer {tokens[dept]}", "Content-Type": "application/json"}
            async with session.post(f"http://127.0.0.1:{self.s.gateway_port}/v1/events:batch?timeout=30",
                                    data=body(records), headers=headers) as r:
                answer = await r.json(content_type=None)
            if r.status != 200:
                self.answers[f"HTTP {r.status}"] += len(records)
                self.refused.append(f"{dept}: HTTP {r.status} {json.dumps(answer, ensure_ascii=False)[:200]}")
                return False
            return self._count(dept, answer["outcomes"])

        return all(await asyncio.gather(*(one(d, recs) for d, recs in by_department.items())))

    def _count(self, dept: str, outcomes: list[dict[str, Any]]) -> bool:
        ok = True
        for out in outcomes:
            status = out.get("status", "?")
            self.answers[status] += 1
            if status != "ACCEPTED":
                ok = False
                self.refused.append(f"{dept} {out.get('event_id')}: {status} {out.get('reasons')}"[:300])
        return ok

    async def life(self, session: aiohttp.ClientSession, tokens: dict[str, str], n: int, due: float,
                   rng: random.Random) -> None:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        subject = workload.subjects(rng, 1, persons_share=0.0)[0]
        first, second = workload.life(rng, subject, self.seed % 1000 * 100_000 + n)
        try:  # the second phase refers to the first: it goes only once the first is recorded
            if not (await self.post(session, tokens, first) and await self.post(session, tokens, second)):
                return
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.answers["no answer"] += 1
            self.refused.append(f"history {n}: {type(exc).__name__}: {exc}"[:300])
            return
        self.life_s.append(time.monotonic() - due)
        self.written.append(f"uscc:{subject.id}")

    async def reader(self, session: aiohttp.ClientSession, until: float, rng: random.Random) -> None:
        i, t0 = 0, time.monotonic()
        tasks: list[asyncio.Task[None]] = []

        async def one(entity: str, due: float) -> None:
            try:
                async with session.get(f"http://127.0.0.1:{self.s.api_port}/entities/{entity}") as r:
                    await r.read()
                    self.read_status[r.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                self.read_status[0] += 1
                return
            self.read_ms.append((time.monotonic() - due) * 1000)

        while (due := t0 + i / self.reads) < until:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if self.written:
                tasks.append(asyncio.create_task(one(rng.choice(self.written), due)))
            i += 1
        await asyncio.gather(*tasks)

    # ------------------------------------------------------------ the run
    async def run(self) -> bool:
        down = [n for n, p in self.processes().items() if p is None]
        if down:
            raise SystemExit(f"not running: {', '.join(down)}; start the whole stack first (ops/stack up)")
        departments = {dept for phase in workload.life(random.Random(0), workload.subjects(
            random.Random(0), 1, persons_share=0.0)[0], 0) for dept, _ in phase}
        matrix = loader.load().departments
        tokens: dict[str, str] = {}
        for d in sorted(departments):
            try:
                matrix.authorize_intake(GATEWAY, d)
                tokens[d] = (self.s.keys_dir / f"{d}.token").read_text().strip()
            except Rejection:
                self.direct[d] = LedgerClient.of(self.s, d)
        for client in self.direct.values():
            await client.start()
        try:
            return await self._run(tokens)
        finally:
            for client in self.direct.values():
                await client.stop()

    async def _run(self, tokens: dict[str, str]) -> bool:
        self.log_start = {n: Service(self.s, n).log.stat().st_size for n in SERVICES if Service(self.s, n).log.exists()}
        rng = random.Random(self.seed)
        seconds = self.minutes * 60
        count = int(seconds * self.lives)
        print(f"soak: {self.minutes:g} min, {self.lives:g} histories/s ({self.lives * 22:g} events/s through the "
              f"gateway), {self.reads:g} reads/s from the query API; a sample every {self.every:g} s", flush=True)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            t0 = time.monotonic()
            base = await self.sample(session, t0)
            self._progress(base, count)
            load = [asyncio.create_task(self.life(session, tokens, n, t0 + n / self.lives, rng)) for n in range(count)]
            load.append(asyncio.create_task(self.reader(session, t0 + seconds, rng)))
            running = asyncio.gather(*load)
            while not running.done():
                await asyncio.wait([running], timeout=self.every)
                smp = await self.sample(session, t0)
                if not self.broker_heap and smp.at >= seconds / 5:
                    self.broker_heap.append(await asyncio.to_thread(heap_after_gc, Kafka(self.s).pid()))
                self._progress(smp, count)
            await running
            drained_after = await self._drain(session, t0)
            self.broker_heap.append(await asyncio.to_thread(heap_after_gc, Kafka(self.s).pid()))
            self._progress(self.samples[-1], count)
        return self.report(drained_after)

    async def _drain(self, session: aiohttp.ClientSession, t0: float) -> float | None:
        ended = time.monotonic()
        while time.monotonic() - ended < DRAIN_S:
            smp = await self.sample(session, t0)
            if not any(smp.lag.values()):
                return time.monotonic() - ended
            await asyncio.sleep(2)
        return None

    def _progress(self, smp: Sample, count: int) -> None:
        done = len(self.life_s)
        print(f"  {smp.at / 60:5.1f} min  histories {done:,}/{count:,}  accepted {self.answers['ACCEPTED']:,}  "
              f"refused {sum(v for k, v in self.answers.items() if k != 'ACCEPTED'):,}  reads {sum(self.read_status.values()):,}  "
              f"lag {int(sum(smp.lag.values())):,}  memory {sum(smp.rss.values()):,.0f} MiB  "
              f"errors {sum(smp.errors.values())}  load {os.getloadavg()[0]:.2f}", flush=True)

    # ------------------------------------------------------------ the verdict
    def report(self, drained_after: float | None) -> bool:
        failures: list[str] = []
        end = self.samples[-1]
        warm = min(self.samples, key=lambda smp: abs(smp.at - self.samples[-1].at / 5))
        print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at the end {os.getloadavg()}")
        print(f"{'process':<16}{'start MiB':>10}{'at 1/5':>9}{'end MiB':>9}{'max MiB':>9}{'growth':>9}"
              f"{'max lag':>9}{'errors':>8}")
        for n in sorted(end.rss):
            start, mid, last = self.samples[0].rss.get(n, 0.0), warm.rss.get(n, 0.0), end.rss[n]
            top = max(smp.rss.get(n, 0.0) for smp in self.samples)
            lag = max((smp.lag.get(n, 0.0) for smp in self.samples), default=0.0)
            grew = last - mid
            print(f"{n:<16}{start:>10.0f}{mid:>9.0f}{last:>9.0f}{top:>9.0f}{grew:>+9.0f}{lag:>9.0f}"
                  f"{end.errors.get(n, 0):>8}")
            if n != "kafka" and mid and grew > GROWTH_MIB and grew > GROWTH_SHARE * mid:
                failures.append(f"{n} grew {grew:.0f} MiB ({grew / mid:.0%}) after a fifth of the run")
            if lag > self.max_lag:
                failures.append(f"{n}'s lag reached {lag:.0f} records (bound {self.max_lag})")
        if len(self.broker_heap) == 2:
            mid, last = self.broker_heap
            print(f"broker's live heap (after a full GC): {mid:.0f} MiB at a fifth of the run, {last:.0f} MiB at the end "
                  f"({last - mid:+.0f} MiB)")
            if last - mid > GROWTH_MIB and last - mid > GROWTH_SHARE * mid:
                failures.append(f"the broker's heap after a full GC grew {last - mid:.0f} MiB after a fifth of the run")
        else:
            failures.append("the broker's heap could not be read at a fifth of the run and at the end")
        accepted = self.answers["ACCEPTED"]
        lives = sorted(self.life_s)
        reads = sorted(self.read_ms)
        print(f"submissions: {dict(self.answers)}; histories done {len(lives):,}, start to last outcome "
              f"p50 {_pct(lives, 50):.2f} s, p99 {_pct(lives, 99):.2f} s")
        print(f"reads: {dict(self.read_status)}; p50 {_pct(reads, 50):.1f} ms, p99 {_pct(reads, 99):.1f} ms")
        print("lags drained " + (f"{drained_after:.0f} s after the load stopped" if drained_after is not None
                                 else f"NOT within {DRAIN_S:.0f} s"))
        if drained_after is None:
            failures.append(f"the lags did not drain within {DRAIN_S:.0f} s: {end.lag}")
        if accepted != sum(self.answers.values()):
            failures.append(f"{sum(self.answers.values()) - accepted} submissions not ACCEPTED: {self.refused[:3]}")
        if any(status != 200 for status in self.read_status):
            failures.append(f"reads not answered 200: {dict(self.read_status)}")
        if sum(end.errors.values()):
            failures.append(f"{sum(end.errors.values())} error lines in the logs: {self.first_errors()}")
        print("verdict: " + ("PASSED" if not failures else "FAILED: " + "; ".join(failures)), flush=True)
        return not failures


def heap_after_gc(pid: int | None) -> float:
    """A JVM's live heap in MiB: the objects a full collection keeps (`jcmd GC.class_histogram`, which
    collects first and counts only live objects; GC.run would only start a concurrent cycle under the
    broker's -XX:+ExplicitGCInvokesConcurrent)."""
    if pid is None:
        return float("nan")
    out = subprocess.run(["jcmd", str(pid), "GC.class_histogram"], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    total = re.search(r"^Total\s+\d+\s+(\d+)\s*$", out, re.MULTILINE)
    if total is None:
        raise RuntimeError(f"jcmd GC.class_histogram: no Total line in {out[-200:]!r}")
    return int(total.group(1)) / 1048576


def _is_error(line: bytes) -> bool:
    if b'"level"' not in line:
        return False
    try:
        return json.loads(line).get("level") in ("error", "critical", "exception")
    except ValueError:
        return False


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="how long the load runs (default 30)")
    ap.add_argument("--lives", type=float, default=1.0,
                    help="organisations' histories started per second, 22 events each (default 1)")
    ap.add_argument("--reads", type=float, default=5.0, help="entity profiles read per second (default 5)")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between samples (default 30)")
    ap.add_argument("--max-lag", type=int, default=2000,
                    help="the most records a consumer may have waiting at any sample (default 2000)")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000,
                    help="the workload's seed (default: from the clock, so that a second run writes new histories)")
    a = ap.parse_args(argv)
    soak = Soak(config.load(), a.minutes, a.lives, a.reads, a.sample, a.max_lag, a.seed)
    return 0 if asyncio.run(soak.run()) else 1


if __name__ == "__main__":
    sys.exit(main())
