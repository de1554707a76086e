"""The demo's part for the faults the exactly-once claims rest on (issue 18; docs/operations.md, "Fault
tests"): ledger time is the broker's (the sequencer's measured skew, an entry's ledger time beside the
broker's append time), and a zombie fenced: a list keeper paused with SIGSTOP while a successor with
the same instance id takes its place, then resumed, stops by itself and writes nothing. Both list
keepers are processes of their own beside the stack's (instance "demo", no /metrics), so the stack's
list keeper and its supervisor are left alone."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ledger.platform import config
from ledger.platform.kafka_access import AUDITOR, access
from ops.procs import alive
from ops.stack import Service
from schemas import registry

FENCED = "fenced by a newer instance"


def _metric(s: config.Settings, service: str, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port(service)}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


async def _last_entry(s: config.Settings) -> tuple[dict[str, Any], datetime] | None:
    """The newest ledger entry of partition 0 and the time the broker appended it."""
    c = AIOKafkaConsumer(**access(s, AUDITOR).options(), group_id=None, enable_auto_commit=False,
                         isolation_level="read_committed")
    await c.start()
    try:
        tp = TopicPartition(registry.EVENTS.name, 0)
        c.assign([tp])
        end = (await c.end_offsets([tp]))[tp]
        c.seek(tp, max(0, end - 5))
        last = None
        while await c.position(tp) < end:
            for msgs in (await c.getmany(tp, timeout_ms=1000)).values():
                last = msgs[-1] if msgs else last
        if last is None:
            return None
        return registry.decode(last.value, "LedgerEntry")[1], datetime.fromtimestamp(last.timestamp / 1000, UTC)
    finally:
        await c.stop()


def _log_has(svc: Service, start: int, text: str) -> bool:
    with open(svc.log, "rb") as f:
        f.seek(start)
        return text.encode() in f.read()


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the fault demo: {what} did not happen within {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def show(s: config.Settings, say: Any) -> None:
    say("\n== Faults the exactly-once claims rest on (docs/operations.md, \"Fault tests\")")
    skew = _metric(s, "sequencer", "ledger_sequencer_clock_skew_seconds")
    found = await _last_entry(s)
    if found is not None:
        entry, appended = found
        say(f"   ledger time is the broker's: this machine's clock is {skew or 0.0:+.3f} s off the broker's; the "
            f"last entry's ledger time {entry['sequenced_at']:%H:%M:%S.%f} UTC, appended by the broker at "
            f"{appended:%H:%M:%S.%f} UTC")

    def keeper(label: str) -> Service:
        return Service(s, "list-keeper", label=label, args=("--instance", "demo"), metrics_port=0)

    zombie, successor = keeper("demo-zombie"), keeper("demo-successor")
    for svc in (zombie, successor):  # each run's own lines only
        svc.log.unlink(missing_ok=True)
    start = 0
    await asyncio.to_thread(zombie.start)
    await _until(lambda: _log_has(zombie, start, "state restored"), 60, "the first list keeper's restore")
    pid = zombie.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    say(f"   a list keeper (instance \"demo\", pid {pid}) paused with SIGSTOP; a successor with the same instance id "
        "(transactional id credit-list-keeper-demo) starts and takes its partitions")
    try:
        await asyncio.to_thread(successor.start)
        await _until(lambda: _log_has(successor, 0, "state restored"), 60, "the successor's restore")
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        await _until(lambda: not alive(pid), 90, "the paused list keeper's stop once resumed")
        if not _log_has(zombie, start, FENCED):
            raise RuntimeError(f"the paused list keeper stopped without saying it was fenced; see {zombie.log}")
        say(f"   resumed, the paused one found itself {FENCED} (its log: {zombie.log.name}) and stopped, "
            "writing nothing; the successor goes on")
    finally:
        await asyncio.to_thread(successor.stop)
        zombie.pidfile.unlink(missing_ok=True)
