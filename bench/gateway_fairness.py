"""Benchmark: a fair gateway. One department floods, another's latency is measured, limits off and on.

    PYTHONPATH=. .venv/bin/python -m bench.gateway_fairness [--seconds 20] [--calm-rate 20]
        [--flood-clients 40] [--flood-batch 250]

Against the stack of the environment's settings (`python -m ops.stack up` first); only the sequencer
and the gateway run during the measurements (bench/quiet.py). Three runs of `--seconds` each:

  alone   the calm department (xc-samr) alone: single events POSTed to /v1/events (timeout=30) at a
          fixed open-loop rate (`--calm-rate`/s, each scheduled at t0 + i/rate whether or not earlier
          ones were answered; latency measured from the scheduled instant, so no coordinated omission)
  off     the same, while the flooding department (xc-tax) sends batches of `--flood-batch` events
          from `--flood-clients` clients as fast as it can (a 429 is retried after 0.1 s, ignoring
          Retry-After: a misbehaving client), with every limit lifted (gateway-limits.json "*": 0)
  on      the same flood under the settings' default limits (no limits file)

The limits are switched through LEDGER_KEYS_DIR/gateway-limits.json, which the gateway reads again
without a restart (the run waits past its re-read interval); the file the stack had is put back at
the end. Between runs it waits until the sequencer has judged everything submitted. The flood's
events (a pool resubmitted in turn: after the first pass they are answered DUPLICATE) and the calm
events (all new) are built before the clock starts. Reported per run: the calm department's p50, p99
and max and its answers by status, the flood's answers by status and events accepted per second,
the load average at the end of each run, and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench import quiet
from bench.gateway import Workload, _cpu_model, body, drained, load_average
from ledger.intake.gateway.limits import LIMITS_FILE
from ledger.platform import config

FLOOD, CALM = "xc-tax", "xc-samr"
RECHECK = 5.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000 if s else float("nan")


async def calm(session: aiohttp.ClientSession, url: str, token: str, bodies: list[bytes], rate: float,
               seconds: float) -> tuple[list[float], Counter[str]]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    t0 = time.perf_counter() + 0.2
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def one(i: int, data: bytes) -> None:
        due = t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        async with session.post(url + "/v1/events?timeout=30", data=data, headers=headers) as r:
            statuses[str(r.status)] += 1
            await r.read()
        latencies.append(time.perf_counter() - due)

    await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies[:int(rate * seconds)])))
    return latencies, statuses


async def flood(session: aiohttp.ClientSession, url: str, token: str, batches: list[bytes], clients: int,
                stop: asyncio.Event) -> tuple[Counter[str], int]:
    statuses: Counter[str] = Counter()
    accepted = [0]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def client(k: int) -> None:
        i = k
        while not stop.is_set():
            async with session.post(url + "/v1/events:batch?timeout=30", data=batches[i % len(batches)],
                                    headers=headers) as r:
                statuses[str(r.status)] += 1
                answer = await r.json(content_type=None)
            if r.status in (200, 202):
                accepted[0] += sum(answer.get("counts", {}).values())
                i += clients
            elif r.status == 429:
                await asyncio.sleep(0.1)

    await asyncio.gather(*(client(k) for k in range(clients)))
    return statuses, accepted[0]


async def limits(s: config.Settings, session: aiohttp.ClientSession, url: str, token: str, data: Any) -> None:
    path = s.keys_dir / LIMITS_FILE
    if data is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(json.dumps(data))
    await asyncio.sleep(RECHECK + 0.3)
    async with session.post(url + "/v1/events", data=b"{", headers={"Authorization": f"Bearer {token}"}) as r:
        await r.read()  # the request that makes the gateway look at the file


async def measure(a: argparse.Namespace) -> dict[str, Any]:
    s = config.load()
    url = f"http://127.0.0.1:{s.gateway_port}"
    tokens = {d: (s.keys_dir / f"{d}.token").read_text().strip() for d in (FLOOD, CALM)}
    w = Workload(int(time.monotonic() * 1000) % 100_000, 2000)
    n_calm = int(a.calm_rate * a.seconds)
    calm_bodies = [body(r) for _, r in w.make(n_calm * 3, CALM)]
    pool = [r for _, r in w.make(a.flood_clients * a.flood_batch * 2, FLOOD)]
    batches = [body(pool[i:i + a.flood_batch]) for i in range(0, len(pool), a.flood_batch)]
    saved = (s.keys_dir / LIMITS_FILE).read_bytes() if (s.keys_dir / LIMITS_FILE).exists() else None
    results: dict[str, Any] = {}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as session:
        try:
            for i, (run, lim) in enumerate((("alone", None), ("off", {"*": {"events_per_second": 0,
                                                                           "concurrent_requests": 0}}),
                                            ("on", None))):
                await limits(s, session, url, tokens[CALM], lim)
                await drained(s)
                stop = asyncio.Event()
                flooding = None if run == "alone" else asyncio.create_task(
                    flood(session, url, tokens[FLOOD], batches, a.flood_clients, stop))
                started = time.perf_counter()
                lat, st = await calm(session, url, tokens[CALM], calm_bodies[i * n_calm:], a.calm_rate, a.seconds)
                stop.set()
                f_st, f_acc = await flooding if flooding else (Counter(), 0)
                elapsed = time.perf_counter() - started
                results[run] = {"calm_p50_ms": pct(lat, 50), "calm_p99_ms": pct(lat, 99), "calm_max_ms": pct(lat, 100),
                                "calm_statuses": dict(st), "flood_statuses": dict(f_st),
                                "flood_events_per_s": f_acc / elapsed, "load": load_average()}
                print(run, results[run], flush=True)
        finally:
            path = s.keys_dir / LIMITS_FILE
            if saved is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(saved)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--calm-rate", type=float, default=20.0)
    p.add_argument("--flood-clients", type=int, default=40)
    p.add_argument("--flood-batch", type=int, default=250)
    a = p.parse_args()
    s = config.load()
    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.platform()}; load before: {load_average()}; "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; limits on: {s.gateway_events_per_second:g} events/s, burst "
          f"{s.gateway_burst}, {s.gateway_concurrent_requests} requests at once", flush=True)
    with quiet.only(s, ("sequencer", "gateway")):
        results = asyncio.run(measure(a))
    print("\n| run | calm p50 ms | calm p99 ms | calm max ms | calm answers | flood answers | flood events/s | load |")
    print("|---|---|---|---|---|---|---|---|")
    for run, r in results.items():
        print(f"| {run} | {r['calm_p50_ms']:.1f} | {r['calm_p99_ms']:.1f} | {r['calm_max_ms']:.1f} | "
              f"{r['calm_statuses']} | {r['flood_statuses']} | {r['flood_events_per_s']:.0f} | {r['load']} |")


if __name__ == "__main__":
    main()
