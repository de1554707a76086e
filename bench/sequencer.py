"""Benchmark: client ingest and sequencer throughput, beside the `eventsourcing` peer.

    PYTHONPATH=. .venv/bin/python -m bench.sequencer [--events 100000] [--entities 20000]

1. Client ingest: N realistic penalty submissions encoded (Avro), signed (Ed25519) and sent through
   ledger.client.LedgerClient (idempotent, acks=all) while no sequencer runs; the figure is
   submissions per second until the broker acknowledged the last one.
2. Sequencer throughput: the real sequencer process is started on that backlog; the figure is
   submissions judged and committed per second (ledger entry + outcome + changelog + offsets in
   Kafka transactions), from its start until the last outcome is read (read_committed).
3. The peer: the same events appended one entity at a time with the `eventsourcing` library's
   PostgreSQL recorder (bench/peer.py), on the same PostgreSQL; and the ratio.

It uses the stack of the environment's settings (the demo stack by default), starts its
infrastructure if needed, stops the stack's sequencer for the measurement and restarts it after.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import peer
from ledger.client import LedgerClient
from ledger.platform import config, signing
from ops import stack as ops_stack
from ops import workload
from schemas import registry


def _cpu() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


async def _ingest(s: config.Settings, records: list[dict]) -> float:
    by_dept: dict[str, list[dict]] = {}
    for r in records:
        by_dept.setdefault(r["envelope"]["source_department"], []).append(r)
    clients = [LedgerClient(s.bootstrap_servers, d, signing.private_key(s.keys_dir, d)) for d in by_dept]
    for c in clients:
        await c.start(watch_outcomes=False)
    started = time.perf_counter()
    await asyncio.gather(*(c.submit_many(by_dept[c.department]) for c in clients))
    elapsed = time.perf_counter() - started
    for c in clients:
        await c.stop()
    return elapsed


async def _outcome_watcher(s: config.Settings) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    c = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=None, enable_auto_commit=False,
                         isolation_level="read_committed", max_poll_records=10000)
    await c.start()
    tps = [TopicPartition(registry.OUTCOMES.name, p) for p in range(registry.OUTCOMES.partitions)]
    c.assign(tps)
    await c.seek_to_end(*tps)
    for tp in tps:
        await c.position(tp)
    return c, tps


async def _wait_outcomes(c: AIOKafkaConsumer, ids: set[str], timeout: float) -> tuple[dict[str, int], float]:
    """Wait for an outcome of every id; returns the statuses and when the first outcome was read."""
    statuses: dict[str, int] = {}
    remaining = set(ids)
    first = 0.0
    deadline = time.perf_counter() + timeout
    while remaining and time.perf_counter() < deadline:
        for msgs in (await c.getmany(timeout_ms=200)).values():
            for m in msgs:
                eid = m.key.decode()
                if eid in remaining:
                    first = first or time.perf_counter()
                    remaining.discard(eid)
                    status = registry.decode(m.value, "Outcome")[1]["status"]
                    statuses[status] = statuses.get(status, 0) + 1
    if remaining:
        raise SystemExit(f"{len(remaining)} submissions got no outcome within {timeout} s")
    return statuses, first


async def run(events: int, entities: int, peer_events: int, seed: int) -> None:
    s = config.load()
    sequencer, projector = ops_stack.Service(s, "sequencer"), ops_stack.Service(s, "projector")
    was_running = {svc.name: svc.pid() is not None for svc in (sequencer, projector)}
    sequencer.stop()
    projector.stop()  # alone on the two cores with the broker, as the figure should be

    rng = random.Random(seed)
    subjects = workload.subjects(rng, entities)
    departments = list(workload.PENALTY_DEPARTMENTS)
    records = [workload.penalty(rng, subjects[i % entities], departments[i % len(departments)],
                                seq=seed % 10_000 * 1_000_000 + i) for i in range(events)]
    ids = {r["envelope"]["event_id"] for r in records}

    print(f"client ingest: {events} submissions for {entities} entities ...", flush=True)
    ingest_seconds = await _ingest(s, records)

    watcher, _ = await _outcome_watcher(s)
    print("sequencer: judging the backlog ...", flush=True)
    started = time.perf_counter()
    await asyncio.to_thread(sequencer.start)
    statuses, first = await _wait_outcomes(watcher, ids, timeout=max(120.0, events / 500))
    ended = time.perf_counter()
    seq_seconds, steady_seconds = ended - started, ended - first
    await watcher.stop()
    for svc in (sequencer, projector):
        if was_running[svc.name]:
            await asyncio.to_thread(svc.start)
        else:
            svc.stop()

    print(f"peer: {peer_events} events through eventsourcing + PostgreSQL, one entity at a time ...", flush=True)
    n_peer, peer_seconds = peer.append_one_entity_at_a_time(s, records[:peer_events])

    ingest_rate, seq_rate, peer_rate = events / ingest_seconds, events / seq_seconds, n_peer / peer_seconds
    print()
    print(f"date            {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine         {_cpu()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}")
    print(f"workload        {events} penalty submissions, {entities} entities, seed {seed}")
    print(f"client ingest   {ingest_rate:>10,.0f} events/s  (encode + sign + send, acks=all; target >= 50,000)")
    print(f"sequencer       {seq_rate:>10,.0f} events/s  (judge + append + outcome + changelog, transactional; "
          f"outcomes {statuses}; from process start, state restore included)")
    print(f"  steady        {events / steady_seconds:>10,.0f} events/s  (first to last outcome; start-up and restore "
          f"took {seq_seconds - steady_seconds:.1f} s)")
    print(f"eventsourcing   {peer_rate:>10,.0f} events/s  (PostgreSQL recorder, one entity at a time, "
          f"{n_peer} events)")
    print(f"ratio           sequencer / peer = {seq_rate / peer_rate:.1f}x, "
          f"client ingest / peer = {ingest_rate / peer_rate:.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sequencer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--entities", type=int, default=20_000)
    p.add_argument("--peer-events", type=int, default=20_000, help="events for the eventsourcing peer")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    ops_stack.up(config.load(), services=False)
    asyncio.run(run(a.events, a.entities, a.peer_events, a.seed if a.seed is not None else random.SystemRandom().randrange(10**9)))


if __name__ == "__main__":
    main()
