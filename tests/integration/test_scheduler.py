"""Given listings and penalties whose periods ended years ago (old decision dates) and some that have
not ended, when the expiry scheduler runs (as the stack's process, with its clock fixed by
LEDGER_SCHEDULER_TODAY / --today), then each due item expires exactly once through the sequencer,
with the legal end as its date, and nothing else does: on its timer, when run twice, when the same
expiries are submitted again, when killed with SIGKILL half-way and restarted, and after a downtime."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from consumers.scheduler import core as scheduler
from consumers.scheduler import service
from ledger.client import LedgerClient, submit_as_departments
from ledger.platform import config
from ledger.platform.kafka_access import SCHEDULER, access
from ledger.platform.kafka_util import KafkaClients
from ledger.rules import loader
from ops import stack as ops_stack
from ops import workload
from tests import helpers

TODAY = date(2025, 6, 30)  # the scheduler's clock in these tests: only old periods have ended


@pytest.fixture
def scheduler_service(settings, services) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Start the stack's scheduler process with a fixed clock; stopped (by pid) at the end."""
    svc = ops_stack.Service(settings, "scheduler")
    svc.stop()

    def start(today: date = TODAY, interval: float = 1.0, batch_size: int = 200) -> ops_stack.Service:
        svc.start(extra_env={"LEDGER_SCHEDULER_TODAY": today.isoformat(),
                             "LEDGER_SCHEDULER_INTERVAL": str(interval),
                             "LEDGER_SCHEDULER_BATCH_SIZE": str(batch_size)})
        return svc

    yield start
    svc.stop()


