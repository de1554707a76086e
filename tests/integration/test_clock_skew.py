"""Clock skew (issue 18, item 7). Given the sequencer's machine clock 10 minutes ahead of the broker's
and the gateway's 10 minutes behind (libfaketime in those two processes only), and then the sequencer's
clock 10 minutes past the next midnight in Beijing, and 10 minutes before the last one (the skews that
change the date), when departments submit over HTTP decisions dated yesterday, today and tomorrow by
the broker's clock, then ledger time is still the broker's: each outcome is decided at the broker's
time, each entry's ledger time (sequenced_at) is the time the broker appended it, and a decision is
refused as future-dated exactly when it is after the broker's date; nothing is refused or accepted
because of a machine's clock (docs/architecture.md, "One clock", says which clock decides what)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from glob import glob
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.gateway import body
from ledger.domain.local_time import CHINA
from ledger.platform.kafka_access import ADMIN, access
from ops import workload
from schemas import registry
from tests import helpers

TEN_MINUTES = 600


def skewed(seconds: int) -> dict[str, str]:
    """The environment of a process whose clock is `seconds` off the run's (libfaketime; on a faked
    run the offset is added to the run's own)."""
    libs = glob("/usr/lib/*/faketime/libfaketime.so.1")
    assert libs, "libfaketime is missing (ops/bootstrap installs the Debian package faketime)"
    preload = os.environ.get("LD_PRELOAD", "")
    base = int(os.environ.get("FAKETIME", "+0") or 0)
    return {"LD_PRELOAD": preload if libs[0] in preload else f"{libs[0]} {preload}".strip(),
            "FAKETIME": f"{base + seconds:+d}"}


def _date_line_offsets() -> tuple[int, int]:
    """Seconds from now to 10 minutes past the next midnight in Beijing, and to 10 minutes before the last."""
    now = helpers.CLOCK.now().astimezone(CHINA)
    midnight = datetime.combine(now.date(), time(0), CHINA)
    ahead = (midnight + timedelta(days=1) - now).total_seconds() + TEN_MINUTES
    behind = (midnight - now).total_seconds() - TEN_MINUTES
    return int(ahead), int(behind)


@pytest.fixture
def restored(services) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The sequencer and the gateway, started again on the run's clock after the test."""
    yield services
    for name in ("sequencer", "gateway"):
        services[name].stop()
        services[name].start()


async def _entry_at(settings, partition: int, offset: int) -> tuple[dict[str, Any], int, int]:  # type: ignore[no-untyped-def]
    """The ledger entry at a position, with the record's timestamp and its type (1: the broker's)."""
    c = AIOKafkaConsumer(**access(settings, ADMIN).options(), group_id=None, enable_auto_commit=False,
                         isolation_level="read_committed")
    await c.start()
    try:
        tp = TopicPartition(registry.EVENTS.name, partition)
        c.assign([tp])
        c.seek(tp, offset)
        msg = await c.getone()
        return registry.decode(msg.value, "LedgerEntry")[1], msg.timestamp, msg.timestamp_type
    finally:
        await c.stop()


async def _phase(settings, services, name: str, sequencer_skew: int, gateway_skew: int) -> None:  # type: ignore[no-untyped-def]
    for svc, skew in ((services["sequencer"], sequencer_skew), (services["gateway"], gateway_skew)):
        svc.stop()
        svc.start(extra_env=skewed(skew) if skew else None)
    rng = helpers.rng(f"skew-{name}")
    today = helpers.today()
    subjects = workload.subjects(rng, 3, persons_share=0.0)
    records = [workload.penalty(rng, s, "xc-samr", rng.randrange(10**6), decided=today + timedelta(days=d))
               for s, d in zip(subjects, (-1, 0, 1), strict=True)]
    token = (settings.keys_dir / "xc-samr.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        answers = []
        for r in records:
            async with session.post(f"http://127.0.0.1:{settings.gateway_port}/v1/events?timeout=30",
                                    data=body(r), headers=headers) as resp:
                assert resp.status in (200, 422), (name, resp.status, await resp.text())
                answers.append(await resp.json())
    # the machine clock was really off: the sequencer measured its skew against the broker's
    measured = helpers.metric(settings, "sequencer", "ledger_sequencer_clock_skew_seconds")
    assert abs(measured - sequencer_skew) < 60, (name, measured, sequencer_skew)
    for r, o in zip(records, answers, strict=True):
        decided_at = datetime.fromisoformat(o["decided_at"])
        assert abs((decided_at - helpers.CLOCK.now()).total_seconds()) < 60, (name, o)  # the broker's time
        broker_date = decided_at.astimezone(CHINA).date()
        decision = r["decision_date"]
        if decision > broker_date:
            assert o["status"] == "REJECTED" and [x["code"] for x in o["reasons"]] == ["time.future"], (name, o)
            continue
        assert (o["status"], o["reasons"]) == ("ACCEPTED", []), (name, decision, broker_date, o)
        entry, stamped, kind = await _entry_at(settings, o["ledger_partition"], o["ledger_offset"])
        appended = datetime.fromtimestamp(stamped / 1000, UTC)
        assert kind == 1 and abs((entry["sequenced_at"] - appended).total_seconds()) < 5, (name, entry["sequenced_at"],
                                                                                           appended)


async def test_ledger_time_is_the_brokers_whatever_the_machines_clocks_say(settings, restored) -> None:
    await _phase(settings, restored, "sequencer ahead, gateway behind", TEN_MINUTES, -TEN_MINUTES)
    ahead, behind = _date_line_offsets()
    await _phase(settings, restored, "sequencer 10 minutes into tomorrow", ahead, 0)
    await _phase(settings, restored, "sequencer 10 minutes into yesterday", behind, 0)
