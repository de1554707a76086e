"""The projection's fold on a fixed input: CPU time per event, a cProfile breakdown, and a digest of its output.

    PYTHONPATH=. .venv/bin/python -m bench.fold [--events 50000] [--seed 7] [--batch 5000]
                                                [--rounds 3] [--profile] [--top 30]

No Kafka, no database. The input is reproducible: the same realistic workload as bench/projection.py
(ops.workload: penalties for many entities, full life() histories, honoured lives), signed with a key
derived from the seed, with the clock, today's date and the event ids of ops.workload fixed, and
ledger times one millisecond apart from 2026-06-15 10:00 UTC. The entries are cached under
/tmp/ledger-fold-<events>-<seed>.pickle after the first build.

The fold is `projections.rows.Folder.fold`, batch after batch, the states carried between batches as
their JSON text (as the projector reads them back from entity_state). Figures are CPU time of this
process (time.process_time), so other work on the machine slows them little. The digest (SHA-256
over the repr of every row operation of every batch) changes if any written byte changes: an
optimisation of the fold must leave it as it is (tests/unit/test_fold_golden.py pins a small one).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import hashlib
import io
import json
import pickle
import pstats
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.platform.clock import Clock
from ledger.rules import loader
from ops import workload
from projections.rows import Folder, Incoming, Loaded, Ops, shown_record, state_from_json

PEPPER = b"bench-fold-pepper"
EPOCH = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
PARTITIONS = 4


@contextlib.contextmanager
def frozen_workload(seed: int) -> Iterator[None]:
    """ops.workload with a fixed clock (so a fixed today) and event ids from a seeded generator."""
    rng = random.Random(seed ^ 0x5EED)

    class _Uuid:
        @staticmethod
        def uuid4() -> uuid.UUID:
            return uuid.UUID(int=rng.getrandbits(128), version=4)

    saved = workload.uuid, workload.CLOCK
    workload.uuid, workload.CLOCK = _Uuid, Clock.fixed(EPOCH)  # type: ignore[assignment]
    try:
        yield
    finally:
        workload.uuid, workload.CLOCK = saved  # type: ignore[assignment]


def fixed_entries(events: int, seed: int, life_share: float = 0.10) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, LedgerEntry value) for `events` entries, the same bytes for the same arguments."""
    from bench.projection import build  # the workload builder of the projection benchmark

    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"bench.fold {seed}".encode()).digest())
    private_hex = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption()).hex()
    ticks = iter(range(10**12))
    with frozen_workload(seed):
        built = build(events, seed, life_share, PEPPER, private_key=private_hex,
                      clock=lambda: EPOCH + timedelta(milliseconds=next(ticks)))
    return built.entries


def cached_entries(events: int, seed: int) -> list[tuple[int, bytes, bytes]]:
    path = Path(f"/tmp/ledger-fold-{events}-{seed}.pickle")
    if path.exists():
        return pickle.loads(path.read_bytes())  # noqa: S301 (our own file)
    entries = fixed_entries(events, seed)
    path.write_bytes(pickle.dumps(entries))
    return entries


def batches(entries: list[tuple[int, bytes, bytes]], size: int) -> list[list[Incoming]]:
    """The entries as the projector receives them: per partition offsets, one append time each."""
    offsets = [0] * PARTITIONS
    out: list[list[Incoming]] = []
    for at in range(0, len(entries), size):
        batch = []
        for partition, key, value in entries[at:at + size]:
            ms = int((EPOCH + timedelta(milliseconds=at)).timestamp() * 1000)
            batch.append(Incoming(partition, offsets[partition], key, value, ms))
            offsets[partition] += 1
        out.append(batch)
    return out


def fold_all(folder: Folder, work: list[list[Incoming]], keep: bool = False) -> list[Ops]:
    """Fold batch after batch, the states carried as JSON text between batches, as the database does."""
    states: dict[str, tuple[int, str]] = {}
    kept: list[Ops] = []
    for batch in work:
        keys = {m.key.decode() for m in batch if m.key is not None}
        loaded = Loaded({k: (states[k][0], state_from_json(states[k][1])) for k in keys if k in states}, set())
        ops = folder.fold(batch, loaded)
        states.update(ops.states)
        if keep:
            kept.append(ops)
    return kept


# The jsonb columns (by position in the row tuples): PostgreSQL keeps their value, not their text, so
# the digest compares them as values; every other column (entity_state.state is text) byte for byte.
# The ledger copy's record (bytes) and rules versions (its last two columns) count as one value, the
# record as the history shows it (`shown_record`): the value of the jsonb payload the copy held before
# it kept the record's bytes, so the digest is the one from before.
JSONB = {"ledger_copy": (), "entities": (9, 15), "publicity_inserts": (4,)}


def _canonical(row: tuple[Any, ...], positions: tuple[int, ...]) -> tuple[Any, ...]:
    if isinstance(row[-2], bytes):  # a ledger copy row
        shown = shown_record(row[-2], None if row[-1] is None else json.loads(row[-1]))
        row = (*row[:-2], json.dumps(shown))
        positions = (len(row) - 1,)
    return tuple(json.dumps(json.loads(v), sort_keys=True, ensure_ascii=False) if i in positions else v
                 for i, v in enumerate(row))


def digest(all_ops: list[Ops]) -> str:
    """SHA-256 over every row operation of every batch, in order."""
    h = hashlib.sha256()
    for ops in all_ops:
        for name in ("ledger_copy", "states", "entities", "list_inserts", "list_updates", "publicity_inserts",
                     "publicity_updates", "deadlines", "quarantine", "held", "positions", "applied", "skipped"):
            value = getattr(ops, name)
            if name in JSONB:
                rows = value.values() if isinstance(value, dict) else value
                value = [_canonical(tuple(r), JSONB[name]) for r in rows]
            h.update(name.encode() + repr(sorted(value.items()) if isinstance(value, dict) else value).encode())
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.fold", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=50_000, help="entries in the fixed input (default 50,000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--batch", type=int, default=5000, help="records per batch, as the projector (default 5,000)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds; the best is reported (default 3)")
    p.add_argument("--profile", action="store_true", help="also one round under cProfile")
    p.add_argument("--top", type=int, default=30, help="functions listed by the profile")
    a = p.parse_args()

    print(f"[fold] input: {a.events:,} entries, seed {a.seed} (built once, then cached in /tmp) ...",
          file=sys.stderr, flush=True)
    entries = cached_entries(a.events, a.seed)
    work = batches(entries, a.batch)
    rules = loader.load()
    folder = Folder(rules)
    gc.collect()
    gc.freeze()
    out = digest(fold_all(folder, work, keep=True))
    times = []
    for _ in range(a.rounds):
        t0 = time.process_time()
        fold_all(folder, work)
        times.append(time.process_time() - t0)
    best = min(times)
    print(f"fold of {len(entries):,} entries in batches of {a.batch:,}: best {best:.2f} s CPU of {a.rounds} "
          f"({', '.join(f'{t:.2f}' for t in times)}) = {best / len(entries) * 1e6:.1f} us CPU per event = "
          f"{len(entries) / best:,.0f} events per CPU second")
    print(f"output digest {out}")
    if a.profile:
        prof = cProfile.Profile()
        prof.enable()
        fold_all(folder, work)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(a.top)
        print(buf.getvalue())


if __name__ == "__main__":
    main()
