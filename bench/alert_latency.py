"""Benchmark: latency from submission to alert, open loop, beside the log's own floor in the same run.

    PYTHONPATH=. .venv/bin/python -m bench.alert_latency [--rates 100 1000] [--seconds 20] [--sweep]
        [--with-rebuild] [--no-floor]

Court listings of new cases and delistings of earlier ones (half and half once warm), each signed by
the court as its own batch of one before the clock starts (the court's signing is on its machine),
are sent through the client's producer (ledger.client.LedgerClient, as xc-court) on a fixed
schedule: event i is due at t0 + i/rate whatever happened before (open loop, so a slow alert path
cannot slow the load and hide its own latency). Each event then goes submission -> sequencer
(Kafka transaction) -> credit.events -> list keeper (one transaction: credit.lists.changes,
credit.lists.current and credit.alerts). A consumer in this process reads credit.alerts
(read_committed) and, for the first alert of each event, records now - the event's due time in a
fixed-bucket histogram (0.1 ms buckets to 2 s, then 10 ms buckets to 60 s); percentiles come from
the histogram. The stages are split with the timestamps the path stamps itself: the sequencer's
ledger time (sequenced_at, ms) and the list keeper's alerted_at (us); all processes share one clock.

The run: first the log's own floor (bench/floor.py: Kafka's EndToEndLatency, one read_committed
transaction, two transactional hops), then each rate of --rates, then with --sweep rates from 1,500
up in steps of 500 until one is not sustained (sent on schedule within 1%, every alert read, p99
under 1 s): the highest sustained rate; then, with --with-rebuild, 1,000/s again while
`python -m consumers.projector.rebuild` (a full view rebuild from offset 0) runs. A table at the end
puts each figure beside its target and the floor. It uses the stack of the environment's settings;
the sequencer and the list keeper must run (ops/stack up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import floor, procfs, quiet
from ledger.client import LedgerClient
from ledger.platform import config, signing
from ledger.platform.kafka_access import ADMIN, access
from ledger.platform.kafka_util import assign_at_end
from ledger.records import submissions
from ops import stack as ops_stack
from ops import workload
from schemas import registry

TARGET_P50_MS, TARGET_P99_MS = 10.0, 50.0
PATH = ("sequencer", "list-keeper")  # the processes between a submission and its alerts
TARGET_FLOOR_RATIO = 3.0  # at most 3x the two-hop transactional floor of the same run


@dataclass
class Histogram:
    """Fixed buckets: 0.1 ms wide up to 2 s, then 10 ms wide up to 60 s (anything above: the last)."""

    fine: list[int] = field(default_factory=lambda: [0] * 20_000)
    coarse: list[int] = field(default_factory=lambda: [0] * 5_800)
    count: int = 0
    max_ms: float = 0.0

    def record(self, ms: float) -> None:
        self.count += 1
        self.max_ms = max(self.max_ms, ms)
        if ms < 2000:
            self.fine[max(0, int(ms * 10))] += 1
        else:
            self.coarse[min(len(self.coarse) - 1, int((ms - 2000) / 10))] += 1

    def percentile(self, p: float) -> float:
        """Upper edge of the bucket holding the p-th percentile, in ms."""
        rank, seen = max(1, int(round(p / 100 * self.count))), 0
        for i, n in enumerate(self.fine):
            seen += n
            if seen >= rank:
                return (i + 1) / 10
        for i, n in enumerate(self.coarse):
            seen += n
            if seen >= rank:
                return 2000 + (i + 1) * 10
        return self.max_ms


class Load:
    """Court listings of new cases and delistings of open ones, for a pool of subjects."""

    def __init__(self, rng: random.Random, entities: int) -> None:
        self.rng = rng
        self.subjects = workload.subjects(rng, entities, persons_share=0.2)
        self.open: list[tuple[workload.Subject, str]] = []
        self.run = uuid.uuid4().hex[:6]
        self.n = 0

    def next(self) -> dict:  # type: ignore[type-arg]
        self.n += 1
        if self.open and (len(self.open) > 2000 or self.rng.random() < 0.5):
            subject, case = self.open.pop(self.rng.randrange(len(self.open)))
            return workload.debtor_delisted(subject, case, date(2026, 11, 20))[1]
        subject = self.rng.choice(self.subjects)
        case = f"（2026）豫10执B{self.run}{self.n}号"
        self.open.append((subject, case))
        return workload.debtor_listed(subject, case, date(2026, 11, 2), ground=1)[1]


async def wait_idle(s: config.Settings, timeout: float = 600) -> None:
    """Wait until the sequencer and the list keeper have consumed their input (a backlog from an earlier run
    would be measured as latency)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**access(s, ADMIN).options())
    probe = AIOKafkaConsumer(**access(s, ADMIN).options(), group_id=None)
    await admin.start()
    await probe.start()
    deadline = time.time() + timeout
    try:
        while True:
            behind = 0
            for group, topic in (("credit-sequencer", registry.SUBMISSIONS), ("credit-list-keeper", registry.EVENTS)):
                tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
                end = await probe.end_offsets(tps)
                done = await admin.list_consumer_group_offsets(group)
                # (a committed offset can stop one short of the end: the end counts a transaction marker)
                behind += sum(max(0, end[tp] - 1 - (done[tp].offset if tp in done else 0)) for tp in tps)
            if behind == 0 or time.time() > deadline:
                return
            print(f"  waiting for the pipeline to drain: {behind} records behind", flush=True)
            await asyncio.sleep(5)
    finally:
        await probe.stop()
        await admin.close()


