"""A small credit world for the portal's tests (plain HTTP and browser): a company with a whole
life (black-listed now, delisted and expired before), an honoured company (red list) and a natural
person with two penalties, each with a name no other test uses, submitted through the real
sequencer and projected into the views."""

from __future__ import annotations

import calendar
import dataclasses
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any

import aiohttp

from ledger.client import submit_as_departments
from ledger.domain import identity
from ledger.platform import config
from ops import workload
from tests import helpers

DIGITS = "零一二三四五六七八九"


def chinese_tag(n: int) -> str:
    return "".join(DIGITS[int(d)] for d in str(n))


async def build(settings: config.Settings, name: str) -> dict[str, Any]:
    rng = helpers.rng(name)
    tag = rng.randrange(10_000, 99_999)
    marker = chinese_tag(tag)  # e.g. 四七一二九: unique in the names below
    company, honoured = workload.subjects(rng, 2, persons_share=0.0)
    company = dataclasses.replace(company, name=f"许昌{marker}精密机械有限公司")
    honoured = dataclasses.replace(honoured, name=f"许昌{marker}诚信农业合作社")
    person = dataclasses.replace(workload.subjects(rng, 1, persons_share=1.0)[0], name=f"张{marker}")
    life = workload.life(rng, company, tag)
    def displayed_penalty(decided: date) -> dict[str, Any]:
        """A penalty still inside its publication window today, whatever today is: decided at most
        LATE_DECISION_DAYS before today, and not minor (the workload's random severity is drawn again
        until it is not), so at least a year on display."""
        while True:
            record = workload.penalty(rng, person, "xc-eco-env", rng.randrange(10**6, 10**7), decided=decided)
            if record["severity"] != "minor":
                return record

    late = displayed_penalty(helpers.today() - timedelta(days=helpers.LATE_DECISION_DAYS))
    on_time = displayed_penalty(helpers.today())
    # the procurement ban and the honour are counted back from today, so both are in force whatever
    # the date (the ban 75 days before today, 24 months; the honour 30 days before, two years), and
    # they fall in different months
    ban_on = helpers.today() - timedelta(days=75)
    ban_pair = workload.procurement_ban(company, f"许财采罚〔{ban_on.year}〕{tag}号", ban_on)
    started = [p for p in life[0] if p[1]["envelope"]["event_type"] != "ProcurementBanImposed"] + [ban_pair]
    phases = [started + workload.honoured_life(honoured, helpers.today())
              + [("xc-eco-env", late), ("xc-eco-env", on_time)], life[1]]
    outcomes: list[dict[str, Any]] = []
    for phase in phases:
        outcomes += await submit_as_departments(settings, phase)
    assert [(o["event_id"], o["reasons"]) for o in outcomes if o["status"] != "ACCEPTED"] == []
    await helpers.projected(settings)
    ban = ban_pair[1]
    quarter = (ban_on.month - 1) // 3
    return {
        "ban_on": ban_on, "ban_month": f"{ban_on:%Y-%m}", "ban_month_title": f"{ban_on.year}年{ban_on.month}月",
        "ban_month_days": (ban_on.replace(day=1), _month_end(ban_on)),
        "ban_quarter": f"{ban_on.year}-q{quarter + 1}", "ban_quarter_title": f"{ban_on.year}年第{quarter + 1}季度",
        "ban_quarter_days": (date(ban_on.year, 3 * quarter + 1, 1), _month_end(date(ban_on.year, 3 * quarter + 3, 1))),
        "honoured_month": f"{helpers.today() - timedelta(days=30):%Y-%m}",
        "tag": tag, "marker": marker, "late": late, "company": company, "honoured": honoured, "person": person, "ban": ban,
        "company_id": "uscc:" + company.id, "honoured_id": "uscc:" + honoured.id,
        "person_id": identity.entity_key(identity.check_ric(person.id), settings.id_pepper),
    }


class PageFacts(HTMLParser):
    """What the accessibility checks need from one page: the html lang, the label targets, the
    form controls (by id) and the scripts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.lang: str | None = None
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, str | None]] = []  # (tag, id)
        self.scripts = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "label" and a.get("for"):
            self.label_for.add(a["for"] or "")
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append((tag, a.get("id")))
        elif tag == "script":
            self.scripts += 1

    def unlabelled(self) -> list[tuple[str, str | None]]:
        return [c for c in self.controls if c[1] is None or c[1] not in self.label_for]


def _month_end(d: date) -> date:
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


class Portal:
    """The portal over plain HTTP: every page checked for the accessibility rules (lang zh-CN, every
    form control labelled, no script), every text answer kept in ``bodies`` (the tests scan them for
    clear ID numbers)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base
        self.bodies: list[str] = []
        self.last_url = ""

    async def get(self, path: str, expect: int = 200, **params: Any) -> tuple[bytes, str]:
        """The raw answer of a download (its bytes and content type), the text ones kept."""
        async with self.session.get(self.base + path, params=params or None) as r:
            raw = await r.read()
            assert r.status == expect, (path, params, r.status, raw[:600])
            if r.headers["Content-Type"].startswith(("text/", "application/json")):
                self.bodies.append(raw.decode("utf-8"))
            return raw, r.headers["Content-Type"]

    async def page(self, path: str, expect: int = 200, **params: Any) -> str:
        async with self.session.get(self.base + path, params=params or None, allow_redirects=True) as r:
            body = await r.text(encoding="utf-8")
            self.bodies.append(body)
            assert r.status == expect, (path, params, r.status, body[:800])
            assert r.headers["Content-Type"].startswith("text/html")
            facts = PageFacts(body)
            assert facts.lang == "zh-CN", path
            assert facts.unlabelled() == [], (path, facts.unlabelled())
            assert facts.scripts == 0, path
            self.last_url = str(r.url)
            return body
