"""The real sequencer process with 10 million event ids in its store: resident memory and the time
from process start to ready to judge, on a running stack.

The stack's sequencer is stopped; partition 0's local store gets N synthetic event ids added (written
directly, keeping its checkpoint, so the restart's changelog tail is the real one) and is compacted;
the sequencer is started again and timed until its log says `state restored`; then a stream of
penalties is submitted and judged, and part of it resubmitted (DUPLICATE), while the process's
VmRSS is sampled every 0.2 s. Then the sequencer is killed with SIGKILL, started again, and timed
from the kill until its store is open and restored and until a new event has its outcome.

Run (a stack must be up: ops/stack up, or with the test stack's environment):
    PYTHONPATH=. .venv/bin/python -m bench.sequencer_live [--ids 10000000] [--submissions 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

from bench.procfs import rss_mib
from bench.sequencer_store import BUILD_CHUNK, _changes
from ledger.client import LedgerClient
from ledger.platform import config
from ledger.sequencer import store
from ops import stack as ops_stack
from ops import workload


def inflate(directory: Path, ids: int) -> int:
    s = store.PartitionStore(directory, 0, store.Resources())
    checkpoint = s.checkpoint()
    assert checkpoint is not None, "start the stack's sequencer once first"
    for start in range(0, ids, BUILD_CHUNK):
        s.apply_batch(_changes(range(start, min(ids, start + BUILD_CHUNK)), range(0)), checkpoint)
    s.db.compact_range(None, None)
    s.close()
    return checkpoint


async def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sequencer_live", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", type=int, default=10_000_000)
    p.add_argument("--submissions", type=int, default=10_000)
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = p.parse_args()
    s = config.load()
    sequencer = ops_stack.Service(s, "sequencer")
    sequencer.stop()
    t = time.perf_counter()
    checkpoint = inflate(s.sequencer_store_dir("0"), args.ids)
    print(f"{args.ids:,} ids added to partition 0's store (checkpoint {checkpoint}) in {time.perf_counter() - t:.1f} s")
    log_start = sequencer.log.stat().st_size if sequencer.log.exists() else 0
    started = time.perf_counter()
    sequencer.start()
    pid = sequencer.pid()
    assert pid is not None
    while b"state restored" not in sequencer.log.read_bytes()[log_start:]:
        await asyncio.sleep(0.01)
    ready_s = time.perf_counter() - started
    samples: list[float] = [rss_mib(pid)]
    rss_ready = samples[0]

    async def sample() -> None:
        while True:
            samples.append(rss_mib(pid))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    rng = random.Random(11)
    subjects = workload.subjects(rng, 2000)
    records = [workload.penalty(rng, subjects[i % len(subjects)], "xc-samr", i) for i in range(args.submissions)]
    async with LedgerClient.of(s, "xc-samr") as c:
        t = time.perf_counter()
        first = await c.submit_many_and_wait(records, timeout=600)
        judged_s = time.perf_counter() - t
        again = await c.submit_many_and_wait(records[:2000], timeout=600)
        sampler.cancel()
        # kill -9 with 10 million ids in the store, start again, and time until a new event is judged
        os.kill(pid, signal.SIGKILL)
        killed = time.perf_counter()
        while sequencer.pid() is not None:
            await asyncio.sleep(0.01)
        log_start = sequencer.log.stat().st_size if sequencer.log.exists() else 0
        sequencer.start()
        while b"state restored" not in sequencer.log.read_bytes()[log_start:]:
            await asyncio.sleep(0.01)
        restored_s = time.perf_counter() - killed
        fresh = workload.penalty(rng, subjects[0], "xc-samr", args.submissions + 1)
        after_kill = await c.submit_and_wait(fresh, timeout=120)
        judging_again_s = time.perf_counter() - killed
    print(f"outcomes: {dict(Counter(o['status'] for o in first))}; resubmitted: "
          f"{dict(Counter(o['status'] for o in again))}; after kill -9: {after_kill['status']}")
    print(f"kill -9 -> restarted and state restored: {restored_s:.2f} s; kill -9 -> a new event judged: "
          f"{judging_again_s:.2f} s (target <= 10 s)")
    print(f"process start -> state restored (ready to judge): {ready_s:.2f} s")
    print(f"RSS when ready: {rss_ready:.0f} MiB; max while judging {args.submissions:,} + 2,000 resubmissions: "
          f"{max(samples):.0f} MiB; at the end: {samples[-1]:.0f} MiB")
    print(f"judged {args.submissions / judged_s:,.0f} submissions/s (submit to last outcome)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "ids": args.ids, "ready_s": round(ready_s, 2), "rss_ready_mib": round(rss_ready),
            "rss_max_mib": round(max(samples)), "judged_per_s": round(args.submissions / judged_s),
            "kill9_restored_s": round(restored_s, 2), "kill9_judging_again_s": round(judging_again_s, 2),
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}, indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
