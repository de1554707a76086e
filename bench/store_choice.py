"""RocksDB (rocksdict) against LMDB (lmdb) as the sequencer's on-disk event-id index: the same keys
and values as ledger/sequencer/store.py writes (event id -> packed Seen), each engine configured as
the sequencer would run it, each phase in a fresh process so that the resident memory is its own.

Phases per engine: build N ids in batches of 10,000 (fast load), then in a NEW process: open, RSS,
point gets of present ids, of absent ids, batched writes of 2,000 (a sequencer batch) and the RSS at
the end. The engine chosen is written down in docs/architecture.md, the figures in docs/benchmarks.md.

Run: PYTHONPATH=. .venv/bin/python -m bench.store_choice [--ids 10000000] [--engines rocksdb,lmdb]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procfs import rss_mib

BUILD_BATCH = 10_000
LOOKUPS = 200_000
WRITE_BATCH = 2_000
WRITES = 200_000


def key(i: int) -> bytes:
    return b"i" + f"{i:08x}-5f3c-4e0e-9a51-{i * 7919 % 10**12:012d}".encode()  # uuid-like, 37 bytes


def value(i: int) -> bytes:
    h = hashlib.blake2b(i.to_bytes(8, "big"), digest_size=32).digest()
    return h + struct.pack(">qqi", 1 + i % 50, i, 0) + f"uscc:91411000{i % 200_000:010d}".encode()


class Rocks:
    def __init__(self, path: Path, bulk: bool = False) -> None:
        from rocksdict import BlockBasedOptions, Cache, DBCompressionType, Options, Rdict, WriteOptions

        self._wb_cls = __import__("rocksdict").WriteBatch
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(32 * 2**20))
        table.set_bloom_filter(10, False)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        opts.set_block_based_table_factory(table)
        opts.set_write_buffer_size(16 * 2**20)
        opts.set_max_write_buffer_number(2)
        opts.set_compression_type(DBCompressionType.lz4())
        opts.set_max_background_jobs(2)
        opts.set_max_open_files(512)
        if bulk:
            opts.set_write_buffer_size(64 * 2**20)
        self.db = Rdict(str(path), opts)
        wo = WriteOptions()
        wo.disable_wal = bulk
        self.db.set_write_options(wo)

    def get(self, k: bytes) -> bytes | None:
        return self.db.get(k)

    def write(self, items: list[tuple[bytes, bytes]]) -> None:
        wb = self._wb_cls(raw_mode=True)
        for k, v in items:
            wb.put(k, v)
        self.db.write(wb)

    def close(self) -> None:
        self.db.close()


class Lmdb:
    def __init__(self, path: Path, bulk: bool = False) -> None:
        import lmdb

        path.mkdir(parents=True, exist_ok=True)
        # readahead off: random point reads must not pull neighbouring pages into the mapping
        self.env = lmdb.open(str(path), map_size=64 * 2**30, readahead=False, sync=False, metasync=False,
                             max_dbs=1, writemap=False)

    def get(self, k: bytes) -> bytes | None:
        with self.env.begin() as txn:
            return txn.get(k)

    def write(self, items: list[tuple[bytes, bytes]]) -> None:
        with self.env.begin(write=True) as txn:
            for k, v in items:
                txn.put(k, v)

    def close(self) -> None:
        self.env.sync(True)
        self.env.close()


ENGINES: dict[str, Any] = {"rocksdb": Rocks, "lmdb": Lmdb}


def build(engine: str, path: Path, n: int) -> dict[str, float]:
    db = ENGINES[engine](path, bulk=True)
    t = time.perf_counter()
    for start in range(0, n, BUILD_BATCH):
        db.write([(key(i), value(i)) for i in range(start, min(n, start + BUILD_BATCH))])
    db.close()
    s = time.perf_counter() - t
    return {"build_s": s, "build_per_s": n / s}


def measure(engine: str, path: Path, n: int) -> dict[str, float]:
    out: dict[str, float] = {"rss_start_mib": rss_mib()}
    t = time.perf_counter()
    db = ENGINES[engine](path)
    out["open_s"] = time.perf_counter() - t
    out["rss_open_mib"] = rss_mib()
    rng = random.Random(1)
    present = [rng.randrange(n) for _ in range(LOOKUPS)]  # (ints: the keys are made in the loop)
    absent = [n + rng.randrange(10 * n) for _ in range(LOOKUPS)]
    t = time.perf_counter()
    assert all(db.get(key(i)) is not None for i in present)
    out["get_present_per_s"] = LOOKUPS / (time.perf_counter() - t)
    t = time.perf_counter()
    assert all(db.get(key(i)) is None for i in absent)
    out["get_absent_per_s"] = LOOKUPS / (time.perf_counter() - t)
    out["rss_after_gets_mib"] = rss_mib()
    t = time.perf_counter()
    for start in range(n, n + WRITES, WRITE_BATCH):
        db.write([(key(i), value(i)) for i in range(start, start + WRITE_BATCH)])
    out["put_per_s"] = WRITES / (time.perf_counter() - t)
    out["rss_end_mib"] = rss_mib()
    db.close()
    out["disk_mib"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.store_choice", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", type=int, default=10_000_000)
    p.add_argument("--engines", default="rocksdb,lmdb")
    p.add_argument("--dir", type=Path, default=None, help="where the stores are built (default: a temporary dir)")
    p.add_argument("--phase", choices=["build", "measure"], help=argparse.SUPPRESS)
    p.add_argument("--engine", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        fn = build if args.phase == "build" else measure
        print(json.dumps(fn(args.engine, args.dir, args.ids)))
        return
    base = Path(tempfile.mkdtemp(prefix="store-choice-", dir=args.dir))
    try:
        for engine in args.engines.split(","):
            figures: dict[str, float] = {}
            for phase in ("build", "measure"):
                r = subprocess.run([sys.executable, "-m", "bench.store_choice", "--phase", phase, "--engine", engine,
                                    "--dir", str(base / engine), "--ids", str(args.ids)],
                                   check=True, capture_output=True, text=True)
                figures.update(json.loads(r.stdout.strip().splitlines()[-1]))
            print(f"{engine} ({args.ids:,} ids): " + ", ".join(
                f"{k}={v:,.2f}" if v < 100 else f"{k}={v:,.0f}" for k, v in figures.items()), flush=True)
            shutil.rmtree(base / engine, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
