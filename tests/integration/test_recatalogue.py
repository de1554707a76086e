"""Given wage-arrears listings judged under version 1 of the joint-punishment catalogue (a sequencer
running with version 1 as its newest), when version 2 (which ties more measures to the wage-arrears
list) is in force: the list keeper imposes what each entry's own version calls for, an ending judged
under version 2 lifts what version 1 imposed and what version 2 ties; and
`python -m consumers.list_keeper.recatalogue` replays the list state from the ledger and writes, for
the listings still in force, only the alerts version 2 adds, once: a second run writes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import date

from ledger.client import submit_as_departments
from ledger.platform import config
from ledger.rules import loader
from ops import root, workload
from schemas import registry
from tests import feeds, helpers

RULES = loader.load()
V1, V2 = RULES.at("punishment_catalogue", 1), RULES.at("punishment_catalogue", 2)


def _pairs(catalogue, category: str = "enterprise") -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(m.id, d) for m in catalogue.for_list("wage_arrears", category) for d in m.departments}


def _recatalogue(settings: config.Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consumers.list_keeper.recatalogue"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(config.ROOT)})


async def _catalogue_alerts(settings: config.Settings) -> list[dict]:  # type: ignore[type-arg]
    return [a for a in await feeds.records(settings, registry.ALERTS, "Alert")
            if a["trigger_event_type"] == "PunishmentCatalogueChanged"]


async def test_a_new_catalogue_reaches_the_listings_in_force_once(settings, services) -> None:
    added = _pairs(V2) - _pairs(V1)
    assert added, "version 2 ties more measures to the wage-arrears list"
    rng = helpers.rng("recatalogue")
    subjects = workload.subjects(rng, 4, persons_share=0.0)
    decisions = [f"许人社欠〔2026〕{rng.randrange(10**6)}号" for _ in subjects]
    listings = [workload.wage_listed(s, d, date(2026, 4, 1)) for s, d in zip(subjects, decisions, strict=True)]

    # judged under version 1: a sequencer whose newest catalogue is version 1
    services["sequencer"].stop()
    old = root.sequencer_service(settings, rules=dataclasses.replace(RULES, catalogue=V1))
    running = asyncio.create_task(old.run())
    try:
        outcomes = await submit_as_departments(settings, listings)
    finally:
        old.stop()
        await running
        services["sequencer"].start()
    assert {o["status"] for o in outcomes} == {"ACCEPTED"}, [o["reasons"] for o in outcomes]
    ids = {r["envelope"]["event_id"] for _, r in listings}
    imposed = await feeds.wait_for_alerts(settings, ids, len(ids) * len(_pairs(V1)))
    assert {a["catalogue_version"] for a in imposed} == {1}
    assert {(a["measure_id"], a["department"]) for a in imposed} == _pairs(V1)

    # the first one ends under version 2: what version 1 imposed is lifted, and what version 2 ties
    end = workload.wage_delisted(subjects[0], decisions[0], date(2026, 11, 20), date(2026, 5, 10))
    [o] = await submit_as_departments(settings, [end])
    assert o["status"] == "ACCEPTED", o["reasons"]
    lifted = await feeds.wait_for_alerts(settings, {end[1]["envelope"]["event_id"]}, len(_pairs(V1) | _pairs(V2)))
    assert {(a["measure_id"], a["department"]) for a in lifted} == _pairs(V1) | _pairs(V2)
    assert {a["action"] for a in lifted} == {"lift"} and {a["catalogue_version"] for a in lifted} == {2}

    # the command: only what version 2 adds, for the three listings still in force
    before = await _catalogue_alerts(settings)
    done = _recatalogue(settings)
    assert done.returncode == 0, done.stderr
    assert "replay" in done.stderr and "ledger records" in done.stderr
    entities = {o["entity_id"] for o in outcomes}
    new = [a for a in await _catalogue_alerts(settings) if a not in before and a["entity_id"] in entities]
    assert feeds.duplicates([a["alert_id"] for a in new]) == {}
    assert {a["entity_id"] for a in new} == entities - {outcomes[0]["entity_id"]}
    for entity in entities - {outcomes[0]["entity_id"]}:
        mine = [a for a in new if a["entity_id"] == entity]
        assert {(a["measure_id"], a["department"]) for a in mine} == added and len(mine) == len(added)
        assert {a["action"] for a in mine} == {"impose"} and {a["catalogue_version"] for a in mine} == {2}
        assert {a["trigger_event_id"] for a in mine} == {"catalogue:1->2"}

    # run twice: nothing more
    size = len(await _catalogue_alerts(settings))
    again = _recatalogue(settings)
    assert again.returncode == 0, again.stderr
    assert "nothing to write" in again.stderr
    assert len(await _catalogue_alerts(settings)) == size
