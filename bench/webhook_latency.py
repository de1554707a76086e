"""Benchmark: webhook delivery latency on its own, from an alert on credit.alerts to its POST received.

    PYTHONPATH=. .venv/bin/python -m bench.webhook_latency [--rate 100] [--seconds 20]

Court listings are submitted open loop at --rate through the client (as bench/alert_latency.py), so
the list keeper writes real alerts. A webhook deliverer of its own (`python -m ops.run webhook
--group <new group> --config <file>`, started at the end of credit.alerts) POSTs every alert to a
receiver in this process (one endpoint per implementing department, HMAC checked with the
project's `verify`). In the same process a read_committed consumer reads credit.alerts, so each
alert has three moments: made (the list keeper's alerted_at), read by a plain subscriber, received
by the webhook. Delivery adds (received - read); both are printed from alerted_at.

It uses the stack of the environment's settings (the broker must run); only the sequencer and the
list keeper run beside it during the measurement (bench/quiet.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import quiet
from bench.alert_latency import PATH, Histogram, Load, wait_idle
from consumers.webhook.service import verify
from ledger.client import LedgerClient
from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, access
from ledger.platform.kafka_util import assign_at_end
from ledger.rules import loader
from ops import stack as ops_stack
from schemas import registry

SECRET = "bench-webhook-secret-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start_at_end(s: config.Settings, group: str) -> None:
    """Commit the group's offsets at the end of credit.alerts, so the deliverer starts there."""
    c = AIOKafkaConsumer(**access(s, ADMIN).options(), group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(registry.ALERTS.name, p) for p in range(registry.ALERTS.partitions)]
        c.assign(tps)
        end = await c.end_offsets(tps)
        await c.commit({tp: o for tp, o in end.items()})
    finally:
        await c.stop()


async def run(s: config.Settings, rate: float, seconds: float) -> int:
    await wait_idle(s)
    received: dict[str, float] = {}
    refused = 0

    async def receive(request: web.Request) -> web.Response:
        nonlocal refused
        body = await request.read()
        if not verify(SECRET.encode(), dict(request.headers), body):
            refused += 1
            return web.Response(status=401)
        received.setdefault(request.headers["X-Credit-Alert-Id"], time.time())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{department}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    departments = sorted({d for m in loader.load_catalogue().measures.values() for d in m.departments})
    conf = Path(tempfile.mkdtemp()) / "webhooks.json"
    conf.write_text(json.dumps({d: {"url": f"http://127.0.0.1:{port}/{d}", "secret": SECRET} for d in departments}))
    group = f"bench-webhook-{time.time_ns()}"
    await _start_at_end(s, group)
    proc = subprocess.Popen([sys.executable, "-m", "ops.run", "webhook", "--group", group, "--instance", group,
                             "--config", str(conf), "--metrics-port", str(_free_port())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(config.ROOT)})
    made: dict[str, float] = {}
    read: dict[str, float] = {}
    consumer = AIOKafkaConsumer(**access(s, ADMIN).options(), group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", fetch_max_wait_ms=5)
    await consumer.start()
    await assign_at_end(consumer, registry.ALERTS.name, registry.ALERTS.partitions)
    ours: set[str] = set()

    async def reader() -> None:
        while True:
            for msgs in (await consumer.getmany(timeout_ms=50)).values():
                now = time.time()
                for m in msgs:
                    _, a = registry.decode(m.value, "Alert")
                    if a["trigger_event_id"] in ours:
                        made[a["alert_id"]] = a["alerted_at"].timestamp()
                        read[a["alert_id"]] = now

    task = asyncio.create_task(reader())
    client = LedgerClient.of(s, "xc-court", linger_ms=0)
    await client.start(watch_outcomes=False)
    try:
        await asyncio.sleep(3)  # the deliverer joins its group
        load = Load(random.Random(f"webhook-latency-{time.time_ns()}"), 5000)
        records = [load.next() for _ in range(int(rate * seconds))]
        t0 = time.time()
        for i, rec in enumerate(records):
            wait = t0 + i / rate - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            ours.add(rec["envelope"]["event_id"])
            await client.submit(rec)
        deadline = time.time() + 30
        while (not made or set(made) - set(received)) and time.time() < deadline:
            await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.stop()
        await consumer.stop()
        proc.terminate()
        proc.wait(30)
        await runner.cleanup()
    h_read, h_hook, h_extra = Histogram(), Histogram(), Histogram()
    for aid, t in made.items():
        if aid in received:
            h_read.record(max(0.0, read[aid] - t) * 1000)
            h_hook.record(max(0.0, received[aid] - t) * 1000)
            h_extra.record(max(0.0, received[aid] - read[aid]) * 1000)
    missing = len(set(made) - set(received))
    print(f"\nwebhook delivery, {len(records)} court listings at {rate:.0f}/s: {len(made)} alerts read, "
          f"{len(received)} received by the webhook, missing {missing}, refused signatures {refused}")
    for name, h in (("alert made -> read by a subscriber", h_read), ("alert made -> webhook received", h_hook),
                    ("read -> webhook received (delivery)", h_extra)):
        print(f"  {name:<38} p50 {h.percentile(50):7.1f} ms   p90 {h.percentile(90):7.1f} ms   "
              f"p99 {h.percentile(99):7.1f} ms   max {h.max_ms:7.1f} ms")
    print(f"  load average: {open('/proc/loadavg').read().split()[:3]}")
    return 0 if missing == 0 and refused == 0 and made else 1


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.webhook_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=100, help="court listings per second, open loop (default 100)")
    p.add_argument("--seconds", type=float, default=20, help="seconds of load (default 20)")
    args = p.parse_args()
    s = config.load()
    if not ops_stack.Kafka(s).pid():
        sys.exit("the broker is not running (start the stack: python -m ops.stack up)")
    with quiet.only(s, PATH):  # the stack's own webhook deliverer and the rest stopped meanwhile
        code = asyncio.run(run(s, args.rate, args.seconds))
    sys.exit(code)


if __name__ == "__main__":
    main()
