"""Benchmark: the real rebuild command over N ledger entries, end to end (projection, indexes, digests, switch).

    PYTHONPATH=. .venv/bin/python -m bench.rebuild [--events 1000000] [--workers 2] [--seed 7]

It WRITES THE LEDGER (credit.events), so it refuses to run unless credit.events is empty: run it on
a throw-away stack, e.g. `LEDGER_STACK_DIR=$PWD/.stack-bench ops/stack up --infra-only` with ports of
your own, and `ops/stack purge` afterwards.

1. Builds N sealed LedgerEntry records (bench.projection.build: real signed submissions, valid
   per-entity chains, the projection benchmark's mix) and writes them to credit.events, each in the
   partition of its key.
2. Fills the live views from them (2 projector processes, as the rebuild does; not part of the figure),
   so that the rebuild has live views to compare with.
3. Runs `python -m projections.rebuild --workers W` as a child process and times it from start to exit:
   fresh schema, projection from offset 0, building the secondary indexes, the catch-up under the
   switch lock, the digest of every table of both schemas, the switch. Its own lines (progress,
   phases) are shown. CPU time of the command and its workers, PostgreSQL and the broker is read
   around it. The 10M figure printed at the end is an ESTIMATE (linear), labelled as such.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from aiokafka import AIOKafkaProducer

from bench.projection import TEN_MILLION, Meter, build, infrastructure, machine
from ledger import config
from projections import rebuild as rebuild_cmd
from schemas import registry


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


async def _write_ledger(bootstrap: str, entries: list[tuple[int, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=262144, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        pending = []
        for i, (partition, key, value) in enumerate(entries):
            pending.append(await producer.send(registry.EVENTS.name, value=value, key=key, partition=partition))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending = []
                _say(f"  written {i + 1:,} of {len(entries):,}")
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="ledger entries to write (default 1,000,000)")
    p.add_argument("--workers", type=int, default=2, help="the rebuild's --workers (default 2)")
    p.add_argument("--life-share", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()

    s = config.load()
    kafka, pg = infrastructure(s)
    if sum(asyncio.run(rebuild_cmd.end_offsets(s)).values()):
        sys.exit("bench.rebuild writes credit.events and needs it empty: use a throw-away stack (see --help)")
    facts = machine()
    _say(f"building {a.events:,} sealed ledger entries (seed {a.seed}) ...")
    built = build(a.events, a.seed, a.life_share, s.id_pepper)
    _say(f"  {len(built.entries):,} entries for {built.entities:,} entities in {built.build_s:.1f} s; writing "
         f"them to {registry.EVENTS.name} ...")
    asyncio.run(_write_ledger(s.bootstrap_servers, built.entries))
    n, entities = len(built.entries), built.entities
    del built
    end = asyncio.run(rebuild_cmd.end_offsets(s))
    assert sum(end.values()) == n, (end, n)
    _say("filling the live views (2 projector processes; not timed as the rebuild) ...")
    t0 = time.perf_counter()
    live = asyncio.run(rebuild_cmd.project_into(s, "views", end, 2))
    _say(f"  {live:,} events in the live views in {time.perf_counter() - t0:.1f} s")

    _say(f"running python -m projections.rebuild --workers {a.workers} ...")
    load_before = os.getloadavg()
    meter = Meter(pg.pid(), kafka.pid())
    meter.start()
    run = subprocess.run([sys.executable, "-m", "projections.rebuild", "--workers", str(a.workers)],
                         env={**os.environ, "PYTHONPATH": str(config.ROOT)}, stderr=subprocess.PIPE, text=True)
    cpu = meter.stop()
    lines = [x for x in run.stderr.splitlines() if "[" not in x[:3]]  # its lines, without the progress bar
    progress = [x for x in run.stderr.splitlines() if x.lstrip().startswith("[")]

    print()
    print(f"Rebuild benchmark, {facts['date']}")
    print(f"machine     {facts['cpu']}, {facts['nproc']} cores, {facts['mem_gib']} GiB, Python {facts['python']}; "
          f"load average at start {facts['load'][0]:.2f} {facts['load'][1]:.2f} {facts['load'][2]:.2f}, "
          f"before the rebuild {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"ledger      {n:,} entries in {registry.EVENTS.name} for {entities:,} entities (seed {a.seed}); "
          f"end offsets {end}")
    print(f"command     python -m projections.rebuild --workers {a.workers}: exit status {run.returncode}, "
          f"{cpu['wall_s']:.1f} s wall = {n / cpu['wall_s']:,.0f} events/s end to end")
    for x in lines:
        print(f"            | {x}")
    if progress:
        print(f"            | (progress, last line) {progress[-1].strip()}")
    print(f"CPU         cores busy on average: rebuild and its workers {cpu['projector_cores']:.2f}, PostgreSQL "
          f"{cpu['postgres_cores']:.2f}, broker {cpu['broker_cores']:.2f}, other work {cpu['other_cores']:.2f}")
    print(f"ESTIMATE    (not a measurement) 10,000,000 events at this end-to-end rate: "
          f"{TEN_MILLION / (n / cpu['wall_s']) / 60:,.0f} min (target <= 5 min); linear from {n:,} events, it "
          f"ignores the growth of the tables and indexes beyond memory")
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
