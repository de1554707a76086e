"""Given the running stack, when registers report key persons and departments record events about
entities of 禹州市, 长葛市 and of an old county code, then every view row holds the county from the code
(the old code under today's county), the lists and the coverage filter by county in the query API and
the portal, coverage of key natural persons is measured per group against the registers beside the
legal persons, each county's page shows its own figures and the lists' trend, and the ledger refuses a
group reported by a department that does not keep its register or for an organisation."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest
from stdnum.cn import ric as stdnum_ric

from ledger.client import submit_as_departments
from ledger.domain import identity
from ops import workload
from tests import helpers, portal_world

YUZHOU, CHANGGE, JIANAN = "411081", "411082", "411003"


def _person(first17: str, name: str) -> workload.Subject:
    return workload.Subject(first17 + stdnum_ric.calc_check_digit(first17 + "0"), "RIC", name)


@pytest.fixture(scope="module")
async def world(settings, services) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rng = helpers.rng("counties")
    marker = portal_world.chinese_tag(rng.randrange(10_000, 99_999))
    today = helpers.today()
    base = workload.subjects(rng, 1, persons_share=0.0)[0]
    firm = dataclasses.replace(base, id=workload.make_uscc(rng, "91", YUZHOU), name=f"禹州{marker}药业有限公司")
    quiet = dataclasses.replace(base, id=workload.make_uscc(rng, "91", YUZHOU), name=f"禹州{marker}农机有限公司")
    lawyer = _person(f"{YUZHOU}19850304{rng.randrange(100, 999)}", f"钱{marker}")
    teacher = _person(f"{YUZHOU}19900506{rng.randrange(100, 999)}", f"孙{marker}")
    both = _person(f"{CHANGGE}19780910{rng.randrange(100, 999)}", f"周{marker}")
    old = _person(f"411023{1960 + rng.randrange(0, 20)}0101{rng.randrange(100, 999)}", f"吴{marker}")
    events = [
        workload.registered(firm, date(2020, 1, 2)), workload.registered(quiet, date(2021, 3, 4)),
        workload.key_person_registered(lawyer, "lawyer", date(2019, 5, 6)),
        workload.key_person_registered(teacher, "teacher", date(2018, 9, 1)),
        workload.key_person_registered(both, "lawyer", date(2016, 4, 1)),
        workload.debtor_listed(firm, f"（{today.year}）豫1081执{marker}号", today - timedelta(days=3)),
        ("xc-eco-env", workload.penalty(rng, lawyer, "xc-eco-env", rng.randrange(10**6, 10**7), decided=today)),
        workload.commitment(both, today - timedelta(days=1)),
        workload.debtor_listed(old, f"（{today.year}）豫10执{marker}号", today - timedelta(days=2)),
    ]
    outcomes = await submit_as_departments(settings, events)
    assert [(o["event_id"], o["reasons"]) for o in outcomes if o["status"] != "ACCEPTED"] == []
    # another register adds its group to a person already registered
    [added] = await submit_as_departments(settings,
                                          [workload.key_person_registered(both, "enterprise_executive", today)])
    assert added["status"] == "ACCEPTED", added["reasons"]
    await helpers.projected(settings)

    def entity(s: workload.Subject) -> str:
        checked = identity.check_ric(s.id) if s.id_type == "RIC" else identity.check_uscc(s.id)
        return identity.entity_key(checked, settings.id_pepper)

    subjects = {"firm": firm, "quiet": quiet, "lawyer": lawyer, "teacher": teacher, "both": both, "old": old}
    return {"marker": marker, "subjects": subjects, "entity": {k: entity(s) for k, s in subjects.items()}}


@pytest.fixture(scope="module")
async def http(settings, services):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session, portal_world.Portal(session, f"http://127.0.0.1:{settings.portal_port}")


async def _api(settings: Any, session: aiohttp.ClientSession, path: str, expect: int = 200, **params: str) -> Any:
    async with session.get(f"http://127.0.0.1:{settings.api_port}{path}", params=params) as r:
        assert r.status == expect, (path, params, r.status, await r.text())
        return await r.json()


async def test_every_row_holds_the_county_of_the_code(settings, world) -> None:
    rows = dict(helpers.pg_rows(settings, "select entity_id, county from views.entities where entity_id = any(%s)",
                                (list(world["entity"].values()),)))
    want = {"firm": YUZHOU, "quiet": YUZHOU, "lawyer": YUZHOU, "teacher": YUZHOU, "both": CHANGGE, "old": JIANAN}
    assert {k: rows[world["entity"][k]] for k in want} == want  # 411023 许昌县 is today's 建安区
    listed = helpers.pg_rows(settings, "select entity_id, county from views.list_entries where entity_id = any(%s)",
                             ([world["entity"]["firm"], world["entity"]["old"]],))
    assert sorted(c for _, c in listed) == sorted([YUZHOU, JIANAN])
    penalty = helpers.pg_rows(settings, "select county from views.publicity where entity_id = %s",
                              (world["entity"]["lawyer"],))
    assert penalty == [(YUZHOU,)]
    groups = dict(helpers.pg_rows(settings, "select entity_id, key_persons from views.entities where entity_id = any(%s)",
                                  ([world["entity"][k] for k in ("lawyer", "teacher", "both", "firm")],)))
    assert groups[world["entity"]["lawyer"]] == ["lawyer"] and groups[world["entity"]["firm"]] == []
    assert groups[world["entity"]["both"]] == ["enterprise_executive", "lawyer"]


async def test_coverage_of_key_natural_persons_per_group_and_county(settings, http, world) -> None:
    session, _ = http
    cov = await _api(settings, session, "/coverage", county=YUZHOU)
    key = cov["key_natural_persons"]
    assert cov["county"] == YUZHOU and (key["registered"], key["with_records"]) == (2, 1) and key["share"] == 0.5
    assert key["meets_target"] is False and key["target"] == 0.8
    groups = {g["category"]: g for g in key["groups"]}
    assert (groups["lawyer"]["registered"], groups["lawyer"]["with_records"], groups["lawyer"]["name"]) == (1, 1, "律师")
    assert (groups["teacher"]["registered"], groups["teacher"]["with_records"]) == (1, 0)
    assert groups["civil_servant"]["registered"] == 0 and groups["civil_servant"]["share"] is None
    enterprise = next(d for d in cov["databases"] if d["category"] == "enterprise")
    assert enterprise["registered"] >= 2 and enterprise["with_records"] >= 1 and enterprise["target"] == 0.9
    changge = (await _api(settings, session, "/coverage", county=CHANGGE))["key_natural_persons"]
    assert (changge["registered"], changge["with_records"]) == (1, 1)  # one person, counted once in two groups
    assert {g["category"]: g["registered"] for g in changge["groups"]}["enterprise_executive"] == 1
    city = (await _api(settings, session, "/coverage"))["key_natural_persons"]
    assert city["registered"] >= 3
    bad = await _api(settings, session, "/coverage", expect=400, county="411099")
    assert bad["parameter"] == "county"


async def test_lists_filter_by_county_in_the_api_and_the_portal(settings, http, world) -> None:
    session, portal = http
    found = await _api(settings, session, "/lists", county=YUZHOU, size="500")
    assert found["items"] and {i["county"] for i in found["items"]} == {YUZHOU}
    assert world["entity"]["firm"] in {i["entity_id"] for i in found["items"]}
    page = await portal.page("/lists", county=JIANAN)
    assert world["subjects"]["old"].name in page and world["subjects"]["firm"].name not in page
    assert '<option value="411003" selected>建安区</option>' in page
    assert 'data-parameter="county"' in await portal.page("/lists", expect=400, county="郑州")


async def test_each_county_has_its_own_page(settings, http, world) -> None:
    _, portal = http
    index = await portal.page("/counties")
    for name in ("魏都区", "建安区", "鄢陵县", "襄城县", "禹州市", "长葛市", "许昌经济技术开发区", "市本级", "市外"):
        assert name in index
    assert f'href="/county/{YUZHOU}"' in index
    page = await portal.page(f"/county/{YUZHOU}")
    assert "<h1>禹州市</h1>" in page and world["subjects"]["firm"].name in page.split('id="latest"', 1)[1]
    key = page.split('id="coverage-key-persons"', 1)[1].split("</table>", 1)[0]
    lawyer_row = key.split("<td>律师</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>1</td><td>1</td><td>100.0%</td>" in lawyer_row
    trend = page.split('id="trend-table"', 1)[1].split("</table>", 1)[0]
    month = helpers.today() - timedelta(days=3)
    this_month = trend.split(f"<td>{month:%Y-%m}</td>", 1)[1].split("</tr>", 1)[0]
    assert int(this_month.split("<td>", 2)[1].split("<", 1)[0]) >= 1  # the firm's listing this month
    assert trend.count("<tr>") == 12 + 1
    # the same series drawn on the server: an SVG with the month's point, no script
    listed = int(this_month.split("<td>", 2)[1].split("<", 1)[0])
    chart = page.split('id="trend-chart"', 1)[1].split("</figure>", 1)[0]
    assert chart.lstrip(">").lstrip().startswith("<svg") and "<script" not in chart
    assert f"列入黑名单 {month:%Y-%m}：{listed}条" in chart
    assert "没有这个县" in await portal.page("/county/410102", expect=404)
    other = await portal.page(f"/county/{CHANGGE}")
    assert world["subjects"]["firm"].name not in other
    clear = [s.id for s in world["subjects"].values() if s.id_type == "RIC"]
    assert all(c not in body for c in clear for body in portal.bodies)


async def test_the_ledger_refuses_a_group_from_another_register_or_for_an_organisation(settings, world) -> None:
    lawyer, firm = world["subjects"]["teacher"], world["subjects"]["quiet"]
    wrong_register = ("xc-samr", dict(workload.key_person_registered(lawyer, "lawyer", helpers.today())[1]))
    wrong_register[1]["envelope"] = {**wrong_register[1]["envelope"], "source_department": "xc-samr"}
    organisation = workload.key_person_registered(firm, "teacher", helpers.today())
    outcomes = await submit_as_departments(settings, [wrong_register, organisation])
    assert [(o["status"], o["reasons"][0]["field"], o["reasons"][0]["code"]) for o in outcomes] == [
        ("REJECTED", "key_person_categories", "key_person.not_register"),
        ("REJECTED", "key_person_categories", "key_person.not_a_person")]
