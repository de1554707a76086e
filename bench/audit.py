"""Benchmark: the auditor's reads with 10 million events in the ledger copy, and the notary's trees.

    PYTHONPATH=. .venv/bin/python -m bench.audit [--samples 2000] [--leaves 10000000] [--proofs 2000]
                                                 [--skip-reads] [--skip-merkle] [--keep-tree] [--live N]

1. History and as-of (needs the 10-million-event load of bench/reads.py in schema bench_reads:
   `python -m bench.reads --keep` once, then this reuses it): the real functions
   projections.audit.reads.history (every event of an entity from the ledger copy, by version) and
   projections.audit.reads.as_of (the same rows folded with evolve up to a valid date and a ledger time)
   on --samples random entities never read before by this run (cold: not in shared_buffers; the
   OS page cache is not dropped), then again on the same entities (warm). One connection, like the
   audit CLI. p50 / p99 / max in ms. Every synthetic row's record is one real penalty record's bytes,
   so evolve cannot apply some types (they are reported not_applicable): the fold's work per event
   is still done. The Kafka side of the history check is not part of this figure.
2. The notary's tree at --leaves leaves (synthetic 700-byte records): PartitionTree.append in
   memory (leaf hashing, frontier, nodes at levels 4, 8 ...), and the COPY of leaves and nodes into
   notary.leaves / notary.nodes, as the notary writes them; then inclusion proofs (random leaf of
   the full tree) and consistency proofs (random older size) from PostgreSQL through
   projections.audit.reads (two-pass plan, two queries), and their verification with ledger/audit/verify.py;
   head signing and checking. The tree is built under partition number 1000 of the notary's tables
   (the ledger has partitions 0-3) and deleted at the end unless --keep-tree.
3. With --live N: the history of N entities of the running stack's live views checked against
   the Kafka records (projections.audit.reads.history + LogReader.records + log_reader.compare, with one
   reader kept open as the query API does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.reads import SCHEMA, entity_id, loaded_entities
from ledger.audit import merkle, notary
from ledger.audit.log_reader import LogReader, compare
from ledger.audit.verify import check_head, root_from_inclusion_proof, verify_consistency
from ledger.platform import config, signing
from ledger.platform.kafka_access import AUDITOR, access
from projections.audit import reads as audit

BENCH_PARTITION = 1000


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"n": len(s), "p50": statistics.median(s), "p99": s[min(len(s) - 1, int(len(s) * 0.99))], "max": s[-1],
            "per_s": len(s) / (sum(s) / 1000) if sum(s) else 0.0}


async def _timed(calls: list[Callable[[], Awaitable[Any]]]) -> tuple[list[float], list[Any]]:
    ms, out = [], []
    for call in calls:
        t0 = time.perf_counter()
        out.append(await call())
        ms.append((time.perf_counter() - t0) * 1000)
    return ms, out


async def reads(s: config.Settings, samples: int, seed: int) -> list[tuple[str, str, dict[str, float], float]]:
    entities = loaded_entities(s)
    if not entities:
        raise SystemExit(f"no complete load in schema {SCHEMA}: run `python -m bench.reads --keep` first")
    rng = random.Random(seed)
    picked = rng.sample(range(1, entities + 1), samples)
    conn = await psycopg.AsyncConnection.connect(s.pg_dsn, autocommit=True, prepare_threshold=None,
                                                 options=f"-c search_path={SCHEMA}")
    results = []
    try:
        for op in ("history", "as-of"):
            ids = [entity_id(i) for i in (picked[: samples // 2] if op == "history" else picked[samples // 2:])]

            def call(e: str, op: str = op) -> Callable[[], Awaitable[Any]]:
                if op == "history":
                    return lambda: audit.history(conn, e)
                return lambda: audit.as_of(conn, e, date(2021, 6, 30), datetime(2022, 1, 1, tzinfo=UTC))

            for state in ("cold", "warm"):
                ms, out = await _timed([call(e) for e in ids])
                rows = statistics.mean(len(x) if op == "history" else x[1] for x in out)
                results.append((state, op, _stats(ms), rows))
                _say(f"{state} {op}: p50 {results[-1][2]['p50']:.2f} ms, p99 {results[-1][2]['p99']:.2f} ms")
    finally:
        await conn.close()
    return results


async def live_history(s: config.Settings, n: int, seed: int) -> tuple[dict[str, float], dict[str, float], int]:
    """History checked against the log, as the /audit history route does it (one Kafka reader kept
    open), on the live views of the running stack: cold (first read) and warm."""
    conn = await psycopg.AsyncConnection.connect(s.pg_dsn, autocommit=True, prepare_threshold=None,
                                                 options="-c search_path=views")
    reader = LogReader(access(s, AUDITOR))
    try:
        ids = [r[0] for r in await (await conn.execute(
            "select entity_id from entities order by md5(entity_id || %s) limit %s", (str(seed), n))).fetchall()]
        total = (await (await conn.execute("select count(*) from ledger_copy")).fetchone())[0]  # type: ignore[index]

        async def check(e: str) -> int:
            rows = await audit.history(conn, e)
            p, offsets = rows[0]["partition"], [r["offset"] for r in rows]
            problems = compare(e, rows, await reader.records(p, offsets), await audit.leaves_at(conn, p, offsets))
            assert problems == [], problems
            return len(rows)

        cold, _ = await _timed([lambda e=e: check(e) for e in ids])
        warm, _ = await _timed([lambda e=e: check(e) for e in ids])
        return _stats(cold), _stats(warm), total
    finally:
        await reader.close()
        await conn.close()


def build_tree(s: config.Settings, leaves: int) -> dict[str, Any]:
    priv, pub = signing.new_keypair()
    signer = notary.Signer(priv, pub)
    tree = notary.PartitionTree(BENCH_PARTITION, merkle.Frontier(), 0, 0, 0)
    pad = os.urandom(692)
    chunk = 200_000
    t_append = t_copy = 0.0
    with psycopg.connect(s.pg_dsn) as conn:
        conn.execute("delete from notary.leaves where partition = %s", (BENCH_PARTITION,))
        conn.execute("delete from notary.nodes where partition = %s", (BENCH_PARTITION,))
        conn.execute("delete from notary.heads where partition = %s", (BENCH_PARTITION,))
        conn.commit()
        for start in range(0, leaves, chunk):
            t0 = time.perf_counter()
            out = tree.append(((i, pad + i.to_bytes(8, "big")) for i in range(start, min(leaves, start + chunk))),
                              signer, every=1_000_000, interval_s=1e9)
            t1 = time.perf_counter()
            with conn.cursor() as cur:
                with cur.copy("copy notary.leaves (partition, leaf_index, kafka_offset, leaf_hash) from stdin") as cp:
                    for row in out.leaves:
                        cp.write_row((BENCH_PARTITION, *row))
                with cur.copy("copy notary.nodes (partition, level, node_index, hash) from stdin") as cp:
                    for row in out.nodes:
                        cp.write_row((BENCH_PARTITION, *row))
                for h in out.heads:
                    cur.execute("insert into notary.heads (partition, tree_size, root, timestamp_ms, last_offset, key_id, "
                                "signature, published) values (%s, %s, %s, %s, %s, %s, %s, true)",
                                (h.partition, h.tree_size, h.root, h.timestamp_ms, h.last_offset, h.key_id, h.signature))
            conn.commit()
            t2 = time.perf_counter()
            t_append, t_copy = t_append + t1 - t0, t_copy + t2 - t1
            if (start // chunk) % 10 == 0:
                _say(f"  tree: {start + chunk:,} leaves; append {t_append:.0f} s, COPY {t_copy:.0f} s")
        conn.execute("analyze notary.leaves")
        conn.execute("analyze notary.nodes")
        conn.commit()
    return {"append_s": t_append, "copy_s": t_copy, "append_per_s": leaves / t_append, "copy_per_s": leaves / t_copy,
            "root": tree.frontier.root().hex(), "pub": pub}


async def proofs(s: config.Settings, n: int, count: int, seed: int, pub: str, root: bytes) -> dict[str, Any]:
    rng = random.Random(seed)
    conn = await psycopg.AsyncConnection.connect(s.pg_dsn, autocommit=True, prepare_threshold=None)
    out: dict[str, Any] = {}
    try:
        assert await audit.root_at(conn, BENCH_PARTITION, n) == root
        idx = [rng.randrange(n) for _ in range(count)]
        ms, paths = await _timed([lambda m=m: audit.inclusion_proof(conn, BENCH_PARTITION, m, n) for m in idx])
        out["inclusion"] = _stats(ms)
        leaves = {i: bytes(h) for i, h in await (await conn.execute(
            "select leaf_index, leaf_hash from notary.leaves where partition = %s and leaf_index = any(%s)",
            (BENCH_PARTITION, idx))).fetchall()}
        t0 = time.perf_counter()
        for m, path in zip(idx, paths, strict=True):
            assert root_from_inclusion_proof(m, n, leaves[m], path) == root
        out["inclusion_verify_per_s"] = count / (time.perf_counter() - t0)
        sizes = [rng.randrange(1, n) for _ in range(count)]
        ms, cproofs = await _timed([lambda m=m: audit.consistency_proof(conn, BENCH_PARTITION, m, n) for m in sizes])
        out["consistency"] = _stats(ms)
        old_roots = [await audit.root_at(conn, BENCH_PARTITION, m) for m in sizes]
        t0 = time.perf_counter()
        for m, old, proof in zip(sizes, old_roots, cproofs, strict=True):
            verify_consistency(m, n, old, root, proof)
        out["consistency_verify_per_s"] = count / (time.perf_counter() - t0)
        head = await audit.latest_head(conn, BENCH_PARTITION)
        assert head is not None
        t0 = time.perf_counter()
        for _ in range(2000):
            check_head(head.to_json(), pub)
        out["head_verify_per_s"] = 2000 / (time.perf_counter() - t0)
    finally:
        await conn.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=2000, help="entities per read pass (half history, half as-of)")
    p.add_argument("--leaves", type=int, default=10_000_000, help="leaves of the synthetic tree")
    p.add_argument("--proofs", type=int, default=2000, help="proofs of each kind")
    p.add_argument("--seed", type=int, default=None, help="workload seed (default: a new one, printed)")
    p.add_argument("--skip-reads", action="store_true")
    p.add_argument("--skip-merkle", action="store_true")
    p.add_argument("--keep-tree", action="store_true")
    p.add_argument("--live", type=int, default=0, metavar="N",
                   help="also: history checked against Kafka for N entities of the running stack's live views")
    a = p.parse_args()
    a.seed = a.seed if a.seed is not None else random.SystemRandom().randrange(10**9)
    print(f"seed {a.seed} (replay with --seed {a.seed})")
    s = config.load()
    started = datetime.now(UTC)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    print(f"Audit benchmark, started {started:%a %d %b %Y %H:%M:%S} UTC, load average {' '.join(load_before)}")
    print(f"machine {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"Python {platform.python_version()}")
    if not a.skip_reads:
        print(f"{'state':<6} {'operation':<8} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'calls/s':>8} "
              f"{'rows':>6}")
        for state, op, st, rows in asyncio.run(reads(s, a.samples, a.seed)):
            print(f"{state:<6} {op:<8} {st['n']:>5} {st['p50']:>8.2f} {st['p99']:>8.2f} {st['max']:>8.1f} "
                  f"{st['per_s']:>8.0f} {rows:>6.1f}")
    if a.live:
        cold, warm, total = asyncio.run(live_history(s, a.live, a.seed))
        for state, st in (("cold", cold), ("warm", warm)):
            print(f"history checked against the Kafka log ({total:,} events in the live ledger), {state}: "
                  f"p50 {st['p50']:.2f} ms, p99 {st['p99']:.2f} ms, max {st['max']:.1f} ms ({st['n']} entities)")
    if not a.skip_merkle:
        _say(f"building a tree of {a.leaves:,} leaves ...")
        built = build_tree(s, a.leaves)
        print(f"tree of {a.leaves:,} leaves: append in memory {built['append_per_s']:,.0f} leaves/s "
              f"({built['append_s']:.0f} s); COPY into notary.leaves/nodes {built['copy_per_s']:,.0f} leaves/s "
              f"({built['copy_s']:.0f} s)")
        try:
            r = asyncio.run(proofs(s, a.leaves, a.proofs, a.seed, str(built["pub"]), bytes.fromhex(str(built["root"]))))
            for kind in ("inclusion", "consistency"):
                st = r[kind]
                print(f"{kind} proof from PostgreSQL at size {a.leaves:,}: p50 {st['p50']:.2f} ms, p99 {st['p99']:.2f} "
                      f"ms, max {st['max']:.1f} ms, {st['per_s']:.0f} proofs/s (one connection)")
            print(f"verification: inclusion {r['inclusion_verify_per_s']:,.0f}/s, consistency walk "
                  f"{r['consistency_verify_per_s']:,.0f}/s, signed head {r['head_verify_per_s']:,.0f}/s")
        finally:
            if not a.keep_tree:
                with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
                    for t in ("leaves", "nodes", "heads"):
                        conn.execute(f"delete from notary.{t} where partition = %s", (BENCH_PARTITION,))
    print(f"finished {datetime.now(UTC):%H:%M:%S} UTC, load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
