"""The short working-day deadlines and the provisional calendar, against the real Kafka and PostgreSQL.

1. Given a published penalty whose revocation was decided long before the ledger recorded it (行政处罚法
   arts. 48, 85: withdrawal within 3 working days) and a court listing whose obligations were
   performed long before the deletion was recorded (法释〔2017〕7号 art. 10: 3 working days), each
   beside one recorded in time, when the query API's /publicity/short-deadlines and the operator
   dashboard are read, then the late ones are counted late for their department and listed.
2. Given provisional deadlines in PostgreSQL (computed over 2027, whose notice is not in the file),
   when a 2027 notice that moves days is added as a new calendar version
   (ledger.rules.make_workdays.add) and the recompute runs, then every changed deadline is listed
   with its event id, department, old and new deadline and lateness before and after, and the rows
   now hold the new values and are no longer provisional.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from consumers.projector import recompute
from ledger.client import submit_as_departments
from ledger.rules import loader, make_workdays
from ops import workload
from projections import publicity, schema
from tests import helpers
from tests.integration.test_query_api import Api


@pytest.fixture(scope="module")
async def api(settings, services) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Api(session, f"http://127.0.0.1:{settings.api_port}")


@pytest.fixture(scope="module")
async def world(settings, services) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rng = helpers.rng("deadlines")
    late_firm, timely_firm, late_debtor, timely_debtor = workload.subjects(rng, 4, persons_share=0.0)
    # the day before today in China: never in the future for the sequencer, at most 1 working day ago
    yesterday = helpers.today() - timedelta(days=1)
    late_penalty = workload.penalty(rng, late_firm, "xc-samr", 1, decided=date(2025, 3, 3))
    timely_penalty = workload.penalty(rng, timely_firm, "xc-samr", 2, decided=date(2025, 3, 3))
    late_revocation = workload.penalty_revoked(late_firm, late_penalty["decision_no"], date(2025, 3, 10))
    timely_revocation = workload.penalty_revoked(timely_firm, timely_penalty["decision_no"], yesterday)
    late_deletion = workload.debtor_delisted(late_debtor, "（2025）豫10执D1号", date(2025, 2, 3))
    timely_deletion = workload.debtor_delisted(timely_debtor, "（2025）豫10执D2号", yesterday)
    pairs = [
        ("xc-samr", late_penalty), ("xc-samr", timely_penalty), late_revocation, timely_revocation,
        workload.debtor_listed(late_debtor, "（2025）豫10执D1号", date(2025, 1, 6), ground=1), late_deletion,
        workload.debtor_listed(timely_debtor, "（2025）豫10执D2号", date(2025, 1, 6), ground=1), timely_deletion,
    ]
    outcomes = await submit_as_departments(settings, pairs)
    assert [o["reasons"] for o in outcomes if o["status"] != "ACCEPTED"] == []
    await helpers.projected(settings)
    return {"late_revocation": late_revocation[1]["envelope"]["event_id"],
            "timely_revocation": timely_revocation[1]["envelope"]["event_id"],
            "late_deletion": late_deletion[1]["envelope"]["event_id"],
            "timely_deletion": timely_deletion[1]["envelope"]["event_id"]}


async def test_a_late_withdrawal_and_a_late_court_deletion_are_reported_per_department(settings, api, world) -> None:
    report = await api.get("/publicity/short-deadlines")
    rows = {(d["department"], d["rule"]): d for d in report["departments"]}
    samr, court = rows[("xc-samr", "penalty_withdrawal")], rows[("xc-court", "court_deletion")]
    # other tests of the suite share the stack: the counts are the views' own, this world's acts among them
    in_views = {(d, r): (n, on_time, late) for d, r, n, on_time, late in helpers.pg_rows(
        settings, "select department, rule, count(*), count(*) filter (where not late), count(*) filter (where late) "
                  "from views.short_deadlines group by department, rule")}
    for key, row in (((("xc-samr", "penalty_withdrawal")), samr), ((("xc-court", "court_deletion")), court)):
        assert (row["records"], row["on_time"], row["late"]) == in_views[key]
        assert row["late"] >= 1 and row["on_time"] >= 1 and row["working_days_allowed"] == 3
    late = {r["event_id"]: r for r in report["late"]}
    assert {world["late_revocation"], world["late_deletion"]} <= set(late)
    assert not {world["timely_revocation"], world["timely_deletion"]} & set(late)
    # measured from the revocation decision (Mon 10 Mar 2025): 11, 12, 13 Mar
    assert (late[world["late_revocation"]]["trigger_date"], late[world["late_revocation"]]["deadline"]) == (
        "2025-03-10", "2025-03-13")
    # measured from the performance (Mon 3 Feb 2025): 5, 6, 7 Feb (4 Feb is still 春节 in the 2025 notice)
    assert (late[world["late_deletion"]]["trigger_date"], late[world["late_deletion"]]["deadline"]) == (
        "2025-02-03", "2025-02-07")
    only_court = await api.get("/publicity/short-deadlines", department="xc-court")
    assert {d["rule"] for d in only_court["departments"]} == {"court_deletion"}
    status, body, _ = await api.raw("/publicity/short-deadlines", rule="publication_in_seven_days")
    assert status == 400 and "rule" in body


async def test_the_dashboard_shows_the_short_deadlines_beside_the_seven_day_report(settings, world) -> None:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{settings.portal_port}/dashboard") as r:
        page = await r.text()
    assert r.status == 200
    section = page[page.index('id="short-deadlines"'):page.index('id="coverage"')]
    assert "（2025）豫10执D1号" in section and "撤回公示信息" in section
    assert 'id="provisional-total"' in page


# --------------------------------------------------------------------------- recompute after a notice

NAME = "test_deadlines_recompute"
# a 2027 notice (made up for the test) that gives Thu 11 Feb off and makes Sat 20 Feb a working day
NOTICE = {"legal_source": "国务院办公厅关于2027年部分节假日安排的通知（测试用）",
          "holidays": ["2027-01-01", "2027-02-05", "2027-02-06", "2027-02-07", "2027-02-08", "2027-02-09",
                       "2027-02-10", "2027-02-11", "2027-04-05", "2027-05-01", "2027-05-02", "2027-05-03",
                       "2027-05-04", "2027-06-09", "2027-09-15", "2027-10-01", "2027-10-02", "2027-10-03",
                       "2027-10-04", "2027-10-05"],
          "adjusted_workdays": ["2027-02-20"]}


@pytest.fixture
def views_schema(stack, settings):  # type: ignore[no-untyped-def]
    with psycopg.connect(settings.pg_dsn) as conn, conn.transaction():
        schema.drop(conn, NAME)
        schema.create(conn, NAME)
    yield NAME
    with psycopg.connect(settings.pg_dsn) as conn, conn.transaction():
        schema.drop(conn, NAME)


def _insert(conn: psycopg.Connection[Any], table: str, event_id: str, first: date, done: date, days: int,
            what: str) -> publicity.Lateness:
    """A row as the projector writes it, computed with the committed (provisional 2027) calendar."""
    late = publicity.lateness(loader.load().calendar, first, done, days)
    if table == "publicity":
        conn.execute(f"insert into {NAME}.publicity (event_id, entity_id, kind, ref, national, department, "
                     "decision_date, ledger_date, deadline, working_days, late, window_start, status, subject_name, "
                     "public_id, category, provisional, county) values (%s, 'uscc:X', %s, 'R', '{}', 'xc-samr', %s, %s, "
                     "%s, %s, %s, %s, 'published', 'S', 'X', 'legal_person', %s, '411002')",
                     (event_id, what, first, done, late.deadline, late.working_days_taken, late.late, first,
                      late.provisional))
    else:
        conn.execute(f"insert into {NAME}.short_deadlines (event_id, entity_id, rule, ref, department, trigger_date, "
                     "done_date, allowed, deadline, working_days, late, provisional, subject_name, public_id, "
                     "category) values (%s, 'uscc:X', %s, 'R', 'xc-court', %s, %s, %s, %s, %s, %s, %s, 'S', 'X', "
                     "'legal_person')", (event_id, what, first, done, days, late.deadline, late.working_days_taken,
                                         late.late, late.provisional))
    return late


def test_provisional_deadlines_are_recomputed_after_a_notice_and_each_change_listed(
        settings, views_schema, tmp_path: Path) -> None:
    moved_publication, moved_deletion, confirmed = (str(uuid.uuid4()) for _ in range(3))
    with psycopg.connect(settings.pg_dsn) as conn, conn.transaction():
        # decided Thu 4 Feb 2027, recorded Sat 20 Feb: provisionally due Fri 19 Feb (11-12, 15-19 Feb), late
        before = _insert(conn, "publicity", moved_publication, date(2027, 2, 4), date(2027, 2, 20), 7, "penalty")
        assert (before.deadline, before.late, before.provisional) == (date(2027, 2, 19), True, True)
        # performed Mon 8 Feb, deletion recorded Tue 16 Feb: provisionally due Mon 15 Feb (11, 12, 15), late
        _insert(conn, "short_deadlines", moved_deletion, date(2027, 2, 8), date(2027, 2, 16), 3, "court_deletion")
        # decided Mon 1 Mar, recorded Tue 2 Mar: due Wed 10 Mar either way
        _insert(conn, "publicity", confirmed, date(2027, 3, 1), date(2027, 3, 2), 7, "licence")

    rules = tmp_path / "rules"
    shutil.copytree(loader.default_directory(), rules)
    notice = tmp_path / "notice-2027.json"
    notice.write_text(json.dumps(NOTICE, ensure_ascii=False), encoding="utf-8")
    written, days = make_workdays.add(2027, rules, notice)
    calendar = loader.load_workdays(rules)
    assert written.name == f"workdays.v{calendar.version}.json" and 2027 not in calendar.provisional_years
    assert days == ["2027-02-11 Thu: working day -> day off", "2027-02-20 Sat: day off -> working day"]

    changes = recompute.run(settings.pg_dsn, calendar, NAME)
    listed = {c.event_id: c for c in changes if c.changed}
    assert set(listed) == {moved_publication, moved_deletion}
    assert {c.event_id for c in changes} == {moved_publication, moved_deletion, confirmed}
    p = listed[moved_publication]
    assert (p.department, p.what, p.old_deadline, p.new_deadline, p.late_before, p.late_after) == (
        "xc-samr", "penalty", date(2027, 2, 19), date(2027, 2, 20), True, False)
    d = listed[moved_deletion]
    assert (d.department, d.what, d.old_deadline, d.new_deadline, d.late_before, d.late_after) == (
        "xc-court", "court_deletion", date(2027, 2, 15), date(2027, 2, 16), True, False)
    assert "deadline 2027-02-19 -> 2027-02-20, late yes -> no" in p.line()

    rows = helpers.pg_rows(settings, f"select event_id, deadline, late, provisional from {NAME}.publicity "
                                     "union all select event_id, deadline, late, provisional "
                                     f"from {NAME}.short_deadlines")
    assert sorted(rows) == sorted([(moved_publication, date(2027, 2, 20), False, False),
                                   (moved_deletion, date(2027, 2, 16), False, False),
                                   (confirmed, date(2027, 3, 10), False, False)])
    assert recompute.run(settings.pg_dsn, calendar, NAME) == []  # nothing provisional is left
