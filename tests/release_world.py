"""A world for the 红黑榜 release tests (plain HTTP and browser): in a month that is over, a company of
禹州市 and a person of 长葛市 on the court's list, a person whose ID number carries the old code of
许昌县 (today's 建安区), a company of 魏都区 on the wage-arrears list and an honoured company of 建安区,
each with a name no other test uses, submitted through the real sequencer and projected; and the
credit office's command run as the office runs it (`python -m projections.releases ...`)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from stdnum.cn import ric as stdnum_ric

from ledger.client import submit_as_departments
from ledger.domain import identity
from ledger.domain.rules import add_months
from ledger.platform import config
from ops import workload
from tests import helpers, portal_world

ROOT = Path(__file__).resolve().parents[1]


def release_command(*args: str, expect: int = 0) -> str:
    """Run ``python -m projections.releases ARGS`` on the test stack; its output (stdout and stderr)."""
    run = subprocess.run([sys.executable, "-m", "projections.releases", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = run.stdout + run.stderr
    assert run.returncode == expect, (args, run.returncode, out)
    return out


def draft_id(output: str) -> int:
    m = re.search(r"^draft ([0-9]+):", output, re.M)
    assert m, output
    return int(m.group(1))


def _person(rng: Any, address: str, name: str) -> workload.Subject:
    birth = date(1970, 1, 1) + timedelta(days=rng.randrange(0, 30 * 365))
    first17 = address + birth.strftime("%Y%m%d") + f"{rng.randrange(0, 1000):03d}"
    return workload.Subject(first17 + stdnum_ric.calc_check_digit(first17 + "0"), "RIC", name)


async def build(settings: config.Settings, name: str, months_back: int) -> dict[str, Any]:
    rng = helpers.rng(name)
    tag = rng.randrange(10_000, 99_999)
    marker = portal_world.chinese_tag(tag)
    first = add_months(helpers.today().replace(day=1), -months_back)
    period = f"{first:%Y-%m}"
    base = workload.subjects(rng, 1, persons_share=0.0)[0]
    yuzhou = dataclasses.replace(base, id=workload.make_uscc(rng, "91", "411081"), name=f"禹州{marker}钧瓷有限公司")
    weidu = dataclasses.replace(base, id=workload.make_uscc(rng, "91", "411002"), name=f"许昌{marker}建筑工程有限公司")
    honoured = dataclasses.replace(base, id=workload.make_uscc(rng, "91", "411003"), name=f"许昌{marker}诚信商贸有限公司")
    changge = _person(rng, "411082", f"李{marker}")
    old_county = _person(rng, "411023", f"赵{marker}")  # 许昌县 (1986-2016): today's 建安区
    late_entry = dataclasses.replace(base, id=workload.make_uscc(rng, "91", "411025"), name=f"襄城{marker}物流有限公司")
    cases = {s.id: f"（{first.year}）豫10执{tag}{i}号" for i, s in enumerate((yuzhou, changge, old_county, late_entry))}
    listed = [
        workload.debtor_listed(yuzhou, cases[yuzhou.id], first + timedelta(days=2)),
        workload.debtor_listed(changge, cases[changge.id], first + timedelta(days=4)),
        workload.debtor_listed(old_county, cases[old_county.id], first + timedelta(days=6)),
        workload.wage_listed(weidu, f"许人社欠薪〔{first.year}〕{tag}号", first + timedelta(days=8)),
        workload.honour(honoured, first + timedelta(days=10)),
    ]
    outcomes = await submit_as_departments(settings, listed)
    assert [(o["event_id"], o["reasons"]) for o in outcomes if o["status"] != "ACCEPTED"] == []
    await helpers.projected(settings)

    def entity(subject: workload.Subject) -> str:
        checked = identity.check_ric(subject.id) if subject.id_type == "RIC" else identity.check_uscc(subject.id)
        return identity.entity_key(checked, settings.id_pepper)

    return {
        "period": period, "first": first, "tag": tag, "marker": marker, "cases": cases,
        "subjects": {"yuzhou": yuzhou, "weidu": weidu, "honoured": honoured, "changge": changge,
                     "old_county": old_county, "late_entry": late_entry},
        "counties": {"yuzhou": "411081", "weidu": "411002", "honoured": "411003", "changge": "411082",
                     "old_county": "411003", "late_entry": "411025"},
        "entity": {k: entity(s) for k, s in {"yuzhou": yuzhou, "weidu": weidu, "honoured": honoured, "changge": changge,
                                              "old_county": old_county, "late_entry": late_entry}.items()},
    }


def approve_first_release(world: dict[str, Any]) -> int:
    """Draft, review and approve the world's month as the office does; the release's number."""
    drafted = draft_id(release_command("draft", "--period", world["period"], "--by", "李明"))
    release_command("review", str(drafted), "--by", "王芳", "--note", "核对无误")
    out = release_command("approve", str(drafted), "--by", "张强")
    m = re.search(r"^第([0-9]+)期 approved", out, re.M)
    assert m, out
    world["draft"] = drafted
    return int(m.group(1))


def entry_about(subject: workload.Subject, listed_on: date, **fields: Any) -> dict[str, Any]:
    """A release entry about an organisation (as a draft holds it), for releases built by hand."""
    return {"colour": "black", "list_kind": "dishonest_debtor", "entity_id": f"uscc:{subject.id}",
            "public_id": subject.id, "subject_name": subject.name, "category": "enterprise", "county": "411002",
            "county_name": "魏都区", "ref": f"（{listed_on.year}）豫10执1号", "reason": "违反财产报告制度",
            "department": "xc-court", "department_name": "许昌市中级人民法院", "listed_on": listed_on.isoformat(),
            "legal_end": None, "listing_event_id": "e", "entity_version": 1, **fields}


async def next_release(settings: config.Settings, subject: workload.Subject, months_back: int) -> tuple[str, dict[str, Any]]:
    """The credit office's next release (the views' last number + 1, once they have every record), of
    the month ``months_back`` before today's: each test that releases takes a month of its own."""
    await helpers.projected(settings)
    (last,) = helpers.pg_rows(settings, "select coalesce(max(release_no), 0) from views.releases")[0]
    month = add_months(helpers.today().replace(day=1), -months_back)
    return workload.release_approved(last + 1, f"{month:%Y-%m}", [entry_about(subject, month)], helpers.today())
