"""Micro-benchmark: the sequencer's signature check per submission, first scheme against batch scheme.

    PYTHONPATH=. .venv/bin/python -m bench.verify [--records 4000] [--poll 2000] [--repeat 3]

No broker: N realistic penalty submissions (ops.workload.penalty) are encoded and signed in memory,
once as the first scheme (an Ed25519 signature over each value: `submissions.make` before batches)
and once per batch size (1, 100, 1000: `submissions.make_batch`). Then the check the sequencer runs
on each poll of `--poll` records is timed in one thread, as microseconds per submission:

- before: `submissions.signature_valid` on every record (one Ed25519 verification each; what the
  sequencer did for every record before it grouped batches)
- after, cold: `VerifiedBatches.check` with an empty memory of verified batches (each distinct
  batch's signature verified once per poll, each record's path walked)
- after, warm: the same polls again, the batches already verified (only the paths are walked:
  what a batch spanning several polls or partitions costs after its first one)

The sequencer runs its Ed25519 verifications in two threads; the figures here are one thread's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from ledger.platform import signing
from ledger.records import submissions
from ops import workload

DEPARTMENT = "xc-samr"
Item = tuple[bytes, dict[str, bytes]]


def first_scheme(records: list[dict[str, Any]], key: str) -> list[Item]:
    """Each value signed on its own (the scheme without a `batch` header)."""
    out = []
    for r in records:
        _, value = submissions.encode(r)
        out.append((value, {"department": DEPARTMENT.encode(), "event-id": r["envelope"]["event_id"].encode(),
                            "signature": signing.sign(key, value)}))
    return out


def batch_scheme(records: list[dict[str, Any]], key: str, size: int) -> list[Item]:
    out: list[Item] = []
    for i in range(0, len(records), size):
        out += [(v, dict(h)) for _, v, h in submissions.make_batch(records[i:i + size], DEPARTMENT, key)]
    return out


def per_record_us(items: list[Item], poll: int, check: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(0, len(items), poll):
            results = check(items[i:i + poll])
            assert all(results), "a signature did not verify"
        runs.append((time.perf_counter() - t0) / len(items) * 1e6)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=4000)
    p.add_argument("--poll", type=int, default=2000, help="records per poll (the sequencer's max_records)")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds; the median is shown")
    a = p.parse_args(argv)
    rng = random.Random(7)
    subjects = workload.subjects(rng, 1000)
    records = [workload.penalty(rng, rng.choice(subjects), DEPARTMENT, seq=i) for i in range(a.records)]
    priv, pub = signing.new_keypair()
    keys = {DEPARTMENT: pub}

    def before(chunk: list[Item]) -> list[bool | None]:
        return [submissions.signature_valid(v, h, keys) for v, h in chunk]

    def cold(chunk: list[Item]) -> list[bool | None]:
        return submissions.VerifiedBatches().check(chunk, keys)

    print(f"{a.records} penalty submissions, polls of {a.poll}, one thread; microseconds per submission "
          f"(median of {a.repeat})")
    print(f"{'scheme':<22}{'before':>10}{'after, cold':>14}{'after, warm':>14}")
    old = first_scheme(records, priv)
    b = per_record_us(old, a.poll, before, a.repeat)
    print(f"{'first (no batch)':<22}{b:>10.1f}{per_record_us(old, a.poll, cold, a.repeat):>14.1f}{'-':>14}")
    for size in (1, 100, 1000):
        items = batch_scheme(records, priv, size)
        warm = submissions.VerifiedBatches(capacity=a.records)
        warm.check(items, keys)
        print(f"{f'batch of {size}':<22}{per_record_us(items, a.poll, before, a.repeat):>10.1f}"
              f"{per_record_us(items, a.poll, cold, a.repeat):>14.1f}"
              f"{per_record_us(items, a.poll, lambda c, w=warm: w.check(c, keys), a.repeat):>14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
