"""Entity profile and history read latency on the live views of a running stack, 1 and 8 clients.

    PYTHONPATH=. .venv/bin/python -m bench.reads_live [--samples 2000] [--clients 1 8] [--seed 7]

Where bench/reads.py bulk-loads a synthetic schema, this reads whatever the projector (or a
rebuild) put in the live views: e.g. after `bench.rebuild --events 10000000`, the views of 10
million projected ledger entries. It samples --samples random entities of `views.entities` and
times the real query functions of projections/queries.py (one call at a time, one connection
configured like the query API's: autocommit, search_path, no prepared statements):

* profile: `entity_profile(conn, id)` (entities row, its list entries and publicity records);
* history page 1: `entity_history(conn, id, 1, 50)`;
* history later page: `entity_history(conn, id, last page, 50)` of sampled entities with more than
  50 events (as many as the views hold, up to --samples).

Each operation runs three passes over the same entities: "first read" (no earlier read by this
run; the OS page cache is not dropped, so this is "not yet in shared_buffers"), then a warm-up
pass (not counted), then "warm"; the first read and the warm-up with one client, the warm pass
once for each number of --clients: that many clients at once (asyncio in this process, a
connection each, closed loop: each sends its next call when the last is answered), the sample
dealt out among them. It prints p50/p95/p99/max per pass, the size of the views and the load
average before and after (other work on the machine shares the CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from ledger.platform import config
from projections import queries

PAGE = 50


def quantile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)]


async def timed(call: Callable[[str], Awaitable[Any]], ids: list[str]) -> list[float]:
    out = []
    for e in ids:
        t0 = time.perf_counter()
        if await call(e) is None:
            raise RuntimeError(f"no answer for {e}: the views changed under the benchmark")
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def timed_by(conns: list[psycopg.AsyncConnection[Any]],
                   call: Callable[[psycopg.AsyncConnection[Any], str], Awaitable[Any]], ids: list[str]) -> list[float]:
    """`ids` dealt out to the connections, each a client timing its own calls one after the other."""
    shares = [ids[i::len(conns)] for i in range(len(conns))]
    done = await asyncio.gather(*(timed(lambda e, c=c: call(c, e), share) for c, share in zip(conns, shares, strict=True)))
    return [x for lat in done for x in lat]


async def _connect(s: config.Settings) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(s.pg_dsn, options="-c search_path=views", autocommit=True,
                                                 prepare_threshold=None)


async def main(samples: int, seed: int, clients: list[int]) -> None:
    s = config.load()
    conns = [await _connect(s) for _ in range(max(clients))]
    conn = conns[0]
    ids = [r[0] for r in await (await conn.execute("select entity_id from entities")).fetchall()]
    ledger_rows = (await (await conn.execute("select count(*) from ledger_copy")).fetchone())[0]  # type: ignore[index]
    heavy = await (await conn.execute(
        "select entity_id, max(entity_version) from ledger_copy where entity_version > %s group by entity_id",
        (PAGE,))).fetchall()
    rng = random.Random(seed)
    sample = rng.sample(ids, min(samples, len(ids)))
    heavy_sample = rng.sample(heavy, min(samples, len(heavy)))
    last_page = {e: math.ceil(n / PAGE) for e, n in heavy_sample}
    print(f"views: {len(ids):,} entities, {ledger_rows:,} ledger entries, {len(heavy):,} entities with more than "
          f"{PAGE} events; load average before {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ops: list[tuple[str, Callable[[psycopg.AsyncConnection[Any], str], Awaitable[Any]], list[str]]] = [
        ("profile", lambda c, e: queries.entity_profile(c, e), sample),
        ("history page 1", lambda c, e: queries.entity_history(c, e, 1, PAGE), sample),
        ("history later page", lambda c, e: queries.entity_history(c, e, last_page[e], PAGE),
         [e for e, _ in heavy_sample]),
    ]
    print(f"{'operation':<20} {'pass':<11} {'clients':>7} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8}")
    for name, call, todo in ops:
        if not todo:
            print(f"{name:<20} (no entity for it)")
            continue
        passes = [("first read", 1), ("warm-up", 1), *(("warm", n) for n in clients)]
        for label, n in passes:
            lat = await timed_by(conns[:n], call, todo)
            if label != "warm-up":
                print(f"{name:<20} {label:<11} {n:>7} {len(lat):>6} {quantile(lat, .5):>8.2f} "
                      f"{quantile(lat, .95):>8.2f} {quantile(lat, .99):>8.2f} {max(lat):>8.1f}")
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for c in conns:
        await c.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.reads_live", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=2000, help="entities per operation (default 2000)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8],
                   help="concurrent clients of the warm pass, one pass each (default: 1 8)")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    asyncio.run(main(a.samples, a.seed, a.clients))
