"""The demo's part for the credit office's own work (called from ops/demo.py): key natural persons
reported by their registers, listings of last month in several counties (one under an old county code),
then last month's 红黑榜 drafted, reviewed and approved with the office's command (第N期 on the ledger;
a later run of the demo, finding the month released, publishes a correction of it instead), its PDF
saved, coverage of key natural persons beside the legal persons, and one county's page."""

from __future__ import annotations

import dataclasses
import random
import re
from datetime import timedelta
from typing import Any

import aiohttp
from stdnum.cn import ric as stdnum_ric

from ledger.client import submit_as_departments
from ledger.domain import releases
from ledger.platform import config
from ledger.rules import loader
from ops import workload
from ops.root import CLOCK
from projections.releases import command as release_command
from projections.releases import drafts

KEY_GROUPS = ("lawyer", "teacher", "medical_staff", "civil_servant", "enterprise_executive")
PEOPLE = ("张", "王", "李", "赵", "刘", "陈", "杨", "黄")


def _person(rng: random.Random, address: str) -> workload.Subject:
    first17 = address + f"{1965 + rng.randrange(0, 35)}0{rng.randrange(1, 10)}1{rng.randrange(0, 10)}" \
        f"{rng.randrange(100, 999)}"
    return workload.Subject(first17 + stdnum_ric.calc_check_digit(first17 + "0"), "RIC",
                            rng.choice(PEOPLE) + rng.choice(workload.GIVEN) + rng.choice(workload.GIVEN))


async def show(s: config.Settings, rng: random.Random, say: Any, wait_for: Any) -> None:
    """`wait_for(outcomes)` waits until the views hold the outcomes' events (the demo's own helper)."""
    rules = loader.load()
    today = CLOCK.today()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    period = releases.period_of(f"{last_month:%Y-%m}")
    say("\n== Key natural persons: the registers report their groups (国办发〔2016〕98号; docs/domain-notes.md §12)")
    counties = ("411002", "411003", "411024", "411025", "411081", "411082")
    people = [_person(rng, rng.choice(counties)) for _ in range(12)]
    registered = [workload.key_person_registered(p, KEY_GROUPS[i % len(KEY_GROUPS)], today - timedelta(days=400))
                  for i, p in enumerate(people)]
    # most of them have a credit record: a penalty, a commitment
    records = [("xc-eco-env", workload.penalty(rng, p, "xc-eco-env", rng.randrange(10**6, 10**7), decided=today))
               for p in people[:6]] + [workload.commitment(p, today) for p in people[6:9]]
    wrong = ("xc-samr", {**workload.key_person_registered(people[0], "lawyer", today)[1]})
    wrong[1]["envelope"] = {**wrong[1]["envelope"], "source_department": "xc-samr"}
    outs = await submit_as_departments(s, registered + records)
    say(f"   {len(registered)} persons in {len(KEY_GROUPS)} groups, {len(records)} of them with a credit record: "
        f"{sorted({o['status'] for o in outs})}")
    [refused] = await submit_as_departments(s, [wrong])
    say(f"   the market regulator reporting a lawyer: {refused['status']} "
        + "; ".join(f"{r['field']}: {r['message']}" for r in refused["reasons"]))

    say(f"\n== {period.label}: listings in several counties, then the office's 红黑榜 (docs/domain-notes.md §11)")
    firms = [dataclasses.replace(x, id=workload.make_uscc(rng, "91", county))
             for x, county in zip(workload.subjects(rng, 4, persons_share=0.0), ("411081", "411082", "411024", "411002"),
                                  strict=True)]
    old_code = _person(rng, "411023")  # 许昌县 until 2016: today's 建安区
    tag = rng.randrange(10**4, 10**5)
    listed = [workload.debtor_listed(f, f"（{last_month.year}）豫10执{tag}{i}号", last_month + timedelta(days=3 + i))
              for i, f in enumerate([*firms[:3], old_code])]
    listed += [workload.wage_listed(firms[3], f"许人社欠薪〔{last_month.year}〕{tag}号", last_month + timedelta(days=9)),
               workload.honour(workload.subjects(rng, 1, persons_share=0.0)[0], last_month + timedelta(days=11))]
    outs += await submit_as_departments(s, listed)
    await wait_for([o for o in outs if o["status"] == "ACCEPTED"])
    async with await release_command.connect(s) as conn:
        cur = await conn.execute("select max(release_no) from views.releases where period = %s", (period.text,))
        (latest,) = await cur.fetchone()
        corrects = None
        if latest is not None:
            corrects = latest  # the month is released: this run's listings reach the public as a correction
            say(f"   {period.label} was released already (第{latest}期): this run drafts a correction of it")
        draft = await drafts.draw(conn, rules, period.text, "李明", CLOCK.now(), corrects)
        say(f"   drafted by 李明: draft {draft.id}, {draft['entries']} entries (black {draft['black']}, red "
            f"{draft['red']}), content SHA-256 {draft['content_sha256'][:16]}…")
        await drafts.review(conn, draft.id, "王芳", CLOCK.now(), "已与各认定部门核对")
        say("   reviewed by 王芳; approved by 张强:")
    note = "补列本月迟报的名单条目" if corrects else None
    done = await release_command.approve(s, rules, draft.id, "张强", CLOCK, note)
    base = f"http://127.0.0.1:{s.portal_port}"
    say(f"   第{done['release_no']}期 on the ledger at {done['partition']}:{done['offset']} ({done['status']}), "
        f"signed by xc-credit-office; published at {base}/releases/{done['release_no']}")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/releases/{done['release_no']}.pdf") as r:
            pdf = await r.read()
        target = s.stack_dir / f"demo-release-{done['release_no']}.pdf"
        target.write_bytes(pdf)
        say(f"   GET /releases/{done['release_no']}.pdf: {r.status}, {len(pdf):,} bytes (Chinese font embedded), "
            f"saved to {target}; CSV: {base}/releases/{done['release_no']}.csv")
        async with http.get(f"http://127.0.0.1:{s.api_port}/coverage") as r:
            cov = await r.json()
        async with http.get(f"{base}/county/411081") as r:
            page = await r.text()
    legal, key = cov["legal_persons"], cov["key_natural_persons"]
    say(f"\n== Coverage against the register feed: legal persons {legal['with_records']}/{legal['registered']} "
        f"({_pct(legal['share'])}, target 90 %), key natural persons {key['with_records']}/{key['registered']} "
        f"({_pct(key['share'])}, target 80 %)")
    for g in key["groups"]:
        if g["registered"]:
            say(f"   {g['name']}: {g['with_records']}/{g['registered']} ({_pct(g['share'])})")
    trend = page.split('id="trend-table"', 1)[1].split("</table>", 1)[0]
    months = re.findall(r"<td>([0-9]{4}-[0-9]{2})</td><td>([0-9]+)</td><td>([0-9]+)</td>", trend)
    say(f"\n== A county's own page: {base}/county/411081 (禹州市; every county: {base}/counties)")
    say("   the lists' trend, month: black listed / red listed: "
        + ", ".join(f"{m} {b}/{r}" for m, b, r in months[-3:]))


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"
