"""Given listed, honoured, unlisted and unknown entities on the ledger, when a sector system asks the
query API "may X do Y" (/trigger), then it gets allowed / restricted with the catalogue's measures,
their legal basis and implementing departments, the listings and the ledger position the answer
rests on; and when sector systems report what they did (PunishmentFeedbackReported through the
normal path), the sequencer holds them to the catalogue, and /reports/measures counts them per
department and measure (JSON and CSV)."""

from __future__ import annotations

import copy
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest

from ledger.client import submit_as_departments
from ledger.domain.rules import add_months
from ops import workload
from tests import helpers
from tests.integration.test_query_api import BODIES, Api

PERSON_IDS: list[str] = []
# the court's listing of this world, some eleven months before today whatever today is: in force (two
# years), with its feedback, delisting and the honour elsewhere dated after it and before today
LISTED_ON = helpers.today() - timedelta(days=330)


def day(n: int) -> date:
    return LISTED_ON + timedelta(days=n)


@pytest.fixture(scope="module")
async def api(settings, services) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Api(session, f"http://127.0.0.1:{settings.api_port}")


async def _submit(settings, pairs):  # type: ignore[no-untyped-def]
    return await submit_as_departments(settings, pairs)


def _after(outcomes: list[dict[str, Any]]) -> str:
    """The read-your-writes position of the last outcome (use it for outcomes of one entity)."""
    last = max(outcomes, key=lambda o: (o["ledger_partition"], o["ledger_offset"]))
    return f"{last['ledger_partition']}:{last['ledger_offset']}"


def feedback(subject: workload.Subject, department: str, measure: str, trigger: str, action: str,
             on: date) -> tuple[str, dict[str, Any]]:
    _, rec = copy.deepcopy(workload.feedback(subject, trigger, on))
    rec["envelope"]["source_department"] = department
    rec["envelope"]["event_id"] = str(uuid.uuid4())
    return department, {**rec, "measure_code": measure, "action": action}


@pytest.fixture(scope="module")
async def world(settings, services) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rng = helpers.rng("trigger")
    listed, honoured, lapsed, clean, unknown = workload.subjects(rng, 5, persons_share=0.0)
    person = workload.subjects(rng, 1, persons_share=1.0)[0]
    PERSON_IDS.append(person.id)
    pairs = [
        workload.debtor_listed(listed, "（2026）豫10执T1号", LISTED_ON, ground=4),
        workload.debtor_listed(person, "（2026）豫10执T2号", day(28), ground=4),
        workload.registered(honoured, date(2019, 3, 1)), workload.honour(honoured, day(135)),
        workload.debtor_listed(lapsed, "（2022）豫10执T3号", date(2022, 3, 7), ground=4),  # over, not yet expired
        workload.registered(clean, date(2020, 1, 2)),
    ]
    outcomes = await _submit(settings, pairs)
    assert [o["reasons"] for o in outcomes if o["status"] != "ACCEPTED"] == []
    await helpers.projected(settings)  # (after= below waits for one partition's position only)
    return {"listed": listed, "honoured": honoured, "lapsed": lapsed, "clean": clean, "unknown": unknown,
            "person": person, "outcomes": outcomes, "after": _after(outcomes),
            "listing_event": pairs[0][1]["envelope"]["event_id"]}


async def test_a_listed_entity_is_restricted_with_the_measures_and_what_they_rest_on(api, world) -> None:
    listed, outcome = world["listed"], world["outcomes"][0]
    got = await api.get("/trigger", entity="uscc:" + listed.id, action="bid-government-procurement",
                        after=world["after"])
    assert (got["decision"], got["record"], got["action"]) == ("restricted", True, "bid-government-procurement")
    assert [m["id"] for m in got["measures"]] == ["bar-government-procurement"]
    measure = got["measures"][0]
    assert "政府采购法" in measure["legal_basis"] and "sector-procurement" in measure["departments"]
    assert measure["because_of"] == ["dishonest_debtor"]
    assert [(x["list_kind"], x["ref"], x["listed_on"], x["legal_end"], x["department"], x["event_id"])
            for x in got["listings"]] == [("dishonest_debtor", "（2026）豫10执T1号", LISTED_ON.isoformat(),
                                           (add_months(LISTED_ON, 24) + timedelta(days=1)).isoformat(),
                                           "xc-court", world["listing_event"])]
    assert got["as_of"]["entity_partition"] == outcome["ledger_partition"]
    assert got["as_of"]["entity_version"] == 1
    assert got["as_of"]["entity_partition_position"] > outcome["ledger_offset"]
    assert got["entity"]["public_id"] == listed.id

    # the same by the raw credit code, for another action; an action no measure concerns is allowed
    plane = await api.get("/trigger", entity=listed.id.lower(), action="buy-plane-ticket")
    assert (plane["decision"], [m["id"] for m in plane["measures"]]) == ("restricted", ["restrict-high-consumption"])
    assert "sector-transport" in plane["measures"][0]["departments"]
    approval = await api.get("/trigger", entity="uscc:" + listed.id, action="administrative-approval")
    assert (approval["decision"], approval["measures"], approval["listings"]) == ("allowed", [], [])
    assert approval["lists_in_force"] == ["dishonest_debtor"]