def run_once(settings: config.Settings, today: date, batch_size: int = 200) -> dict[str, Any]:
    """`python -m ops.run scheduler --once` as a separate process; its JSON summary."""
    env = {**os.environ, "PYTHONPATH": str(config.ROOT)}
    r = subprocess.run([sys.executable, "-m", "ops.run", "scheduler", "--once", "--today", today.isoformat(),
                        "--batch-size", str(batch_size)], capture_output=True, text=True, env=env,
                       cwd=config.ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def old_world(name: str) -> tuple[list[tuple[str, dict[str, Any]]], set[str], set[str]]:
    """Events for a few entities: (events, event ids of the due targets, event ids of the targets not due
    on TODAY). Persons too: their expiry needs the clear ID number, which only the ledger holds."""
    rng = helpers.rng(name)
    firms = workload.subjects(rng, 4, persons_share=0.0)
    # an adult when listed in 2022 (a minor may not be listed): born in 2003 at the latest
    person = next(s for s in workload.subjects(rng, 80, persons_share=1.0) if s.id[6:10] <= "2003")
    events = [
        workload.wage_listed(firms[0], f"许人社欠薪〔2021〕{name}1号", date(2021, 3, 1)),  # 36 months
        workload.debtor_listed(firms[1], f"（2022）豫10执{name}1号", date(2022, 1, 10), ground=4),  # 24 months
        workload.procurement_ban(firms[2], f"许财采罚〔2023〕{name}1号", date(2023, 1, 5), months=12),
        workload.workload_penalty(rng, firms[3], "xc-samr", f"许市监罚〔2022〕{name}1号", date(2022, 5, 10),
                                  "general"),  # 527号: at most one year
        workload.debtor_listed(person, f"（2022）豫10执{name}2号", date(2022, 3, 15), ground=4),
        # not due on TODAY:
        workload.debtor_listed(firms[0], f"（2024）豫10执{name}3号", date(2024, 6, 3), ground=4),
        workload.workload_penalty(rng, firms[1], "xc-samr", f"许市监罚〔2024〕{name}2号", date(2024, 1, 10),
                                  "serious"),  # NDRC Order 58: three years
    ]
    ids = [rec["envelope"]["event_id"] for _, rec in events]
    return events, set(ids[:5]), set(ids[5:])


async def submit(settings: config.Settings, events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    outcomes = await submit_as_departments(settings, events)
    assert [o["reasons"] for o in outcomes if o["status"] != "ACCEPTED"] == []
    return outcomes


def target_states(settings: config.Settings, target_ids: set[str]) -> dict[str, tuple[str, date | None, date | None]]:
    """event id of a listing or penalty -> (status, ended_on, legal end) in the views."""
    rows = helpers.pg_rows(
        settings, "select event_id, status, ended_on, legal_end from views.list_entries where event_id = any(%s) "
        "union all select event_id, status, ended_on, automatic_end from views.publicity where event_id = any(%s)",
        (list(target_ids), list(target_ids)))
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


async def expiries_in_ledger(settings: config.Settings, entity_ids: set[str]) -> Counter[str]:
    """target event id -> number of ListingExpired entries in credit.events."""
    from schemas import registry

    found: Counter[str] = Counter()
    for entries in (await helpers.ledger_entries(settings, entity_ids)).values():
        assert [e["entity_version"] for e in entries] == list(range(1, len(entries) + 1))
        for e in entries:
            if e["event_type"] == "ListingExpired":
                assert e["department"] == scheduler.DEPARTMENT
                found[registry.decode(e["submission"])[1]["target_event_id"]] += 1
    return found


async def all_expired(settings: config.Settings, due: set[str], timeout: float = 90.0) -> None:
    await helpers.wait_until(lambda: all(s[0] == "expired" for s in target_states(settings, due).values())
                             and len(target_states(settings, due)) == len(due), timeout=timeout,
                             what="every due item to show expired in the views")


async def test_due_items_expire_by_themselves_on_their_legal_end_and_nothing_else(settings, services,
                                                                                  scheduler_service) -> None:
    events, due, not_due = old_world("timer")
    outcomes = await submit(settings, events)
    entity_ids = {o["entity_id"] for o in outcomes}
    await helpers.projected(settings)

    scheduler_service(interval=1.0)  # a fresh process: its counters start at zero
    await all_expired(settings, due)
    await asyncio.sleep(2.5)  # two more passes on the timer: they must add nothing

    states = target_states(settings, due | not_due)
    for target in due:
        status, ended_on, legal_end = states[target]
        assert (status, ended_on) == ("expired", legal_end), target
        assert legal_end <= TODAY
    assert {states[t][0] for t in not_due} == {"active", "published"}
    assert await expiries_in_ledger(settings, entity_ids) == Counter(dict.fromkeys(due, 1))
    assert helpers.metric(settings, "scheduler", "ledger_scheduler_expiries_total",
                          'outcome="accepted"') >= len(due)
    assert helpers.metric(settings, "scheduler", "ledger_scheduler_passes_total", 'result="ok"') >= 2
    log = ops_stack.Service(settings, "scheduler").log.read_text()
    assert all(scheduler.expiry_event_id(t, k) in log for t, k in
               ((r["envelope"]["event_id"], _kind(d, r)) for d, r in events if r["envelope"]["event_id"] in due))
    person_ids = [r["envelope"]["subject"]["id"] for _, r in events if r["envelope"]["subject"]["id_type"] == "RIC"]
    assert person_ids and not any(p in log for p in person_ids), "a clear ID number reached the log"


def _kind(department: str, rec: dict[str, Any]) -> str:
    t = rec["envelope"]["event_type"]
    return {"WageArrearsListed": "wage_arrears", "DishonestDebtorListed": "dishonest_debtor",
            "ProcurementBanImposed": "procurement_ban",
            "AdministrativePenaltyImposed": scheduler.PENALTY_PUBLICATION}[t]


async def test_a_second_run_and_a_resubmission_append_nothing(settings, services) -> None:
    events, due, _ = old_world("twice")
    outcomes = await submit(settings, events)
    entity_ids = {o["entity_id"] for o in outcomes}
    await helpers.projected(settings)
    pending = [d for d in await service.due_items(settings.pg_dsn, TODAY) if d.target_event_id in due]
    assert {d.target_event_id for d in pending} == due

    first = run_once(settings, TODAY)
    assert first["outcomes"].get("accepted", 0) >= len(due)
    await helpers.projected(settings)
    assert not [d for d in await service.due_items(settings.pg_dsn, TODAY) if d.target_event_id in due]
    second = run_once(settings, TODAY)
    assert second["outcomes"].get("accepted", 0) == 0

    # the same expiries again, straight to the sequencer (as after a crash before the views caught up)
    subjects = await service.read_subjects(KafkaClients(access(settings, SCHEDULER)), pending)
    version = loader.load_publication_periods().version  # the scheduler names the newest version
    records = [scheduler.expiry_record(d, subjects[(d.partition, d.offset)], version) for d in pending]
    async with LedgerClient.of(settings, scheduler.DEPARTMENT) as c:
        again = await c.submit_many_and_wait(records)
    assert Counter(o["status"] for o in again) == {"DUPLICATE": len(due)}
    assert await expiries_in_ledger(settings, entity_ids) == Counter(dict.fromkeys(due, 1))


async def test_sigkill_in_mid_pass_then_restart_expires_everything_exactly_once(settings, services,
                                                                                scheduler_service) -> None:
    rng = helpers.rng("sched-kill")
    firms = workload.subjects(rng, 100, persons_share=0.0)
    events = [workload.wage_listed(f, f"许人社欠薪〔2021〕K{i:03d}号", date(2021, 4, 1 + i % 28))
              for i, f in enumerate(firms)]
    due = {rec["envelope"]["event_id"] for _, rec in events}
    entity_ids = {o["entity_id"] for o in await submit(settings, events)}
    await helpers.projected(settings)

    svc = scheduler_service(interval=600.0, batch_size=4)  # one pass now, the next in ten minutes
    start = svc.log.stat().st_size
    await helpers.wait_until(lambda: b'"expiries submitted"' in svc.log.read_bytes()[start:], timeout=60,
                             interval=0.02, what="the scheduler's first batch")
    svc.kill()
    at_kill = svc.log.read_bytes()[start:]
    assert b'"scheduler pass done"' not in at_kill, "the kill must come in mid-pass"
    await helpers.projected(settings)
    expired_at_kill = sum(s[0] == "expired" for s in target_states(settings, due).values())
    assert 0 < expired_at_kill < len(due)

    scheduler_service(interval=600.0, batch_size=50)  # restarted: its first pass picks up the rest
    await all_expired(settings, due)
    assert await expiries_in_ledger(settings, entity_ids) == Counter(dict.fromkeys(due, 1))


async def test_after_a_downtime_one_pass_catches_up_with_each_item_on_its_own_date(settings, services) -> None:
    events, due, not_due = old_world("downtime")
    outcomes = await submit(settings, events)
    entity_ids = {o["entity_id"] for o in outcomes}
    await helpers.projected(settings)
    ends = {t: s[2] for t, s in target_states(settings, due).items()}
    assert len(set(ends.values())) == len(due), "the due items end on different days"

    before_any = min(ends.values()).replace(day=1)  # a pass before anything of ours was due
    run_once(settings, before_any)
    await helpers.projected(settings)
    assert {s[0] for s in target_states(settings, due).values()} <= {"active", "published"}

    # ... then the scheduler was down while every one of them fell due; the first pass after it:
    summary = run_once(settings, TODAY)
    assert summary["outcomes"].get("accepted", 0) >= len(due)
    await helpers.projected(settings)
    states = target_states(settings, due | not_due)
    assert {t: (s[0], s[1]) for t, s in states.items() if t in due} == \
        {t: ("expired", end) for t, end in ends.items()}
    assert {states[t][0] for t in not_due} == {"active", "published"}
    assert await expiries_in_ledger(settings, entity_ids) == Counter(dict.fromkeys(due, 1))
