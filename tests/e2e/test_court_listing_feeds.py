"""End to end (real Kafka, real PostgreSQL, the stack's processes): a court lists a dishonest debtor;
the listing reaches the example sector subscriber's local blacklist and the alert topic (one alert
per measure and implementing department, keyed by the department); the court delists; the
subscriber's copy drops the entity and every measure is lifted; the expiry scheduler, by itself,
ends a listing whose period is over, with the same effect.

Given / When / Then, with the example subscriber as a helper (tests/feeds.py) so further steps (an
expiry raised by the scheduler) can be added the same way."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date

from consumers.scheduler import core as scheduler
from ledger.client import submit_as_departments
from ledger.platform import config
from ledger.rules import loader
from ops import workload
from tests import feeds, helpers


async def test_a_court_listing_reaches_the_subscriber_and_the_alerts_and_a_delisting_lifts_it(
        settings, services, tmp_path) -> None:
    catalogue = loader.load_catalogue()
    rng = helpers.rng("e2e-court")
    company = workload.subjects(rng, 1, persons_share=0.0)[0]
    entity = f"uscc:{company.id}"
    case = f"（2026）豫10执{rng.randrange(10**6)}号"
    sector = feeds.subscriber(settings, tmp_path)
    await sector.sync()  # the sector system is up to date before the listing
    assert sector.lists_of(entity) == []

    # When the court lists the company as a dishonest debtor
    listing = workload.debtor_listed(company, case, date(2026, 11, 2), ground=1)
    [outcome] = await submit_as_departments(settings, [listing])
    assert outcome["status"] == "ACCEPTED", outcome
    listing_id = listing[1]["envelope"]["event_id"]

    # Then every implementing department gets one alert per measure, keyed by the department
    measures = catalogue.for_list("dishonest_debtor", "enterprise")
    expected = {(m.id, d) for m in measures for d in m.departments}
    imposed = await feeds.wait_for_alerts(settings, {listing_id}, len(expected))
    assert {(a["measure_id"], a["department"]) for a in imposed} == expected and len(imposed) == len(expected)
    assert all(a["_key"] == a["department"] and a["action"] == "impose" for a in imposed)
    assert all(a["legal_basis"] and a["entity_id"] == entity and a["ref"] == case for a in imposed)
    assert {(a["ledger_partition"], a["ledger_offset"]) for a in imposed} == {
        (outcome["ledger_partition"], outcome["ledger_offset"])}
    # ... and the example subscriber has the company on its blacklist
    await sector.sync()
    assert sector.lists_of(entity) == ["dishonest_debtor"]
    assert [row for row in sector.blacklist() if row[0] == entity][0][4] == case

    # When the court delists it (performed)
    delisting = workload.debtor_delisted(company, case, date(2026, 11, 20))
    [outcome2] = await submit_as_departments(settings, [delisting])
    assert outcome2["status"] == "ACCEPTED", outcome2
    delisting_id = delisting[1]["envelope"]["event_id"]

    # Then each measure is lifted once per department, and the subscriber drops the company
    lifted = await feeds.wait_for_alerts(settings, {delisting_id}, len(expected))
    assert {(a["measure_id"], a["department"], a["action"]) for a in lifted} == {
        (m, d, "lift") for m, d in expected} and len(lifted) == len(expected)
    await sector.sync()
    assert sector.lists_of(entity) == []
    assert entity not in [row[0] for row in sector.blacklist()]
    # the change feed holds both changes, in order, and the alert ids are unique
    changed = await feeds.changes(settings, {listing_id, delisting_id})
    assert [(c["status"], c["active_list_kinds"]) for c in sorted(changed, key=lambda c: c["_offset"])] == [
        ("listed", ["dishonest_debtor"]), ("delisted", [])]
    assert feeds.duplicates([a["alert_id"] for a in imposed + lifted]) == {}
    sector.close()


async def test_the_scheduler_expires_a_listing_by_itself_lifting_every_measure_and_a_penalty_expiry_raises_nothing(
        settings, services, tmp_path) -> None:
    """The expiry scheduler (its own process, `--once`, its clock on the listing's legal end) ends a
    court listing whose period is over: the subscriber drops the entity and every measure is lifted;
    the end of a penalty's publication period, expired in the same pass, changes no list."""
    catalogue = loader.load_catalogue()
    rng = helpers.rng("e2e-expiry")
    company = workload.subjects(rng, 1, persons_share=0.0)[0]
    entity = f"uscc:{company.id}"
    case = f"（2024）豫10执E{rng.randrange(10**6)}号"
    listing = workload.debtor_listed(company, case, date(2024, 5, 10), ground=4)  # listed for two years
    penalty = workload.workload_penalty(rng, company, "xc-samr", f"许市监罚〔2025〕E{rng.randrange(10**6)}号",
                                        date(2025, 3, 3), "general")
    outcomes = await submit_as_departments(settings, [listing, penalty])
    assert {o["status"] for o in outcomes} == {"ACCEPTED"}, outcomes
    sector = feeds.subscriber(settings, tmp_path)
    measures = {(m.id, d) for m in catalogue.for_list("dishonest_debtor", "enterprise") for d in m.departments}
    await feeds.wait_for_alerts(settings, {listing[1]["envelope"]["event_id"]}, len(measures))
    await helpers.projected(settings)  # the scheduler finds what is due in the views
    await sector.sync()
    assert sector.lists_of(entity) == ["dishonest_debtor"]

    # When the scheduler runs on the day the listing's period is over (the penalty's ended before)
    env = {**os.environ, "PYTHONPATH": str(config.ROOT)}
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ops.run", "scheduler", "--once",
                                                   "--today", "2026-05-11"],
                                  capture_output=True, text=True, env=env, cwd=config.ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    list_expiry = scheduler.expiry_event_id(listing[1]["envelope"]["event_id"], "dishonest_debtor")
    penalty_expiry = scheduler.expiry_event_id(penalty[1]["envelope"]["event_id"], scheduler.PENALTY_PUBLICATION)
    entries = (await helpers.ledger_entries(settings, {entity}))[entity]
    assert {e["event_id"]: e["department"] for e in entries if e["event_type"] == "ListingExpired"} == {
        list_expiry: scheduler.DEPARTMENT, penalty_expiry: scheduler.DEPARTMENT}

    # Then every measure is lifted once per department and the subscriber drops the entity
    lifted = await feeds.wait_for_alerts(settings, {list_expiry}, len(measures))
    assert {(a["measure_id"], a["department"], a["action"], a["change_status"]) for a in lifted} == {
        (m, d, "lift", "expired") for m, d in measures} and len(lifted) == len(measures)
    await sector.sync()
    assert sector.lists_of(entity) == []
    # ... and the penalty's expiry raised nothing: a later listing of the same entity (same partition,
    # read in order) has its alerts, so the list keeper has read past both expiries
    relisting = workload.debtor_listed(company, case + "之二", date(2026, 11, 2), ground=1)
    await submit_as_departments(settings, [relisting])
    await feeds.wait_for_alerts(settings, {relisting[1]["envelope"]["event_id"]}, len(measures))
    assert [c["status"] for c in await feeds.changes(settings, {list_expiry, penalty_expiry})] == ["expired"]
    assert await feeds.alerts(settings, {penalty_expiry}) == []
    sector.close()