def cpu_now(s: config.Settings) -> dict[str, float]:
    """CPU seconds so far of the path's processes, the broker, this load generator and the machine."""
    out = {n: procfs.cpu_s(ops_stack.Service(s, n).pid()) for n in PATH}
    out["broker"] = procfs.cpu_s(ops_stack.Kafka(s).pid())
    out["load generator"] = procfs.cpu_s("self")
    out["machine"] = procfs.machine_busy_s()
    return out


async def run(s: config.Settings, rate: float, seconds: float, warmup: float, rebuild: bool) -> dict:  # type: ignore[type-arg]
    """One open-loop run at `rate`; its figures."""
    await wait_idle(s)
    due: dict[str, float] = {}
    hist, stage_seq, stage_alert, stage_read = Histogram(), Histogram(), Histogram(), Histogram()
    seen: set[str] = set()
    consumer = AIOKafkaConsumer(**access(s, ADMIN).options(), group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", fetch_max_wait_ms=5)
    await consumer.start()
    await assign_at_end(consumer, registry.ALERTS.name, registry.ALERTS.partitions)
    measure_from = time.time() + warmup

    async def read() -> None:
        while True:
            for msgs in (await consumer.getmany(timeout_ms=50)).values():
                now = time.time()
                for m in msgs:
                    eid = dict(m.headers or ()).get("event-id", b"").decode()  # the first alert of each event
                    if eid in seen or eid not in due:                           # only is decoded
                        continue
                    seen.add(eid)
                    _, a = registry.decode(m.value, "Alert")
                    if due[eid] < measure_from:
                        continue
                    hist.record((now - due[eid]) * 1000)
                    seq = a["sequenced_at"].timestamp()
                    alerted = a["alerted_at"].timestamp()
                    stage_seq.record(max(0.0, seq - due[eid]) * 1000)
                    stage_alert.record(max(0.0, alerted - seq) * 1000)
                    stage_read.record(max(0.0, now - alerted) * 1000)

    reader = asyncio.create_task(read())
    proc = None
    client = LedgerClient.of(s, "xc-court", linger_ms=0)
    await client.start(watch_outcomes=False)
    load = Load(random.Random(f"alert-latency-{time.time_ns()}"), 5000)
    total = int(rate * (seconds + warmup))
    records = [load.next() for _ in range(total)]
    # signed before the clock starts: the court signs on its own machine, so its signing is not the
    # ledger's load (each record is still its own signed batch of one, as `client.submit` makes it)
    signed = [submissions.make_batch([r], "xc-court", signing.private_key(s.keys_dir, "xc-court"))[0]
              for r in records]
    late = 0
    try:
        if rebuild:
            proc = subprocess.Popen([sys.executable, "-m", "consumers.projector.rebuild"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(config.ROOT)})
        t0 = time.time() + 0.2
        cpu_from = cpu_now(s)
        for i, (rec, (key, value, headers)) in enumerate(zip(records, signed, strict=True)):
            at = t0 + i / rate
            wait = at - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.01:
                late += 1
            due[rec["envelope"]["event_id"]] = at
            await client.producer.send(client.topic, key=key, value=value, headers=headers,
                                       partition=submissions.partition_of(key))
            if i % int(rate * 5) == 0 and i:
                print(f"  {i}/{total} submitted, {len(seen)} alerted", flush=True)
        sent_in = time.time() - t0
        cores = {k: round((v - cpu_from[k]) / sent_in, 2) for k, v in cpu_now(s).items()}
        deadline = time.time() + 30
        while len(seen) < len(due) and time.time() < deadline:
            await asyncio.sleep(0.2)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await client.stop()
        await consumer.stop()
        rebuild_state = ""
        if proc is not None:
            rebuild_state = "finished during the run" if proc.poll() is not None else "still running at the end"
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
    missing = len(due) - len(seen)
    print(f"\nalert latency, submission due time -> first alert read (read_committed), open loop at {rate:.0f}/s "
          f"for {seconds:.0f} s after {warmup:.0f} s warm-up"
          f"{' with a view rebuild running (' + rebuild_state + ')' if rebuild else ''}")
    print(f"  submitted {len(due)} in {sent_in:.1f} s ({len(due) / sent_in:.0f}/s; {late} sent >10 ms behind "
          f"schedule), alerted {len(seen)}, missing {missing}, measured {hist.count}")
    for name, h in (("end to end", hist), ("  due -> sequenced", stage_seq), ("  sequenced -> alerted", stage_alert),
                    ("  alerted -> read", stage_read)):
        print(f"  {name:<22} p50 {h.percentile(50):8.1f} ms   p90 {h.percentile(90):8.1f} ms   "
              f"p99 {h.percentile(99):8.1f} ms   p99.9 {h.percentile(99.9):8.1f} ms   max {h.max_ms:8.1f} ms")
    load_avg = open('/proc/loadavg').read().split()[:3]
    print("  cores busy while sending: " + ", ".join(f"{k} {v:.2f}" for k, v in cores.items()))
    print(f"  load average: {load_avg}", flush=True)
    counted = hist.count > 0
    p50, p99 = (hist.percentile(50), hist.percentile(99)) if counted else (float("inf"), float("inf"))
    return {"rate": rate, "rebuild": rebuild_state if rebuild else None, "submitted": len(due),
            "sent_rate": len(due) / sent_in, "late": late, "missing": missing, "p50_ms": p50, "p99_ms": p99,
            "stages_p50_ms": [h.percentile(50) for h in (stage_seq, stage_alert, stage_read)] if counted else [],
            "sustained": counted and missing == 0 and late <= 0.01 * len(due) and p99 < 1000, "load": load_avg,
            "cores": cores}


def table(fl: dict | None, runs: list[dict]) -> None:  # type: ignore[type-arg]
    two = fl["two_transactions"] if fl else None
    print("\n| run | sent/s | p50 | p99 | stages p50 (due->sequenced, ->alerted, ->read) | target | floor (two hops "
          "p50 / p99) | ratio p50 / p99 | cores busy (sequencer / keeper / broker / load generator / machine of 2) "
          "| load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        name = f"{r['rate']:,.0f}/s" + (" + rebuild" if r["rebuild"] is not None else "")
        verdict = ""
        if r["rate"] == 1000:
            met = r["p50_ms"] <= TARGET_P50_MS and r["p99_ms"] <= TARGET_P99_MS
            verdict = f"p50 <= {TARGET_P50_MS:.0f}, p99 <= {TARGET_P99_MS:.0f} ms: {'met' if met else 'MISSED'}"
        ratio = floor_text = "-"
        if two:
            floor_text = f"{two['p50_ms']:.1f} / {two['p99_ms']:.1f} ms"
            rp50, rp99 = r["p50_ms"] / two["p50_ms"], r["p99_ms"] / two["p99_ms"]
            met = rp50 <= TARGET_FLOOR_RATIO and rp99 <= TARGET_FLOOR_RATIO
            ratio = f"{rp50:.1f}x / {rp99:.1f}x ({'met' if met else 'MISSED'} <= {TARGET_FLOOR_RATIO:.0f}x)"
        stages = " / ".join(f"{x:.1f}" for x in r["stages_p50_ms"])
        print(f"| {name} | {r['sent_rate']:,.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {stages} ms | "
              f"{verdict or '-'} | {floor_text} | {ratio} | {' / '.join(f'{v:.2f}' for v in r['cores'].values())} | "
              f"{' '.join(r['load'])} |")


async def main_async(s: config.Settings, args: argparse.Namespace) -> int:
    fl = None
    if not args.no_floor:
        await wait_idle(s)
        fl = await floor.measure(access(s, ADMIN), args.floor_records)
        floor.report(fl)
    runs = [await run(s, rate, args.seconds, args.warmup, False) for rate in args.rates]
    if args.sweep:
        rate, best = 1500.0, max((r["rate"] for r in runs if r["sustained"]), default=None)
        while True:
            r = await run(s, rate, args.seconds, args.warmup, False)
            runs.append(r)
            if not r["sustained"]:
                break
            best, rate = rate, rate + 500
        print(f"\nhighest sustained rate: {best or 0:,.0f}/s (the next step, {rate:,.0f}/s, was not)")
    if args.with_rebuild:
        runs.append(await run(s, 1000, args.seconds, args.warmup, True))
    table(fl, runs)
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    return 0 if all(r["missing"] == 0 for r in runs if r["sustained"] or r["rate"] <= 1000) else 1


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.alert_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", type=float, nargs="+", default=[100, 1000],
                   help="events per second, open loop, one run each (default 100 1000)")
    p.add_argument("--seconds", type=float, default=20, help="measured seconds per run (default 20)")
    p.add_argument("--warmup", type=float, default=3, help="seconds submitted but not measured (default 3)")
    p.add_argument("--sweep", action="store_true", help="then find the highest sustained rate (steps of 500 from 1,500)")
    p.add_argument("--with-rebuild", action="store_true", help="then 1,000/s again during a full view rebuild")
    p.add_argument("--no-floor", action="store_true", help="skip the floor measurement (bench/floor.py)")
    p.add_argument("--floor-records", type=int, default=1000, help="records per floor measurement (default 1000)")
    p.add_argument("--full-stack", action="store_true",
                   help="leave every service of the stack running (default: only the sequencer and the list keeper "
                        "run during the measurement, the others are stopped and started again afterwards)")
    args = p.parse_args()
    s = config.load()
    if not ops_stack.Kafka(s).pid():
        sys.exit("the broker is not running (start the stack: python -m ops.stack up)")
    keep = ops_stack.SERVICES if args.full_stack else PATH
    with quiet.only(s, tuple(n for n in keep if args.full_stack is False or ops_stack.Service(s, n).pid())):
        code = asyncio.run(main_async(s, args))
    sys.exit(code)


if __name__ == "__main__":
    main()
