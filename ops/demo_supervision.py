"""The demo's part for the department supervision (consumers/supervision/, faust): its counts checked
against a recount of the topics, this month's assessment of the departments (目标考核) as the
dashboard shows it, the CSV of it saved beside the stack, and where the charts are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import psycopg

from consumers.supervision import core, recount
from ledger.platform import config
from ledger.platform.kafka_access import SUPERVISION, access
from ops.root import CLOCK
from projections import supervision as reads


async def show(s: config.Settings, rules: Any, say: Callable[[str], None]) -> None:
    n, diff = await recount.wait_equal(core.Counter.of(rules), access(s, SUPERVISION), s.pg_dsn, CLOCK.now, wait=180)
    say("\n== Department supervision (faust: python -m ops.run supervision; windowed tables per China-local day "
        "and month over credit.outcomes, credit.events and credit.alerts; counts in PostgreSQL, schema supervision)")
    if diff:
        raise RuntimeError(f"the supervision's counts differ from a recount of the topics: {sorted(diff.items())[:5]}")
    say(f"   its counts equal a recount of the {n:,} records of the three topics "
        "(python -m consumers.supervision.recount)")
    today = CLOCK.today()
    month = today.replace(day=1)
    label = f"{month.year:04d}-{month.month:02d}"
    base = f"http://127.0.0.1:{s.portal_port}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get(f"{base}/dashboard", params={"month": label}) as r:
            page = await r.text()
            status = r.status
        async with http.get(f"{base}/dashboard/assessment.csv", params={"month": label}) as r:
            body = await r.read()
    if status != 200 or r.status != 200:
        raise RuntimeError(f"the dashboard answered {status}, its CSV {r.status}")
    async with await psycopg.AsyncConnection.connect(s.pg_dsn, autocommit=True) as conn:
        counts = (await reads.month_counts(conn, [month]))[month]
    table = [a for a in reads.assessments(rules.assessment, rules.departments, counts) if reads.active(a)]
    names = {d: dep.name for d, dep in rules.departments.departments.items()}

    def rate(v: float | None) -> str:
        return "  —  " if v is None else f"{v * 100:5.1f}%"

    say(f"   the assessment of {month.year}年{month.month}月 ({len(table)} departments with work this month; "
        "acceptance = accepted / judged, timeliness = double-publicity records within 7 working days, "
        "accuracy = objections answered UPHELD, feedback = feedback returned / alerts to act on; "
        "weights in ledger/rules/department_assessment.v1.json):")
    say(f"     {'department'.ljust(14, chr(0x3000))}  submitted  accept.   timely accuracy feedback  score  band")
    for a in sorted(table, key=lambda a: (-(a.submissions + a.alerts), a.department))[:12]:
        name = names.get(a.department, reads.UNKNOWN_TITLE)[:14].ljust(14, chr(0x3000))  # full-width padding
        score = "  —  " if a.score is None else f"{a.score:5.1f}"
        say(f"     {name}  {a.submissions:>9}  "
            f"{rate(a.rates['acceptance'])}  {rate(a.rates['timeliness'])}  {rate(a.rates['accuracy'])}  "
            f"{rate(a.rates['feedback'])}  {score}  {a.band or '—'}")
    target = s.stack_dir / f"demo-assessment-{label}.csv"
    target.write_bytes(body)
    say(f"   GET /dashboard/assessment.csv?month={label}: {len(body.decode('utf-8-sig').splitlines()) - 1} departments, "
        f"saved to {target}")
    say(f"   the dashboard's charts ({page.count('<svg')} SVG pictures, no JavaScript): {base}/dashboard "
        "(throughput, lag and refusals over the last hours; late double publicity and scores per department and "
        "month); screenshots by tests/e2e/test_dashboard_browser.py in artifacts/dashboard/")
