"""Benchmark: latency from submission to alert, at a fixed open-loop rate.

    PYTHONPATH=. .venv/bin/python -m bench.alert_latency [--rate 1000] [--seconds 30] [--with-rebuild]

Court listings of new cases and delistings of earlier ones (half and half once warm) are signed and
submitted through the normal client path (ledger.client.LedgerClient, as xc-court) on a fixed
schedule: event i is due at t0 + i/rate whatever happened before (open loop, so a slow alert path
cannot slow the load and hide its own latency). Each event then goes submission -> sequencer
(Kafka transaction) -> credit.events -> list keeper (transaction) -> credit.lists.changes ->
alerter (transaction) -> credit.alerts. A consumer in this process reads credit.alerts
(read_committed) and, for the first alert of each event, records now - the event's due time in a
fixed-bucket histogram (0.1 ms buckets to 2 s, then 10 ms buckets to 60 s); percentiles come from
the histogram. The stages are split with the timestamps the path stamps itself: the sequencer's
ledger time (sequenced_at, ms) and the alerter's alerted_at (us); all processes share one clock.

--with-rebuild runs `python -m consumers.projector.rebuild` (a full view rebuild from offset 0) during the
measurement, as the issue asks. It uses the stack of the environment's settings; the sequencer,
list keeper and alerter must run (ops/stack up).
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

from ledger.client import LedgerClient
from ledger.platform import config, signing
from ledger.platform.kafka_util import assign_at_end
from ops import stack as ops_stack
from ops import workload
from schemas import registry

TARGET_P50_MS, TARGET_P99_MS = 10.0, 50.0


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
    """Wait until the sequencer and the alerter have consumed their input (a backlog from an earlier run
    would be measured as latency)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers)
    probe = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=None)
    await admin.start()
    await probe.start()
    deadline = time.time() + timeout
    try:
        while True:
            behind = 0
            for group, topic in (("credit-sequencer", registry.SUBMISSIONS), ("credit-alerter", registry.EVENTS)):
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


async def run(s: config.Settings, rate: float, seconds: float, warmup: float, rebuild: bool) -> int:
    await wait_idle(s)
    due: dict[str, float] = {}
    hist, stage_seq, stage_alert, stage_read = Histogram(), Histogram(), Histogram(), Histogram()
    seen: set[str] = set()
    consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", fetch_max_wait_ms=5)
    await consumer.start()
    await assign_at_end(consumer, registry.ALERTS.name, registry.ALERTS.partitions)
    measure_from = time.time() + warmup

    async def read() -> None:
        while True:
            for msgs in (await consumer.getmany(timeout_ms=50)).values():
                now = time.time()
                for m in msgs:
                    _, a = registry.decode(m.value, "Alert")
                    eid = a["trigger_event_id"]
                    if eid in seen or eid not in due:
                        continue
                    seen.add(eid)
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
    client = LedgerClient(s.bootstrap_servers, "xc-court", signing.private_key(s.keys_dir, "xc-court"), linger_ms=0)
    await client.start(watch_outcomes=False)
    load = Load(random.Random(f"alert-latency-{time.time_ns()}"), 5000)
    total = int(rate * (seconds + warmup))
    records = [load.next() for _ in range(total)]
    late = 0
    try:
        if rebuild:
            proc = subprocess.Popen([sys.executable, "-m", "consumers.projector.rebuild"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(config.ROOT)})
        t0 = time.time() + 0.2
        for i, rec in enumerate(records):
            at = t0 + i / rate
            wait = at - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.01:
                late += 1
            due[rec["envelope"]["event_id"]] = at
            await client.submit(rec)
            if i % int(rate) == 0 and i:
                print(f"  {i}/{total} submitted, {len(seen)} alerted", flush=True)
        sent_in = time.time() - t0
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
          f"for {seconds:.0f} s after {warmup:.0f} s warm-up{' with a view rebuild running (' + rebuild_state + ')' if rebuild else ''}")
    print(f"  submitted {len(due)} in {sent_in:.1f} s ({len(due) / sent_in:.0f}/s; {late} sent >10 ms behind "
          f"schedule), alerted {len(seen)}, missing {missing}, measured {hist.count}")
    for name, h in (("end to end", hist), ("  due -> sequenced", stage_seq), ("  sequenced -> alerted", stage_alert),
                    ("  alerted -> read", stage_read)):
        print(f"  {name:<22} p50 {h.percentile(50):8.1f} ms   p90 {h.percentile(90):8.1f} ms   "
              f"p99 {h.percentile(99):8.1f} ms   p99.9 {h.percentile(99.9):8.1f} ms   max {h.max_ms:8.1f} ms")
    if hist.count == 0:
        print("  no alert was measured")
        return 1
    p50, p99 = hist.percentile(50), hist.percentile(99)
    print(f"  targets: p50 <= {TARGET_P50_MS:.0f} ms ({'met' if p50 <= TARGET_P50_MS else 'MISSED'}), "
          f"p99 <= {TARGET_P99_MS:.0f} ms ({'met' if p99 <= TARGET_P99_MS else 'MISSED'})")
    print(f"  load average: {open('/proc/loadavg').read().split()[:3]}")
    return 0 if missing == 0 else 1


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.alert_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=1000, help="events per second, open loop (default 1000)")
    p.add_argument("--seconds", type=float, default=30, help="measured seconds (default 30)")
    p.add_argument("--warmup", type=float, default=3, help="seconds submitted but not measured (default 3)")
    p.add_argument("--with-rebuild", action="store_true", help="run a full view rebuild during the measurement")
    args = p.parse_args()
    s = config.load()
    missing = [n for n in ("sequencer", "list-keeper", "alerter") if not ops_stack.Service(s, n).pid()]
    if missing:
        sys.exit(f"not running: {', '.join(missing)} (start the stack: python -m ops.stack up)")
    sys.exit(asyncio.run(run(s, args.rate, args.seconds, args.warmup, args.with_rebuild)))


if __name__ == "__main__":
    main()
