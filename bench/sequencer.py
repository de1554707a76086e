"""Benchmark: client ingest and sequencer throughput, beside the `eventsourcing` peer.

    PYTHONPATH=. .venv/bin/python -m bench.sequencer [--events 100000] [--entities 20000]
        [--peer-events 20000] [--peer-writers 1,4,8,16] [--json FILE]

1. Client ingest: N realistic penalty submissions encoded (Avro), batch-signed (one Ed25519
   signature per chunk of submissions) and sent through ledger.client.LedgerClient (idempotent,
   acks=all) while no sequencer runs; the figure is submissions per second until the broker
   acknowledged the last one.
2. Sequencer throughput: the real sequencer process is started on that backlog; the figure is
   submissions judged and committed per second (ledger entry + outcome + changelog + offsets in
   Kafka transactions), from its start until the last outcome is read (read_committed).
   Its resident memory at the end is printed too.
3. The peer: the same events appended with the `eventsourcing` library's PostgreSQL recorder
   (bench/peer.py), on the same PostgreSQL, with each of `--peer-writers` concurrent writers; its
   best rate counts, and the ratios.

It uses the stack of the environment's settings (the demo stack by default), starts its
infrastructure if needed, stops every service of the stack for the measurement (bench/quiet.py)
and starts again afterwards what ran before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import peer, quiet
from bench.procfs import rss_mib
from ledger.client import LedgerClient
from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, access
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
    clients = [LedgerClient.of(s, d) for d in by_dept]
    for c in clients:
        await c.start(watch_outcomes=False)
    started = time.perf_counter()
    await asyncio.gather(*(c.submit_many(by_dept[c.department]) for c in clients))
    elapsed = time.perf_counter() - started
    for c in clients:
        await c.stop()
    return elapsed


async def _outcome_watcher(s: config.Settings) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    c = AIOKafkaConsumer(**access(s, ADMIN).options(), group_id=None, enable_auto_commit=False,
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


async def run(events: int, entities: int, peer_events: int, seed: int, peer_writers: list[int]) -> dict[str, Any]:
    s = config.load()
    rng = random.Random(seed)
    subjects = workload.subjects(rng, entities)
    departments = list(workload.PENALTY_DEPARTMENTS)
    records = [workload.penalty(rng, subjects[i % entities], departments[i % len(departments)],
                                seq=seed % 10_000 * 1_000_000 + i) for i in range(events)]
    ids = {r["envelope"]["event_id"] for r in records}
    # alone on the two cores with the broker, as the figure should be: every service stopped, the
    # sequencer started on the backlog
    with quiet.only(s, ()):
        sequencer = ops_stack.Service(s, "sequencer")
        print(f"client ingest: {events} submissions for {entities} entities ...", flush=True)
        ingest_seconds = await _ingest(s, records)
        watcher, _ = await _outcome_watcher(s)
        print("sequencer: judging the backlog ...", flush=True)
        started = time.perf_counter()
        await asyncio.to_thread(sequencer.start)
        statuses, first = await _wait_outcomes(watcher, ids, timeout=max(120.0, events / 500))
        ended = time.perf_counter()
        seq_seconds, steady_seconds = ended - started, ended - first
        rss = rss_mib(sequencer.pid())
        await watcher.stop()
        sequencer.stop()

    peers = {}
    for writers in peer_writers:
        print(f"peer: {peer_events} events through eventsourcing + PostgreSQL, {writers} writer(s) ...", flush=True)
        n_peer, peer_seconds = peer.append_concurrently(s, records[:peer_events], writers)
        peers[writers] = n_peer / peer_seconds
    best_writers = max(peers, key=lambda w: peers[w])
    peer_rate = peers[best_writers]

    ingest_rate, seq_rate, steady_rate = events / ingest_seconds, events / seq_seconds, events / steady_seconds
    print()
    print(f"date            {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"machine         {_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"workload        {events} penalty submissions, {entities} entities, seed {seed}")
    print(f"client ingest   {ingest_rate:>10,.0f} events/s  (encode + batch-sign + send, acks=all; target >= 50,000)")
    print(f"sequencer       {seq_rate:>10,.0f} events/s  (judge + append + outcome + changelog, transactional; "
          f"outcomes {statuses}; from process start, state restore included)")
    print(f"  steady        {steady_rate:>10,.0f} events/s  (first to last outcome; start-up and restore "
          f"took {seq_seconds - steady_seconds:.1f} s; target >= 30,000); resident {rss:.0f} MiB at the end")
    print(f"eventsourcing   {peer_rate:>10,.0f} events/s  (PostgreSQL recorder, best of {peer_writers} writers: "
          f"{best_writers}; {peer_events} events)")
    print(f"ratio           sequencer / peer = {steady_rate / peer_rate:.1f}x, "
          f"client ingest / peer = {ingest_rate / peer_rate:.1f}x")
    return {"client_ingest_per_s": round(ingest_rate), "sequencer_per_s": round(seq_rate),
            "sequencer_steady_per_s": round(steady_rate), "sequencer_rss_mib": round(rss),
            "statuses": statuses, "peer_per_s": {str(w): round(r) for w, r in peers.items()},
            "peer_best_per_s": round(peer_rate), "peer_best_writers": best_writers,
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sequencer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--entities", type=int, default=20_000)
    p.add_argument("--peer-events", type=int, default=20_000, help="events for the eventsourcing peer")
    p.add_argument("--peer-writers", default="1,4,8,16", help="concurrent writers of the peer to try (its best counts)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    a = p.parse_args()
    ops_stack.up(config.load(), services=False)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(10**9)
    out = asyncio.run(run(a.events, a.entities, a.peer_events, seed, [int(w) for w in a.peer_writers.split(",")]))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
