"""Given a stream of submissions, when a stream processor (the sequencer, the list keeper) is paused
with SIGSTOP and a successor with the same instance id (the same transactional id and static group
membership, as on another machine) takes its work over, and the paused one is then resumed (a zombie:
a process that was frozen, a VM paused, a long GC), then the zombie is fenced: it stops by itself,
says so, and writes nothing; every acknowledged submission is in the ledger once, every list change
and alert once, and the views equal a fresh rebuild (issue 18, item 4)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from bench import faults
from ops import workload
from schemas import registry
from tests import helpers
from tests.integration.test_projector_faults import _equals_fresh_rebuild
from tests.integration.test_sequencer_kill import penalties

FENCED = "fenced by a newer instance"  # the zombie's last words (ledger/platform/transactional.py)


async def _zombie(old, successor, start_successor, progressed, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    """Pause `old`, start its successor, wait until the successor has done some of the work
    (`progressed()`), resume `old` and wait until it has stopped by itself, saying it was fenced."""
    pid = faults.pause(old)
    mark = faults.log_size(old)
    try:
        await asyncio.to_thread(start_successor)
        await faults.until(progressed, timeout, f"the {successor.name}'s successor to take the work over")
    finally:
        faults.resume(pid)
    await faults.exits(pid, 60, f"the paused {old.name}, once its successor had taken over")
    said = faults.log_since(old, mark)
    assert FENCED in said, f"the zombie {old.name} did not say it was fenced; its log ends with:\n{said[-2000:]}"


async def test_a_paused_sequencer_is_fenced_by_its_successor_and_writes_nothing(settings, services,
                                                                               tmp_path: Path) -> None:
    old = services["sequencer"]
    old.start()
    pairs = [("xc-samr", r) for r in penalties("zombie-sequencer", 3000, subjects=300)]
    acknowledged: list[dict] = []  # type: ignore[type-arg]
    sending = asyncio.create_task(faults.stream(settings, pairs, 100, 0.05, acknowledged))
    await faults.until(lambda: len(acknowledged) >= 500, 120, "500 submissions acknowledged")
    # the successor is another machine: the same instance id (transactional id credit-sequencer-0,
    # static member credit-sequencer-0) and a state store of its own, restored from the changelog
    successor = faults.extra(settings, "sequencer", "successor", "--instance", "0")
    before = [0]

    def start_successor() -> None:
        successor.start(extra_env={"LEDGER_STACK_DIR": str(tmp_path)})
        before[0] = len(acknowledged)

    try:
        await _zombie(old, successor, start_successor, lambda: len(acknowledged) >= before[0] + 500)
        outcomes = await sending
    finally:
        successor.stop()
        old.start()
    assert {o["event_id"] for o in outcomes} == {r["envelope"]["event_id"] for _, r in pairs}
    await faults.ledger_holds(settings, {r["envelope"]["event_id"] for _, r in pairs})
    # the zombie's own store was left behind at the pause: the restarted sequencer reads the rest of
    # the changelog and knows every event its successor accepted
    async with helpers.client(settings) as c:
        again = await c.submit_many_and_wait([r for _, r in pairs[-200:]], timeout=120)
    assert {o["status"] for o in again} == {"DUPLICATE"}
    await _equals_fresh_rebuild(settings)


async def test_a_paused_list_keeper_is_fenced_by_its_successor_and_writes_nothing(settings, services) -> None:
    old = services["list-keeper"]
    old.start()
    rng = helpers.rng("zombie-keeper")
    subjects = workload.subjects(rng, 1200, persons_share=0.2)
    pairs = [workload.debtor_listed(s, f"（2026）豫10执Z{i}{rng.randrange(10**6)}号", date(2026, 10, 1), ground=1)
             for i, s in enumerate(subjects)]
    event_ids = {r["envelope"]["event_id"] for _, r in pairs}
    changes_before = sum((await helpers.end_offsets(settings, registry.LISTS_CHANGES)).values())

    async def changes_grown_by(n: int) -> bool:
        return sum((await helpers.end_offsets(settings, registry.LISTS_CHANGES)).values()) >= changes_before + n

    sending = asyncio.create_task(faults.stream(settings, pairs, 40, 0.25))
    await faults.until(lambda: changes_grown_by(150), 120, "the list keeper in mid-stream")
    successor = faults.extra(settings, "list-keeper", "successor", "--instance", "0")
    at_start = [0]

    def start_successor() -> None:
        successor.start()

    async def successor_wrote() -> bool:
        if not at_start[0]:
            at_start[0] = sum((await helpers.end_offsets(settings, registry.LISTS_CHANGES)).values())
            return False
        return sum((await helpers.end_offsets(settings, registry.LISTS_CHANGES)).values()) >= at_start[0] + 150

    try:
        await _zombie(old, successor, start_successor, successor_wrote)
        await sending
    finally:
        successor.stop()
        old.start()
    await faults.feeds_hold(settings, event_ids)
    await _equals_fresh_rebuild(settings)
