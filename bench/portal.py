"""Benchmark: the public portal's entity and list pages under many concurrent clients.

    PYTHONPATH=. .venv/bin/python -m bench.portal [--clients 200] [--duration 30] [--warmup 5]
                                                  [--entities 2000] [--seed 7]

Against a running stack (ops/demo or ops/stack up; the portal at LEDGER_PORTAL_PORT). The entity
ids are taken from the views (views.entities, up to --entities of them); the list pages are
/lists with the filters a visitor uses (kind, colour, status, department, category, a date range)
and pages 1-5 of each. --clients asyncio clients (one aiohttp connection each, one process) each
loop for --duration seconds: request a page, read the whole body, check the status is 200, take
the next; half the clients read entity pages, half list pages. A latency is one request, from
sending to the last byte. After a --warmup pass (not counted) it prints per page kind: requests,
errors, req/s, p50, p90, p99 and max, with the load average before and after (`uptime`) since
the machine's other work shares the CPU. The client runs on the same machine as the portal,
PostgreSQL and the rest of the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from typing import Any

import aiohttp
import psycopg

from ledger.platform import config

LIST_QUERIES = (
    {}, {"colour": "black", "status": "active"}, {"colour": "red"}, {"kind": "dishonest_debtor"},
    {"kind": "procurement_ban", "department": "xc-finance"}, {"category": "enterprise", "status": "delisted"},
    {"from": "2025-01-01", "to": "2025-12-31"}, {"kind": "wage_arrears", "status": "delisted"},
)


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def entity_ids(settings: config.Settings, limit: int) -> list[str]:
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        rows = conn.execute("select entity_id from views.entities order by md5(entity_id) limit %s",
                            (limit,)).fetchall()
    return [r[0] for r in rows]


async def client(session: aiohttp.ClientSession, base: str, kind: str, ids: list[str], until: float,
                 rng: random.Random, out: dict[str, list[float]], errors: dict[str, int]) -> None:
    while time.monotonic() < until:
        if kind == "entity":
            url, params = f"{base}/entity/{rng.choice(ids)}", None
        else:
            url, params = f"{base}/lists", {**rng.choice(LIST_QUERIES), "page": str(rng.randint(1, 5))}
        started = time.monotonic()
        try:
            async with session.get(url, params=params) as r:
                await r.read()
                ok = r.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            out[kind].append(time.monotonic() - started)
        else:
            errors[kind] += 1


async def run_pass(base: str, ids: list[str], clients: int, seconds: float, seed: int) -> tuple[dict[str, Any], float]:
    out: dict[str, list[float]] = {"entity": [], "list": []}
    errors = {"entity": 0, "list": 0}
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(*(client(session, base, "entity" if i % 2 == 0 else "list", ids, until,
                                      random.Random(seed * 1000 + i), out, errors) for i in range(clients)))
        elapsed = time.monotonic() - started
    return {k: (sorted(v), errors[k]) for k, v in out.items()}, elapsed


async def main_async(args: argparse.Namespace) -> int:
    settings = config.load()
    base = f"http://127.0.0.1:{settings.portal_port}"
    ids = entity_ids(settings, args.entities)
    if not ids:
        print("no entities in the views: run ops/demo first")
        return 1
    print(f"portal {base}: {len(ids)} entities from the views; {args.clients} clients "
          f"({args.clients // 2 + args.clients % 2} on entity pages, {args.clients // 2} on list pages)")
    print(f"warm-up {args.warmup:g} s ...", flush=True)
    await run_pass(base, ids, args.clients, args.warmup, args.seed + 1)
    before = load_average()
    print(f"measuring {args.duration:g} s (load average before: {before}) ...", flush=True)
    results, elapsed = await run_pass(base, ids, args.clients, args.duration, args.seed)
    after = load_average()
    print(f"{'page':<8} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8}")
    total = 0
    for kind, (lat, errs) in results.items():
        total += len(lat)
        print(f"{kind:<8} {len(lat):>9} {errs:>7} {len(lat) / elapsed:>8.1f} {percentile(lat, 50) * 1000:>8.1f} "
              f"{percentile(lat, 90) * 1000:>8.1f} {percentile(lat, 99) * 1000:>8.1f} "
              f"{(lat[-1] if lat else float('nan')) * 1000:>8.1f}")
    print(f"all      {total:>9} {'':>7} {total / elapsed:>8.1f}   over {elapsed:.1f} s; load average after: {after}")
    return 0


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.portal", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=200, help="concurrent clients (default 200)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds measured (default 30)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up, not counted (default 5)")
    p.add_argument("--entities", type=int, default=2000, help="entity ids taken from the views (default 2000)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the clients' choices (default 7)")
    raise SystemExit(asyncio.run(main_async(p.parse_args())))


if __name__ == "__main__":
    main()
