"""The log's own latency floor on this broker, for the alert path's figures to read as a ratio.

    PYTHONPATH=. .venv/bin/python -m bench.floor [--records 1000] [--json]

1. Kafka's own `org.apache.kafka.tools.EndToEndLatency` from the stack's jars (ops/kafka/lib): one
   producer (acks=all, 500-byte records, no transactions) and one consumer, a record at a time
   (closed loop): the time from send to receipt.
2. A read_committed produce-to-consume of one transaction, with the same Python client as the
   services (aiokafka): begin, send one record, commit; the time until a read_committed consumer has
   it. Closed loop, one transaction at a time.
3. Two such hops, as a listing takes (the sequencer's transaction, then the list keeper's): a relay
   reads the first topic read_committed and writes each record to a second topic in its own
   transaction with its input offsets (send_offsets_to_transaction), as the services do; the time from
   the first begin until a read_committed reader of the second topic has it.

Topics bench.floor.* (one partition each) are created and deleted by the run. The stack's broker
must run (ops/stack up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench import producer as perf
from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, KafkaAccess, access
from ops import infra

E2E_CLASS = "org.apache.kafka.tools.EndToEndLatency"
E2E_TOPIC, HOP1, HOP2 = "bench.floor.e2e", "bench.floor.hop1", "bench.floor.hop2"
# Kafka 4.4 prints "Avg latency: 1.8300 ms" and "Percentiles: 50th = 1, 99th = 9, 99.9th = 16"
AVG = re.compile(r"Avg latency: ([\d.]+) ms")
PCT = re.compile(r"Percentiles: 50th = (\d+), 99th = (\d+), 99\.9th = (\d+)")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "mean_ms": statistics.fmean(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "max_ms": max(ms)}


def kafka_end_to_end(kafka: KafkaAccess, n: int) -> dict[str, Any]:
    cmd = [infra.java_binary(), *perf.JVM_FLAGS, f"-Dlog4j2.configurationFile={infra.KAFKA_HOME / 'tools-log4j2.yaml'}",
           "-cp", infra.kafka_classpath(), E2E_CLASS, kafka.bootstrap_servers, E2E_TOPIC, str(n), "all", "500",
           str(infra.client_properties(kafka, config.load().stack_dir / "kafka"))]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{E2E_CLASS} failed (exit {r.returncode}):\n{(r.stderr or r.stdout)[-2000:]}")
    avg, pct = AVG.search(r.stdout), PCT.search(r.stdout)
    if not avg or not pct:
        raise RuntimeError(f"no latency lines in the {E2E_CLASS} output:\n{r.stdout[-2000:]}")
    return {"n": n, "mean_ms": float(avg[1]), "p50_ms": float(pct[1]), "p99_ms": float(pct[2]),
            "p999_ms": float(pct[3]), "lines": [avg[0], pct[0]]}


def _consumer(kafka: KafkaAccess, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(**kafka.options(), enable_auto_commit=False, isolation_level="read_committed",
                            fetch_max_wait_ms=100, **options)


def _producer(kafka: KafkaAccess, tid: str) -> AIOKafkaProducer:
    # the services' transactional settings (ledger/platform/transactional.py, the sequencer's backoff)
    return AIOKafkaProducer(**kafka.options(), transactional_id=tid, linger_ms=0, retry_backoff_ms=2)


async def transactions(kafka: KafkaAccess, n: int, hops: int) -> dict[str, float]:
    """Closed loop: one record per transaction through `hops` transactional hops (1 or 2)."""
    first = _producer(kafka, f"bench-floor-{time.time_ns()}")
    relay_out = _producer(kafka, f"bench-floor-relay-{time.time_ns()}")
    group = f"bench-floor-relay-{time.time_ns()}"
    relay_in = _consumer(kafka, group_id=group, auto_offset_reset="latest") if hops == 2 else None
    reader = _consumer(kafka, group_id=None)
    out_topic = HOP1 if hops == 1 else HOP2
    for c in (first, relay_out, reader):
        await c.start()
    tp_out = TopicPartition(out_topic, 0)
    reader.assign([tp_out])
    await reader.seek_to_end(tp_out)
    await reader.position(tp_out)
    relay_task = None
    if relay_in is not None:
        await relay_in.start()
        tp_in = TopicPartition(HOP1, 0)
        relay_in.assign([tp_in])
        await relay_in.seek_to_end(tp_in)
        await relay_in.position(tp_in)

        async def relay() -> None:
            while True:
                for tp, msgs in (await relay_in.getmany(timeout_ms=100)).items():
                    async with relay_out.transaction():
                        for m in msgs:
                            await relay_out.send(HOP2, m.value, partition=0)
                        await relay_out.send_offsets_to_transaction({tp: msgs[-1].offset + 1}, group)

        relay_task = asyncio.create_task(relay())
    ms: list[float] = []
    try:
        for i in range(n + 20):
            t0 = time.perf_counter()
            async with first.transaction():
                await first.send(HOP1, b"x" * 500 + str(i).encode(), partition=0)
            got = False
            while not got:
                got = bool(await reader.getmany(tp_out, timeout_ms=1000))
            if i >= 20:  # the first ones warm the connections and the coordinators up
                ms.append((time.perf_counter() - t0) * 1000)
    finally:
        if relay_task is not None:
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)
        if relay_in is not None:
            await relay_in.stop()
        for c in (first, relay_out, reader):
            await c.stop()
    return summary(ms)


async def measure(kafka: KafkaAccess, n: int) -> dict[str, Any]:
    for t in (E2E_TOPIC, HOP1, HOP2):
        await perf.recreate_topic(kafka, t)
    try:
        java = await asyncio.to_thread(kafka_end_to_end, kafka, n)
        one = await transactions(kafka, n, 1)
        two = await transactions(kafka, n, 2)
    finally:
        for t in (E2E_TOPIC, HOP1, HOP2):
            await perf.delete_topic(kafka, t)
    return {"kafka_end_to_end": java, "one_transaction": one, "two_transactions": two}


def report(f: dict[str, Any]) -> None:
    j, one, two = f["kafka_end_to_end"], f["one_transaction"], f["two_transactions"]
    print("the log's own latency (closed loop, one record at a time):")
    print(f"  Kafka EndToEndLatency (Java, acks=all, 500 B, no transactions): mean {j['mean_ms']:.2f} ms, "
          f"p50 {j['p50_ms']:.0f} ms, p99 {j['p99_ms']:.0f} ms, p99.9 {j['p999_ms']:.0f} ms ({j['n']} records)")
    for name, x in (("one transaction, read_committed (aiokafka)", one), ("two transactional hops (aiokafka)", two)):
        print(f"  {name:<45} mean {x['mean_ms']:.2f} ms, p50 {x['p50_ms']:.2f} ms, p99 {x['p99_ms']:.2f} ms, "
              f"max {x['max_ms']:.1f} ms ({x['n']})")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=1000, help="records per measurement (default 1000)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    s = config.load()
    f = asyncio.run(measure(access(s, ADMIN), args.records))
    print(json.dumps(f, indent=2)) if args.json else report(f)
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