async def test_a_measure_for_natural_persons_only_and_lookup_by_id_number(api, world) -> None:
    person, listed = world["person"], world["listed"]
    got = await api.get("/trigger", entity=person.id, action="serve-as-legal-representative", after=world["after"])
    assert (got["decision"], [m["id"] for m in got["measures"]]) == ("restricted", ["bar-company-officer"])
    assert got["entity"]["entity_id"].startswith("ric:") and "*" in got["entity"]["public_id"]
    firm = await api.get("/trigger", entity="uscc:" + listed.id, action="serve-as-legal-representative")
    assert firm["decision"] == "allowed"  # the measure applies to individuals only (公司法 art. 178)


async def test_red_list_incentives_unknown_entities_and_lapsed_periods(api, world) -> None:
    red = await api.get("/trigger", entity="uscc:" + world["honoured"].id, action="bid-government-procurement",
                        after=world["after"])
    assert (red["decision"], red["measures"]) == ("allowed", [])
    assert [m["id"] for m in red["incentives"]] == ["procurement-preference"]
    assert [x["colour"] for x in red["listings"]] == ["red"]

    nobody = await api.get("/trigger", entity=world["unknown"].id, action="bid-government-procurement")
    assert (nobody["decision"], nobody["record"], nobody["measures"]) == ("allowed", False, [])
    assert "no record" in nobody["note"] and set(nobody["as_of"]["positions"]) == {"0", "1", "2", "3"}
    clean = await api.get("/trigger", entity="uscc:" + world["clean"].id, action="bid-government-procurement")
    assert (clean["decision"], clean["record"]) == ("allowed", True)

    # the period is over but the ledger has no expiry yet: still restricted, and flagged
    lapsed = await api.get("/trigger", entity="uscc:" + world["lapsed"].id, action="bid-government-procurement")
    assert lapsed["decision"] == "restricted"
    assert [x["period_over_expiry_pending"] for x in lapsed["listings"]] == [True]


async def test_bad_questions_are_refused_naming_the_parameter(api, world) -> None:
    unknown_action = await api.get("/trigger", expect=400, entity="uscc:" + world["listed"].id, action="fly-to-moon")
    assert unknown_action["parameter"] == "action"
    assert {"bid-government-procurement", "buy-plane-ticket"} <= set(unknown_action["known_actions"])
    missing = await api.get("/trigger", expect=400, entity="uscc:" + world["listed"].id)
    assert missing["parameter"] == "action"
    bad = await api.get("/trigger", expect=400, entity="12345", action="buy-plane-ticket")
    assert bad["parameter"] == "entity"
    extra = await api.get("/trigger", expect=400, entity="12345", action="buy-plane-ticket", colour="red")
    assert extra["parameter"] == "colour"


