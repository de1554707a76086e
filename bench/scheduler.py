"""Expiry scheduler catch-up and /trigger latency on a running stack (ops/stack up).

    PYTHONPATH=. .venv/bin/python -m bench.scheduler [--due 5000] [--queries 2000]

1. Catch-up: submits N wage-arrears listings decided in 2021 (their 36-month period ended in 2024)
   for N new enterprises, waits for the projector, then times one scheduler pass (the real
   `Scheduler.run_pass`: the query of what is due, the subjects read from credit.events, the
   signed submissions and every outcome) and the time until the views show every item expired.
   The stack's own scheduler process is stopped for the measurement (so it does not take part)
   and started again afterwards.
2. Trigger: GET /trigger for those entities and for as many still-listed ones, one client, one
   request at a time, over HTTP: p50 / p95 / p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import date

import aiohttp
import psycopg

from ledger.client import submit_as_departments
from ledger.platform import config, logs
from ops import root, workload
from ops import stack as ops_stack


async def _wait_views(s: config.Settings, sql: str, want: int, timeout: float = 600) -> float:
    started = time.perf_counter()
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        while time.perf_counter() - started < timeout:
            if conn.execute(sql).fetchone()[0] >= want:  # type: ignore[index]
                return time.perf_counter() - started
            await asyncio.sleep(0.1)
    raise SystemExit(f"the views did not get there within {timeout} s")


def _percentiles(lat: list[float]) -> str:
    lat.sort()
    return " ".join(f"p{q} {lat[min(len(lat) - 1, int(len(lat) * q / 100))]:.2f} ms" for q in (50, 95, 99))


async def main(n: int, queries: int) -> None:
    logs.configure("WARNING")  # one log line per expiry would drown the figures
    s = config.load()
    rng = random.Random(time.time_ns())
    tag = rng.randrange(10**6)
    firms = workload.subjects(rng, 2 * n, persons_share=0.0)
    old = [workload.wage_listed(f, f"许人社欠薪〔2021〕B{tag}-{i}号", date(2021, 3, 1 + i % 28))
           for i, f in enumerate(firms[:n])]
    listed = [workload.debtor_listed(f, f"（2026）豫10执B{tag}-{i}号", date(2026, 10, 1)) for i, f in enumerate(firms[n:])]
    t = time.perf_counter()
    outs = await submit_as_departments(s, old + listed, timeout=600)
    assert all(o["status"] == "ACCEPTED" for o in outs), [o for o in outs if o["status"] != "ACCEPTED"][:3]
    print(f"submitted {len(outs)} listings in {time.perf_counter() - t:.1f} s")
    ids = [f"uscc:{f.id}" for f in firms]
    marker = f"%B{tag}-%"
    await _wait_views(s, f"select count(*) from views.list_entries where ref like '{marker}'", 2 * n)

    svc = ops_stack.Service(s, "scheduler")
    was_running = svc.pid() is not None
    svc.stop()
    try:
        sched = root.scheduler_service(s, root.CLOCK.today, batch_size=500)
        t = time.perf_counter()
        result = await sched.run_pass()
        pass_s = time.perf_counter() - t
        seen_s = await _wait_views(s, f"select count(*) from views.list_entries where ref like '{marker}' "
                                      "and status = 'expired'", n)
    finally:
        if was_running:
            svc.start()
    print(f"catch-up pass: {result.due} due ({n} of this run), outcomes {dict(result.outcomes or {})}, "
          f"{pass_s:.2f} s = {result.due / pass_s:.0f} expiries/s; views show all {n} expired "
          f"{seen_s:.2f} s after the pass")

    base = f"http://127.0.0.1:{s.api_port}/trigger"
    sample = [rng.choice(ids) for _ in range(queries)]
    async with aiohttp.ClientSession() as http:
        for e in sample[:200]:  # warm-up
            async with http.get(base, params={"entity": e, "action": "bid-government-procurement"}) as r:
                await r.read()
        lat = []
        decisions: dict[str, int] = {}
        for e in sample:
            t = time.perf_counter()
            async with http.get(base, params={"entity": e, "action": "bid-government-procurement"}) as r:
                body = await r.json()
            lat.append((time.perf_counter() - t) * 1000)
            decisions[body["decision"]] = decisions.get(body["decision"], 0) + 1
    print(f"GET /trigger x{queries} (sequential, one client, HTTP): {_percentiles(lat)}; decisions {decisions}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--due", type=int, default=5000, help="old listings to expire (default 5000)")
    p.add_argument("--queries", type=int, default=2000, help="trigger requests to time (default 2000)")
    a = p.parse_args()
    asyncio.run(main(a.due, a.queries))
