"""Given the running stack (sequencer, projector, query API, portal, gateway, public intake), when a
subject objects to a record and applies for credit repair, then every step is a ledger event judged by
the sequencer and the views follow it (docs/domain-notes.md §9):

  * an objection's whole life: received three weeks ago at a department's window, so its forward is
    overdue (in the short-deadline report of the query API and on the dashboard) while the record is
    shown 异议处理中 (API and portal); forwarded late (a late act in the report); answered CORRECTED
    after the penalty's withdrawal, which changes the views (the penalty withdrawn, the mark gone);
  * two repair applications filed on the public intake's forms: one refused with its reason, one
    granted with the CreditRepaired that ended the penalty's publication;
  * the forms: Chinese, labelled, no script; CSRF refused (403), bad input named per field (400), the
    sequencer's refusal on the form (422), flooding refused per address (429 with Retry-After); no
    page and no log line with a clear ID number.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ledger.client import submit_as_departments
from ledger.domain import identity
from ledger.intake.gateway.fairness import Limits
from ledger.intake.gateway.kafka import Ledger
from ledger.intake.public import app as public_app
from ledger.platform.kafka_access import PUBLIC_INTAKE, access
from ledger.platform.kafka_util import KafkaClients
from ledger.rules import loader
from ops import demo_objections, workload
from ops import workload_objections as wo
from ops.root import CLOCK
from tests import helpers, portal_world

OFFICE = loader.load_objections().credit_office


async def _submit(settings, *pairs: wo.Pair) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return await submit_as_departments(settings, list(pairs))


async def _accepted(settings, *pairs: wo.Pair) -> None:  # type: ignore[no-untyped-def]
    for pair in pairs:  # one at a time: each step follows the one before
        [out] = await _submit(settings, pair)
        assert out["status"] == "ACCEPTED", (pair[1]["envelope"]["event_type"], out["reasons"])
    await helpers.projected(settings)


async def _json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as r:
        assert r.status == 200, (url, r.status, await r.text())
        return await r.json()


async def _html(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as r:
        body = await r.text()
        assert r.status == 200, (url, r.status, body[:500])
        facts = portal_world.PageFacts(body)
        assert facts.lang == "zh-CN" and facts.scripts == 0 and facts.unlabelled() == [], url
        return body


def _penalties(rng: Any, subject: workload.Subject, *ages: int) -> list[wo.Pair]:
    today = helpers.today()
    return [workload.workload_penalty(rng, subject, "xc-samr", f"许市监罚〔{(today - timedelta(days=a)).year}〕"
                                      f"O{rng.randrange(10**6)}号", today - timedelta(days=a), "general") for a in ages]


def _mark(profile: dict[str, Any], event_id: str) -> Any:
    return next(p["objection_mark"] for p in profile["publicity"] if p["event_id"] == event_id)


async def test_an_objection_s_whole_life_with_an_overdue_step_and_a_correction(settings, services) -> None:
    rng = helpers.rng("objection-life")
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    today = helpers.today()
    [wrong] = _penalties(rng, subject, 120)
    filed = wo.objection_filed(subject, wo.event_id(wrong), today - timedelta(days=21), department="xc-samr")
    receipt = wo.event_id(filed)
    await _accepted(settings, wrong, filed)
    api, portal = f"http://127.0.0.1:{settings.api_port}", f"http://127.0.0.1:{settings.portal_port}"
    async with aiohttp.ClientSession() as http:
        profile = await _json(http, f"{api}/entities/uscc:{subject.id}")
        assert _mark(profile, wo.event_id(wrong)) == "异议处理中"
        assert [o["receipt_no"] for o in profile["objections"]] == [receipt]
        assert "异议处理中" in await _html(http, f"{portal}/entity/uscc:{subject.id}")
        report = await _json(http, f"{api}/publicity/short-deadlines")
        overdue = [x for x in report["overdue"]["items"] if x["receipt_no"] == receipt]
        assert [(x["rule"], x["department"]) for x in overdue] == [("objection_forward", OFFICE)]
        assert receipt in await _html(http, f"{portal}/dashboard")

        await _accepted(settings, wo.objection_forwarded(subject, receipt, "xc-samr", today))
        report = await _json(http, f"{api}/publicity/short-deadlines?rule=objection_forward")
        assert [x["event_id"] for x in report["late"] if x["ref"] == receipt]  # the forward came late
        overdue = await _json(http, f"{api}/publicity/short-deadlines")
        assert {x["rule"] for x in overdue["overdue"]["items"] if x["receipt_no"] == receipt} == {"objection_answer"}

        withdrawal = workload.penalty_revoked(subject, wrong[1]["decision_no"], today)
        not_yet = wo.objection_answered(subject, receipt, "xc-samr", "CORRECTED", today, "some-other-event")
        [refused] = await _submit(settings, not_yet)
        assert (refused["status"], refused["reasons"][0]["code"]) == ("REJECTED", "objection.not_a_correction")
        await _accepted(settings, withdrawal, wo.objection_answered(subject, receipt, "xc-samr", "CORRECTED", today,
                                                                    wo.event_id(withdrawal)))
        m = await _json(http, f"{api}/objections/{receipt}")
        assert (m["status"], m["result"], m["correcting_event_id"]) == ("answered", "CORRECTED", wo.event_id(withdrawal))
        assert (m["forward_late"], m["answer_late"], m["source_late"]) == (True, True, False)
        assert [s["done_on"] for s in m["steps"]] == [str(today - timedelta(days=21)), str(today), str(today), str(today)]
        profile = await _json(http, f"{api}/entities/uscc:{subject.id}")
        row = next(p for p in profile["publicity"] if p["event_id"] == wo.event_id(wrong))
        assert (row["status"], row["objection_mark"]) == ("revoked", None)  # corrected: withdrawn, the mark gone
        page = await _html(http, f"{portal}/follow?receipt={receipt}")
        assert "已更正" in page and "已答复" in page
        report = await _json(http, f"{api}/publicity/short-deadlines")
        assert not [x for x in report["overdue"]["items"] if x["receipt_no"] == receipt]
    rows = helpers.pg_rows(settings, "select status, result, answered_by from views.objections where receipt_no = %s",
                           (receipt,))
    assert rows == [("answered", "CORRECTED", "xc-samr")]


async def test_repair_applications_one_refused_and_one_granted(settings, services) -> None:
    rng = helpers.rng("repair-applications")
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    today = helpers.today()
    repairable, recent = _penalties(rng, subject, 130, 15)
    await _accepted(settings, repairable, recent)
    intake, api = f"http://127.0.0.1:{settings.public_intake_port}", f"http://127.0.0.1:{settings.api_port}"
    async with demo_objections.browser() as http:
        fields = {"statement": "已缴清罚款并完成整改。", "commitment": "yes"}
        status, granted = await demo_objections.file_form(
            http, intake, "repair", {**demo_objections.identity_fields(subject, wo.event_id(repairable)), **fields})
        assert status == 303, granted
        status, refused = await demo_objections.file_form(
            http, intake, "repair", {**demo_objections.identity_fields(subject, wo.event_id(recent)), **fields})
        assert status == 303, refused
        status, page = await demo_objections.file_form(
            http, intake, "repair", {**demo_objections.identity_fields(subject, "no-such-record"), **fields})
        assert status == 422 and "该主体没有事件编号为 no-such-record 的信用记录" in page
        await helpers.projected(settings)
        repair = workload.repaired(subject, "administrative_penalty", repairable[1]["decision_no"], today,
                                   today - timedelta(days=30))
        reason = "最短公示期尚未届满，暂不符合信用修复条件。"
        await _accepted(settings, wo.repair_accepted(subject, granted, today), repair,
                        wo.repair_decided(subject, granted, "GRANTED", today, wo.event_id(repair)),
                        wo.repair_refused(subject, refused, today, reason))
        g = await _json(http, f"{api}/repair-applications/{granted}")
        assert (g["status"], g["result"], g["repair_event_id"], g["filed_by"]) == \
            ("decided", "GRANTED", wo.event_id(repair), "public")
        assert g["accept_late"] is False and g["decide_late"] is False and g["regime"] in ("order58", "order36")
        r = await _json(http, f"{api}/repair-applications/{refused}")
        assert (r["status"], r["refusal_reason"], r["result"]) == ("refused", reason, None)
        profile = await _json(http, f"{api}/entities/uscc:{subject.id}")
        status_of = {p["event_id"]: p["status"] for p in profile["publicity"]}
        assert (status_of[wo.event_id(repairable)], status_of[wo.event_id(recent)]) == ("repaired", "published")
        report = await _json(http, f"{api}/publicity/short-deadlines?rule=repair_decide")
        assert any(d["rule"] == "repair_decide" for d in report["departments"])
        # a grant without the repair the rules allow is refused: the recent penalty cannot be repaired yet
        again = wo.repair_applied(subject, wo.event_id(recent), today)
        await _accepted(settings, again, wo.repair_accepted(subject, wo.event_id(again), today))
        [early] = await _submit(settings, workload.repaired(subject, "administrative_penalty", recent[1]["decision_no"],
                                                            today))
        [grant] = await _submit(settings, wo.repair_decided(subject, wo.event_id(again), "GRANTED", today, early["event_id"]))
        assert early["reasons"][0]["code"] == "repair.before_minimum_period"
        assert grant["reasons"][0]["code"] == "repair.not_repaired"


async def test_the_forms_are_chinese_protected_and_name_every_problem(settings, services) -> None:
    intake = f"http://127.0.0.1:{settings.public_intake_port}"
    person = "411002199001010012"
    async with demo_objections.browser() as http:
        for path in ("/", "/objection", "/repair?record=evt-1&name=许昌瑞祥食品有限公司&id=91411002MA5FMHPPX6"):
            async with http.get(intake + path) as r:
                body = await r.text()
                facts = portal_world.PageFacts(body)
                assert r.status == 200 and facts.lang == "zh-CN" and facts.scripts == 0 and facts.unlabelled() == []
        assert 'value="91411002MA5FMHPPX6"' in body and 'value="evt-1"' in body
        fields = {"id_type": "RIC", "subject_id": person, "subject_name": "张伟", "record": "evt-1", "grounds": "error",
                  "reason": "", "contact_name": "张伟", "contact_phone": "12"}
        async with http.post(intake + "/objection", data=fields, allow_redirects=False) as r:  # no token
            assert r.status == 403 and "页面已过期或来源不明" in await r.text()
        status, page = await demo_objections.file_form(http, intake, "objection", fields)
        assert status == 400
        assert "请填写异议理由" in page and "联系电话格式有误" in page and person not in page
        async with http.get(intake + "/objection") as r:
            token = demo_objections.TOKEN.search(await r.text())[1]  # type: ignore[index]
        async with http.post(intake + "/objection", data={**fields, "csrf_token": token},
                             headers={"Origin": "http://evil.example"}, allow_redirects=False) as r:
            assert r.status == 403
    async with demo_objections.browser() as other, other.post(
            intake + "/objection", data={**fields, "csrf_token": token}, allow_redirects=False) as r:
        assert r.status == 403  # a token without its browser's cookie
    log = (settings.stack_dir / "logs" / "public-intake.log").read_text(encoding="utf-8")
    assert person not in log and identity.ID_NUMBER_RUN.search(log) is None


@pytest.fixture
async def tight_intake(settings, services):  # type: ignore[no-untyped-def]
    """A public intake of its own, in this process, allowing two forms per address then one a minute."""
    rules = loader.load()
    app = public_app.make_app(settings, Ledger(KafkaClients(access(settings, PUBLIC_INTAKE)), settings.keys_dir,
                                               intake=public_app.INTAKE), rules.departments, CLOCK,
                              limits=Limits(1 / 60, 2, 0))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_flooding_is_refused_per_address_with_a_chinese_429(tight_intake) -> None:
    statuses = []
    async with demo_objections.browser() as http:
        for _ in range(3):
            status, page = await demo_objections.file_form(http, tight_intake, "objection", {"record": "x"})
            statuses.append(status)
        assert statuses == [400, 400, 429]
        assert "您提交得太频繁了" in page
        async with http.get(tight_intake + "/objection") as r:
            token = demo_objections.TOKEN.search(await r.text())[1]  # type: ignore[index]
        async with http.post(tight_intake + "/objection", data={"csrf_token": token}) as r:
            assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