async def test_feedback_goes_through_the_sequencer_and_the_report_counts_it(settings, api, world) -> None:
    listed, trig = world["listed"], world["listing_event"]
    before = await api.get("/reports/measures", after=world["after"])

    def counts(report: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int, int]]:
        return {(d["department"], m["measure_code"]): (m["applied"], m["lifted"], m["not_applicable"])
                for d in report["departments"] for m in d["measures"]}

    refused = await _submit(settings, [
        feedback(listed, "sector-transport", "bar-government-procurement", trig, "applied", day(29)),
        feedback(listed, "sector-procurement", "no-such-measure", trig, "applied", day(29)),
    ])
    assert [(o["status"], [(r["field"], r["code"]) for r in o["reasons"]]) for o in refused] == [
        ("REJECTED", [("source_department", "feedback.not_implementing_department")]),
        ("REJECTED", [("measure_code", "feedback.unknown_measure")])]

    accepted = await _submit(settings, [
        feedback(listed, "sector-procurement", "bar-government-procurement", trig, "applied", day(29)),
        feedback(listed, "sector-transport", "restrict-high-consumption", trig, "applied", day(30)),
        feedback(listed, "sector-banking", "restrict-financing", trig, "not_applicable", day(31)),
        workload.debtor_delisted(listed, "（2026）豫10执T1号", day(56), reason="settlement_performed"),
        feedback(listed, "sector-procurement", "bar-government-procurement", trig, "lifted", day(57)),
    ])
    assert [o["reasons"] for o in accepted if o["status"] != "ACCEPTED"] == []
    after = await api.get("/reports/measures", after=_after(accepted))
    delta = {k: tuple(a - b for a, b in zip(v, counts(before).get(k, (0, 0, 0)), strict=True))
             for k, v in counts(after).items()}
    assert {k: v for k, v in delta.items() if v != (0, 0, 0)} == {
        ("sector-procurement", "bar-government-procurement"): (1, 1, 0),
        ("sector-transport", "restrict-high-consumption"): (1, 0, 0),
        ("sector-banking", "restrict-financing"): (0, 0, 1)}
    procurement = next(d for d in after["departments"] if d["department"] == "sector-procurement")
    row = next(m for m in procurement["measures"] if m["measure_code"] == "bar-government-procurement")
    assert row["measure_name"] == "限制参加政府采购活动" and "政府采购法" in row["legal_basis"]

    # the delisting lifted the restriction
    now = await api.get("/trigger", entity="uscc:" + listed.id, action="bid-government-procurement",
                        after=_after(accepted))
    assert (now["decision"], now["measures"], now["lists_in_force"]) == ("allowed", [], [])

    # filters and CSV
    window = await api.get("/reports/measures", department="sector-procurement", measure="bar-government-procurement",
                           **{"from": day(57).isoformat(), "to": day(57).isoformat()})
    assert [d["department"] for d in window["departments"]] == ["sector-procurement"]
    assert window["departments"][0]["lifted"] >= 1 and window["filters"]["from"] == day(57).isoformat()
    status, body, headers = await api.raw("/reports/measures", format="csv", department="sector-transport")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][:3] == ["实施部门", "惩戒措施编号", "惩戒措施"]
    assert any(r[0] == "sector-transport" and r[1] == "restrict-high-consumption" for r in rows[1:])
    bad = await api.get("/reports/measures", expect=400, measure="nope")
    assert bad["parameter"] == "measure"
    rows_in_view = helpers.pg_rows(settings, "select trigger_kind, department from views.punishment_feedback "
                                   "where trigger_event_id = %s order by acted_on", (trig,))
    assert rows_in_view[0] == ("dishonest_debtor", "sector-procurement")


def test_no_clear_id_number_in_any_answer() -> None:
    assert PERSON_IDS and not [p for p in PERSON_IDS for b in BODIES if p in b]


async def test_a_wage_arrears_listing_brings_every_measure_of_article_48(api, settings) -> None:  # type: ignore[no-untyped-def]
    """保障农民工工资支付条例 art. 48: a wage-listed employer is restricted in government procurement,
    financing and loans, market access, transport and travel (punishment_catalogue v2), not only bidding."""
    firm = workload.subjects(helpers.rng("trigger-wage"), 1, persons_share=0.0)[0]
    outcomes = await _submit(settings, [workload.wage_listed(firm, "许人社欠薪〔2026〕T9号", date(2026, 3, 2))])
    assert [o["reasons"] for o in outcomes if o["status"] != "ACCEPTED"] == []
    after = _after(outcomes)
    got = await api.get("/trigger", entity="uscc:" + firm.id, action="bid-government-procurement", after=after)
    assert (got["decision"], [m["id"] for m in got["measures"]]) == ("restricted", ["bar-government-procurement"])
    assert got["measures"][0]["because_of"] == ["wage_arrears"] and "第四十八条" in got["measures"][0]["legal_basis"]
    assert [x["ref"] for x in got["listings"]] == ["许人社欠薪〔2026〕T9号"]
    for action, measure in (("obtain-bank-credit", "restrict-financing"), ("market-access", "restrict-market-access"),
                            ("buy-plane-ticket", "restrict-transport-travel"), ("receive-subsidy", "restrict-government-funds")):
        answer = await api.get("/trigger", entity="uscc:" + firm.id, action=action, after=after)
        assert (answer["decision"], [m["id"] for m in answer["measures"]]) == ("restricted", [measure]), action
