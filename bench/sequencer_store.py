"""The sequencer's local state store at scale: one partition's RocksDB store holding 10 million event
ids (built directly, not through Kafka), then, in a fresh process that imports what the sequencer
process imports and loads the rules: the time from process start to "ready to judge" (open the
store, apply a checkpointed changelog tail, attach), the resident memory after opening and after
lookups, and the rates of id lookups (present, absent: through `Sequencing.seen`, which also asks the
other three partitions' stores), entity reads (cache misses) and batched writes.

Run: PYTHONPATH=. .venv/bin/python -m bench.sequencer_store [--ids 10000000] [--entities 200000]
     [--tail 20000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procfs import rss_mib

BUILD_CHUNK = 50_000
LOOKUPS = 100_000
BATCHES = 100  # writes: batches of 2,000 ids and 500 entity states, as a full sequencer batch
STATE_JSON = json.dumps({"version": 12, "counts": {"AdministrativePenaltyImposed": 12},
                         "penalties": {f"XC-{j}": {"status": "published", "decided_on": "2026-10-01"}
                                       for j in range(3)}})


def event_id(i: int) -> str:
    return f"{i:08x}-5f3c-4e0e-9a51-{i * 7919 % 10**12:012d}"


def entity_id(i: int) -> str:
    return f"uscc:91411000{i:010d}"


def _changes(ids: range, entities: range):  # type: ignore[no-untyped-def]
    from ledger.sequencer.core import Changes, Seen

    h = hashlib.sha256(b"x").digest()
    return Changes({entity_id(e): (STATE_JSON, h) for e in entities},
                   {event_id(i): Seen(hashlib.blake2b(i.to_bytes(8, "big"), digest_size=32).digest(),
                                      entity_id(i % 1000), 1 + i // 1000, 0, i) for i in ids})


def build(directory: Path, ids: int, entities: int) -> dict[str, float]:
    from ledger.sequencer import store

    s = store.PartitionStore(directory, 0, store.Resources())
    t = time.perf_counter()
    for start in range(0, ids, BUILD_CHUNK):
        ents = range(start * entities // ids, min(entities, (start + BUILD_CHUNK) * entities // ids))
        s.apply_batch(_changes(range(start, min(ids, start + BUILD_CHUNK)), ents), start + BUILD_CHUNK)
    s.apply_batch(_changes(range(0), range(0)), ids)  # checkpoint: changelog offset = ids (synthetic)
    loaded = time.perf_counter() - t
    # compacted, as the background compaction keeps a long-running sequencer's store (a fresh bulk load
    # leaves hundreds of level-0 files that every lookup would look into)
    s.db.compact_range(None, None)
    s.close()
    took = time.perf_counter() - t
    return {"build_s": took, "load_ids_per_s": ids / loaded,
            "disk_mib": sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 2**20}


def ready(directory: Path, ids: int, entities: int, tail: int, started_ns: int) -> dict[str, float]:
    """What the sequencer does on assignment, minus the Kafka fetch: open, tail, attach."""
    from ledger.platform.clock import SYSTEM
    from ledger.rules import loader
    from ledger.sequencer import service, store  # noqa: F401  (the sequencer process's imports)
    from ledger.sequencer.core import Seen, Sequencing, Verdict, changes_of, seen_record
    from schemas import registry

    out: dict[str, float] = {"rss_imported_mib": rss_mib()}
    core = Sequencing({}, b"bench", loader.load(), today=SYSTEM.today, now=SYSTEM.now)
    res = store.Resources()
    # the changelog tail after the checkpoint, framed as on the topic (its decoding is part of the restore)
    h = hashlib.sha256(b"y").digest()
    t = time.perf_counter()
    framed = [registry.encode("SequencerState", seen_record(Verdict("ACCEPTED", event_id(ids + i)),
                                                            Seen(h, entity_id(i % 1000), 1, 0, ids + i))[1])
              for i in range(tail)]
    framing_s = time.perf_counter() - t  # the bench's own work: not counted in start_to_ready_s
    t = time.perf_counter()
    s0, wiped = store.open_checked(directory, 0, res, 0, ids + tail)
    assert wiped is None and s0.checkpoint() == ids
    out["open_s"] = time.perf_counter() - t
    s0.apply_batch(changes_of(registry.decode(b, "SequencerState")[1] for b in framed), ids + tail)
    core.attach(0, s0)
    for p in (1, 2, 3):  # the other partitions this process owns (empty here): asked for absent ids too
        core.attach(p, store.open_checked(directory / "others", p, res, 0, 0)[0])
    out["open_and_tail_s"] = time.perf_counter() - t
    out["start_to_ready_s"] = (time.time_ns() - started_ns) / 1e9 - framing_s
    out["rss_ready_mib"] = rss_mib()
    rng = random.Random(7)
    present = [rng.randrange(ids + tail) for _ in range(LOOKUPS)]
    absent = [ids + tail + rng.randrange(10 * ids) for _ in range(LOOKUPS)]
    t = time.perf_counter()
    assert all(core.seen(0, event_id(i)) is not None for i in present)
    out["seen_present_per_s"] = LOOKUPS / (time.perf_counter() - t)
    t = time.perf_counter()
    assert all(core.seen(0, event_id(i)) is None for i in absent)
    out["seen_absent_per_s"] = LOOKUPS / (time.perf_counter() - t)
    picks = [rng.randrange(entities) for _ in range(LOOKUPS // 5)]
    t = time.perf_counter()
    for e in picks:
        core._entity(0, entity_id(e))
    out["entity_get_per_s"] = len(picks) / (time.perf_counter() - t)
    out["rss_after_lookups_mib"] = rss_mib()
    t = time.perf_counter()
    base = ids + tail + 10 * ids + 1
    for b in range(BATCHES):
        s0.apply_batch(_changes(range(base + b * 2000, base + (b + 1) * 2000), range(b * 500, (b + 1) * 500)),
                       ids + tail + b + 1)
    out["put_ids_per_s"] = BATCHES * 2000 / (time.perf_counter() - t)
    out["rss_end_mib"] = rss_mib()
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sequencer_store", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", type=int, default=10_000_000)
    p.add_argument("--entities", type=int, default=200_000)
    p.add_argument("--tail", type=int, default=20_000, help="changelog records after the store's checkpoint")
    p.add_argument("--dir", type=Path, default=None, help="where the store is built (default: a temporary dir)")
    p.add_argument("--phase", choices=["build", "ready"], help=argparse.SUPPRESS)
    p.add_argument("--started-ns", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase == "build":
        print(json.dumps(build(args.dir, args.ids, args.entities)))
        return
    if args.phase == "ready":
        print(json.dumps(ready(args.dir, args.ids, args.entities, args.tail, args.started_ns)))
        return
    base = Path(tempfile.mkdtemp(prefix="sequencer-store-", dir=args.dir))
    try:
        figures: dict[str, float] = {}
        for phase in ("build", "ready"):
            cmd = [sys.executable, "-m", "bench.sequencer_store", "--phase", phase, "--dir", str(base),
                   "--ids", str(args.ids), "--entities", str(args.entities), "--tail", str(args.tail),
                   "--started-ns", str(time.time_ns())]
            r = subprocess.run(cmd, check=True, capture_output=True, text=True)
            figures.update(json.loads(r.stdout.strip().splitlines()[-1]))
        print(f"{args.ids:,} event ids and {args.entities:,} entities in one partition's store; "
              f"a changelog tail of {args.tail:,} records")
        for k, v in figures.items():
            print(f"  {k:24s} {v:>14,.2f}" if v < 1000 else f"  {k:24s} {v:>14,.0f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
