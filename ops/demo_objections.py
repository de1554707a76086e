"""The demo's part for objections and repair applications (called from ops/demo.py; docs/domain-notes.md
§9): a member of the public files an objection and two repair applications on the public intake's
forms (as a browser does: the form page, its CSRF token and cookie, the POST), the credit office and
the market regulator answer them through the gateway (the objection forwarded, the penalty withdrawn,
the objection answered CORRECTED; one application accepted, repaired and granted, the other refused),
and the views show each step's date, the 异议处理中 mark while it was open, and no step overdue. The
organisation's credit report (ops/demo_report.py) then shows these matters step by step.

`file_form` is the browser's part, used by the tests too."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from datetime import timedelta
from typing import Any

import aiohttp

from ledger.platform import config
from ops import workload
from ops import workload_objections as wo
from ops.root import CLOCK

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def file_form(http: aiohttp.ClientSession, base: str, kind: str, fields: dict[str, str],
                    prefill: dict[str, str] | None = None) -> tuple[int, str]:
    """GET the form (its CSRF token and cookie), POST it with `fields`: (status, the receipt number on a
    303 to the receipt page, else the page's text). `http` keeps the cookie, as a browser does."""
    async with http.get(f"{base}/{kind}", params=prefill or {}) as r:
        page = await r.text()
    match = TOKEN.search(page)
    assert match, f"the {kind} form carries no CSRF token"
    async with http.post(f"{base}/{kind}", data={**fields, "csrf_token": match[1]}, allow_redirects=False) as r:
        if r.status == 303:
            return r.status, r.headers["Location"].rsplit("/", 1)[-1]
        return r.status, await r.text()


def browser() -> aiohttp.ClientSession:
    """A client that keeps the intake's cookie as a browser does (aiohttp's jar refuses cookies of a
    host given by its IP address, 127.0.0.1, unless told otherwise)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def identity_fields(subject: workload.Subject, record: str) -> dict[str, str]:
    return {"id_type": subject.id_type, "subject_id": subject.id, "subject_name": subject.name, "record": record,
            "contact_name": "王伟", "contact_phone": "13800000000"}


async def _gateway(http: aiohttp.ClientSession, s: config.Settings, pair: wo.Pair) -> dict[str, Any]:
    """A department's event over the gateway (its bearer token), waiting for the sequencer's outcome."""
    department, rec = pair
    token = (s.keys_dir / f"{department}.token").read_text().strip()
    body = json.dumps(rec, ensure_ascii=False, default=lambda o: o.isoformat()).encode()
    async with http.post(f"http://127.0.0.1:{s.gateway_port}/v1/events?timeout=20", data=body,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as r:
        return dict(await r.json())


async def show(s: config.Settings, rng: random.Random, say: Any, wait_for: Any) -> workload.Subject:
    """`wait_for(outcomes)` waits until the views hold the outcomes' events (the demo's own helper).
    Returns the organisation whose matters these are: the demo's credit report is of it."""
    from ledger.client import submit_as_departments

    today = CLOCK.today()
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    tag = str(rng.randrange(10**4, 10**5))
    decided = today - timedelta(days=130)
    wrong, repairable, recent = (
        workload.workload_penalty(rng, subject, "xc-samr", f"许市监罚〔{day.year}〕{x}{tag}号", day, "general")
        for x, day in (("Y", decided), ("Z", decided), ("R", today - timedelta(days=20))))
    outs = await submit_as_departments(s, [wrong, repairable, recent])
    await wait_for([o for o in outs if o["status"] == "ACCEPTED"])
    intake, api = f"http://127.0.0.1:{s.public_intake_port}", f"http://127.0.0.1:{s.api_port}"
    portal = f"http://127.0.0.1:{s.portal_port}"
    say(f"\n== Objections and repair applications (the public intake {intake}/, docs/domain-notes.md §9)")
    say(f"   {subject.name} has three penalties of the market regulator; its page: {portal}/entity/uscc:{subject.id}")
    async with browser() as http:
        async def get(path: str) -> Any:
            async with http.get(api + path) as r:
                return await r.json()

        status, objection = await file_form(http, intake, "objection", {
            **identity_fields(subject, wo.event_id(wrong)), "grounds": "error",
            "reason": "决定书载明罚款五千元，公示为五万元。", "evidence": "行政处罚决定书复印件"})
        say(f"   a member of the public files an objection to {wrong[1]['decision_no']} on the form: {status}, "
            f"receipt number {objection}")
        marked = await _wait_mark(get, subject, wo.event_id(wrong))
        say(f"   GET /entities/uscc:{subject.id}: the penalty is shown \"{marked}\" (the record itself unchanged)")
        steps = [wo.objection_forwarded(subject, objection, "xc-samr", today),
                 withdrawal := workload.penalty_revoked(subject, wrong[1]["decision_no"], today),
                 wo.objection_answered(subject, objection, "xc-samr", "CORRECTED", today, wo.event_id(withdrawal))]
        answers = [await _gateway(http, s, pair) for pair in steps]
        say("   the credit office forwards it to xc-samr, which withdraws the penalty and answers CORRECTED: "
            + ", ".join(f"{p[1]['envelope']['event_type']} {a.get('status')}" for p, a in zip(steps, answers, strict=True)))
        _, granted = await file_form(http, intake, "repair", {
            **identity_fields(subject, wo.event_id(repairable)), "statement": "已缴清罚款并完成整改。",
            "corrected_on": (today - timedelta(days=60)).isoformat(), "commitment": "yes"})
        _, refused = await file_form(http, intake, "repair", {
            **identity_fields(subject, wo.event_id(recent)), "statement": "已缴清罚款。", "commitment": "yes"})
        say(f"   two repair applications on the form: {granted} (a penalty of {decided}) and {refused} (of "
            f"{recent[1]['decision_date']}: its minimum publication period is not over)")
        repair = workload.repaired(subject, "administrative_penalty", repairable[1]["decision_no"], today,
                                   today - timedelta(days=60))
        steps = [wo.repair_accepted(subject, granted, today), repair,
                 wo.repair_decided(subject, granted, "GRANTED", today, wo.event_id(repair)),
                 wo.repair_refused(subject, refused, today, "最短公示期（三个月）尚未届满，暂不符合信用修复条件。")]
        answers += [await _gateway(http, s, pair) for pair in steps]
        say("   the credit office: " + ", ".join(f"{p[1]['envelope']['event_type']} {a.get('status')}"
                                                   for p, a in zip(steps, answers[3:], strict=True)))
        await wait_for([a for a in answers if a.get("status") == "ACCEPTED"])
        for path in (f"/objections/{objection}", f"/repair-applications/{granted}", f"/repair-applications/{refused}"):
            m = await get(path)
            say(f"   GET {path}: {m.get('status_title')} {m.get('result_title') or ''} — "
                + "; ".join(f"{x['step']} {x['done_on'] or '待办'}" + (f"（期限 {x['due']}）" if x["due"] else "")
                            for x in m.get("steps", [])))
        profile = await get(f"/entities/uscc:{subject.id}")
        shown = {p["ref"]: (p["status"], p["objection_mark"]) for p in profile["publicity"]}
        say(f"   the views now: {wrong[1]['decision_no']} {shown.get(wrong[1]['decision_no'])}, "
            f"{repairable[1]['decision_no']} {shown.get(repairable[1]['decision_no'])}")
        overdue = (await get("/publicity/short-deadlines"))["overdue"]
        say(f"   steps overdue today (/publicity/short-deadlines \"overdue\", the dashboard): {len(overdue['items'])}")
        say(f"   follow them on the portal: {portal}/follow?receipt={objection}")
    return subject


async def _wait_mark(get: Any, subject: workload.Subject, event_id: str, timeout: float = 30) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        profile = await get(f"/entities/uscc:{subject.id}")
        mark = next((p["objection_mark"] for p in profile.get("publicity", []) if p["event_id"] == event_id), None)
        if mark:
            return str(mark)
        await asyncio.sleep(0.5)
    return None
