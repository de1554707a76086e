"""Given a stream of submissions, when the broker is paused with SIGSTOP for longer than the clients'
40 s request timeouts and then resumed (SIGCONT), or killed with SIGKILL and started again, then every
ledger process is still the same process (none exited on a retriable Kafka error), every acknowledged
submission is in the ledger exactly once, the views and the notary's trees catch up by themselves, and
every lag gauge returns to zero (issue 18)."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
from collections import Counter

from ops import stack as ops_stack
from tests import helpers
from tests.integration.test_sequencer_kill import penalties

CHUNKS = 40
CHUNK = 50
PAUSE_SECONDS = 50  # longer than aiokafka's request_timeout_ms (40 s): every client's calls time out
# (the sequencer measures no lag: its acknowledged outcomes are the oracle for it)
LAGS = {"list-keeper": "ledger_stream_lag_records",
        "webhook": "ledger_stream_lag_records", "projector": "ledger_projection_lag_records",
        "notary": "ledger_notary_lag_records"}


def _samples(settings, service: str, name: str) -> list[float]:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port(service)}/metrics", timeout=5) as r:
        return [float(line.rsplit(" ", 1)[1]) for line in r.read().decode().splitlines()
                if line.startswith(name + "{") or line.startswith(name + " ")]


async def _lags_zero(settings) -> bool:  # type: ignore[no-untyped-def]
    lags = {s: _samples(settings, s, name) for s, name in LAGS.items()}
    return all(v and sum(v) == 0 for v in lags.values())


async def _through_a_fault(settings, services, name: str, fault,  # type: ignore[no-untyped-def]
                           timeouts_expected: bool) -> None:
    """`fault()` in the middle of a stream, then the oracle. `timeouts_expected`: the fault outlasts the
    clients' 40 s request timeouts, so the processes must have met (and counted) retriable errors."""
    records = penalties(name, CHUNKS * CHUNK, subjects=200)
    pids = {n: svc.pid() for n, svc in services.items()}
    assert all(pids.values()), pids
    retries_before = sum(sum(_samples(settings, s, "ledger_kafka_retries_total")) for s in LAGS)
    acknowledged: list[int] = []
    chunks = [[("xc-samr", r) for r in records[i:i + CHUNK]] for i in range(0, len(records), CHUNK)]
    sending = asyncio.create_task(helpers.stream_until_acknowledged(settings, chunks, acknowledged))
    await helpers.wait_until(lambda: _at_least(acknowledged, 5), timeout=120, interval=0.05,
                             what="five chunks acknowledged")
    await fault()
    outcomes = await sending
    assert len(acknowledged) == CHUNKS

    # nobody exited: the same processes as before the fault
    assert {n: svc.pid() for n, svc in services.items()} == pids
    # every acknowledged submission once in the ledger, at the position its outcome names
    ids = {r["envelope"]["event_id"] for r in records}
    entries = await helpers.ledger_entries(settings, {o["entity_id"] for o in outcomes})
    counted = Counter(e["event_id"] for es in entries.values() for e in es if e["event_id"] in ids)
    assert set(counted) == ids and set(counted.values()) == {1}
    for entity, es in entries.items():
        assert [e["entity_version"] for e in es] == list(range(1, len(es) + 1)), entity
    # the views complete, every lag back to zero, by themselves
    await helpers.projected(settings, timeout=240)
    await helpers.wait_until(lambda: _lags_zero(settings), timeout=120, interval=1, what="every lag at zero")
    if timeouts_expected:  # the fault was felt: processes met retriable errors, waited and went on
        assert sum(sum(_samples(settings, s, "ledger_kafka_retries_total")) for s in LAGS) > retries_before


async def _at_least(items: list[int], n: int) -> bool:
    return len(items) >= n


async def test_a_broker_paused_longer_than_the_client_timeouts_stops_no_process(settings, services) -> None:
    kafka = ops_stack.Kafka(settings)

    async def pause() -> None:
        pid = kafka.pid()
        assert pid
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(PAUSE_SECONDS)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert kafka.pid() == pid

    await _through_a_fault(settings, services, "broker-pause", pause, timeouts_expected=True)


async def test_a_broker_killed_and_restarted_stops_no_process(settings, services) -> None:
    kafka = ops_stack.Kafka(settings)

    async def restart() -> None:
        old = kafka.pid()
        kafka.kill()
        await asyncio.sleep(5)
        await asyncio.to_thread(kafka.start)
        assert kafka.pid() not in (None, old)

    # (a broker back within seconds: aiokafka reconnects inside its timeouts, and the clients of the
    # stream see the refused connections)
    await _through_a_fault(settings, services, "broker-kill", restart, timeouts_expected=False)
