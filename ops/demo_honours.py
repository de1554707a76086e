"""The demo's part for the red list (called from ops/demo.py): an honour awarded years ago whose
validity ends before today, expired by the running scheduler; an honour revoked by the department that
awarded it; an honour suspended when its holder is black-listed by the court; an A-level tax rating on
the red list and level D implied by a major tax violation listing; and a wage-arrears listing barred
from government procurement (保障农民工工资支付条例 art. 48)."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import date, timedelta
from typing import Any

import aiohttp

from ledger.client import submit_as_departments
from ledger.platform import config
from ops import workload
from ops.root import CLOCK


def _honour(subject: workload.Subject, on: date, doc: str) -> tuple[str, dict[str, Any]]:
    dept, rec = workload.honour(subject, on)
    return dept, {**rec, "document_no": doc, "valid_until": None}  # the kind's default validity applies


async def show(s: config.Settings, rng: random.Random, say: Any, wait_for: Any, timeout: float = 75) -> None:
    """`wait_for(outcomes)` waits until the views hold the outcomes' events (the demo's own helper)."""
    lapsed, revoked, listed, rated, wage = workload.subjects(rng, 5, persons_share=0.0)
    tag = rng.randrange(10**4, 10**5)
    today = CLOCK.today()
    old_award = today.replace(year=today.year - 3)  # 守合同重信用: two years by default, so over a year ago
    first = [_honour(lapsed, old_award, f"许政〔{old_award.year}〕{tag}号"),
             _honour(revoked, today - timedelta(days=90), f"许政〔{today.year}〕{tag}号"),
             _honour(listed, today - timedelta(days=60), f"许政〔{today.year}〕{tag + 1}号"),
             workload.tax_rated(rated, today.year - 1, "A", today - timedelta(days=30))]
    then = [workload.honour_revoked(revoked, f"许政〔{today.year}〕{tag}号", today - timedelta(days=5)),
            workload.debtor_listed(listed, f"（{today.year}）豫10执H{tag}号", today - timedelta(days=3), ground=1),
            workload.tax_listed(rated, f"许税稽罚〔{today.year}〕H{tag}号", today - timedelta(days=2)),
            workload.wage_listed(wage, f"许人社欠薪〔{today.year}〕H{tag}号", today - timedelta(days=2))]
    outs = await submit_as_departments(s, first)
    outs += await submit_as_departments(s, then)
    say("\n== The red list: validity, expiry, revocation, suspension (docs/domain-notes.md §13)")
    for (_, rec), out in zip(first + then, outs, strict=True):
        say(f"   {rec['envelope']['event_type']:<22} {rec['envelope']['subject']['name']}: {out['status']} "
            + "; ".join(f"{r['field']}: {r['message']}" for r in out["reasons"]))
    await wait_for([o for o in outs if o["status"] == "ACCEPTED"])
    base = f"http://127.0.0.1:{s.api_port}"
    async with aiohttp.ClientSession() as http:
        async def get(path: str, **params: str) -> Any:
            async with http.get(base + path, params=params) as r:
                return await r.json()

        async def red(subject: workload.Subject) -> dict[str, Any]:
            items = (await get("/lists", entity=f"uscc:{subject.id}", colour="red"))["items"]
            return items[0] if items else {}

        say(f"   {lapsed.name}: awarded {old_award}, no end stated, so the kind's default two years; waiting for "
            f"the running scheduler (a pass every 60 s) to expire it ...")
        deadline = time.monotonic() + timeout
        while (entry := await red(lapsed)).get("status") != "expired" and time.monotonic() < deadline:
            await asyncio.sleep(1)
        say(f"   GET /lists?entity=uscc:{lapsed.id}&colour=red -> {entry.get('status')} on {entry.get('ended_on')} "
            f"(legal end {entry.get('legal_end')}, HonourExpired from ledger-scheduler)")
        for subject, what in ((revoked, "revoked by the awarding department"),
                              (listed, "suspended when the court listed its holder; the awarding body decides"),
                              (rated, "the A-level entry, suspended by the major tax violation listing")):
            entry = await red(subject)
            say(f"   {subject.name}: red-list entry {entry.get('ref')} -> {entry.get('status')} ({what})")
        profile = await get(f"/entities/uscc:{rated.id}")
        reasons = [r for r in profile.get("grade_reasons") or [] if str(r.get("code", "")).startswith("tax.")]
        say(f"   {rated.name}: grade {profile.get('grade')}, tax level: "
            + "; ".join(f"{r['code']} {r['text']}" for r in reasons))
        answer = await get("/trigger", entity=f"uscc:{wage.id}", action="bid-government-procurement")
        say(f"   /trigger {wage.name} (wage-arrears list) bid-government-procurement: {answer.get('decision')} "
            f"({', '.join(m['id'] for m in answer.get('measures', []))})")
