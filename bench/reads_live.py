"""Entity profile and history read latency on the live views of a running stack (warm, one client).

    PYTHONPATH=. .venv/bin/python -m bench.reads_live

Samples 2,000 random entities of `views.entities`, warms up on 200 of them, then times the real
query functions (projections/queries.py) one call at a time and prints p50/p95/p99 with the
size of the views. bench/reads.py measures the same at 10 million events on a bulk-loaded schema.
"""

import asyncio
import random
import time

import psycopg

from ledger import config
from projections import queries

s = config.load()
async def main():
    conn = await psycopg.AsyncConnection.connect(s.pg_dsn, options="-c search_path=views", autocommit=True, prepare_threshold=None)
    cur = await conn.execute("select entity_id from entities")
    ids = [r[0] for r in await cur.fetchall()]
    n_ledger = (await (await conn.execute("select count(*) from ledger_copy")).fetchone())[0]
    sample = random.Random(7).sample(ids, 2000)
    prof, hist = queries.entity_profile, queries.entity_history
    for label, fn in (("profile", lambda e: prof(conn, e)), ("history", lambda e: hist(conn, e, 1, 50))):
        for e in sample[:200]:  # warm-up
            await fn(e)
        lat = []
        for e in sample:
            t = time.perf_counter()
            await fn(e)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        print(f"{label}: {len(ids)} entities, {n_ledger} ledger rows: p50 {lat[len(lat)//2]:.2f} ms, p95 {lat[int(len(lat)*0.95)]:.2f} ms, p99 {lat[int(len(lat)*0.99)]:.2f} ms")
if __name__ == "__main__":
    asyncio.run(main())
