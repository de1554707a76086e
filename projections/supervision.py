"""The department supervision's results as the dashboard reads them (schema `supervision`, written by
consumers/supervision/): the monthly assessment per department (目标考核: the counts of the month
scored by ledger/domain/assessment.py), the same over the last months, the 5-minute series of the
charts and the lag samples; and the assessment as CSV rows.

Counts are kept per source partition; every reader sums them. A month is the China-local calendar
month: its rows start at 00:00 China time of its first day. Departments listed: every emitting and
sector department of the newest matrix (a department that sent nothing in a month is listed without
a score: having nothing to assess is itself a finding), then any other id counted (`?`: a record
naming no known department).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from ledger.domain import assessment as m
from ledger.domain.assessment import Assessment, AssessmentRules
from ledger.domain.local_time import CHINA, china_midnight
from ledger.domain.rules import DepartmentMatrix
from ledger.domain.rules import add_months as _add_months

__all__ = ["CSV_COLUMNS", "UNKNOWN_TITLE", "active", "assessments", "buckets", "china_clock", "csv_rows", "month_counts",
           "month_start", "months_before", "recent", "samples"]

UNKNOWN_TITLE = "未知部门（报送未注明部门或非登记部门）"


def month_start(day: date) -> datetime:
    """00:00 China time of the first day of `day`'s month, as the rows store it (an aware datetime)."""
    return datetime.fromtimestamp(china_midnight(day.replace(day=1)), UTC)


def months_before(month: date, n: int) -> list[date]:
    """The first days of the `n` months ending with `month`'s, oldest first."""
    first = month.replace(day=1)
    return [_add_months(first, -k) for k in range(n - 1, -1, -1)]


async def _rows(conn: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    return list(await cur.fetchall())


async def month_counts(conn: psycopg.AsyncConnection[Any], months: Sequence[date]) -> dict[date, dict[str, dict[str, int]]]:
    """month (its first day) -> department -> measure -> count, for these months."""
    starts = {month_start(d): d.replace(day=1) for d in months}
    out: dict[date, dict[str, dict[str, int]]] = {d: {} for d in starts.values()}
    for start, department, measure, n in await _rows(conn, """
            select period_start, department, measure, sum(count)::bigint from supervision.counts
            where period = 'month' and period_start = any(%s) group by 1, 2, 3""", (list(starts),)):
        out[starts[start]].setdefault(department, {})[measure] = int(n)
    return out


def _listed(matrix: DepartmentMatrix, counted: Sequence[str]) -> list[str]:
    """The departments of the assessment, in the matrix's order, then others counted."""
    listed = [d for d, dep in matrix.departments.items() if dep.kind != "system"]
    return listed + sorted(d for d in counted if d not in listed and (d == m.UNKNOWN_DEPARTMENT or d not in
                                                                        matrix.departments))


def assessments(rules: AssessmentRules, matrix: DepartmentMatrix,
                counts: dict[str, dict[str, int]]) -> list[Assessment]:
    """One month's assessment of every department (pure: from `month_counts`' month). The records that
    name no known department (`?`) are shown, not scored."""
    out = []
    for d in _listed(matrix, list(counts)):
        a = m.assess(rules, d, counts.get(d, {}),
                     reports_feedback=d in matrix.departments and m.FEEDBACK_EVENT in matrix.departments[d].may_emit)
        out.append(replace(a, score=None, band=None) if d == m.UNKNOWN_DEPARTMENT else a)
    return out


def active(a: Assessment) -> bool:
    """Whether the month holds anything of the department's work (else it is listed as idle)."""
    return bool(a.submissions or a.publicity or a.alerts or a.objections_filed or a.objections_answered or a.feedback)


async def recent(conn: psycopg.AsyncConnection[Any], since: datetime,
                 measures: Sequence[str]) -> dict[datetime, dict[str, int]]:
    """5-minute bucket start -> measure -> count (summed over the sources), from `since` on."""
    out: dict[datetime, dict[str, int]] = {}
    for start, measure, n in await _rows(conn, """
            select period_start, measure, sum(count)::bigint from supervision.counts
            where period = '5min' and period_start >= %s and measure = any(%s) group by 1, 2""",
                                         (since, list(measures))):
        out.setdefault(start, {})[measure] = int(n)
    return out


async def samples(conn: psycopg.AsyncConnection[Any], series: str, since: datetime) -> list[tuple[datetime, float]]:
    """The lag samples of one series since `since`, oldest first."""
    return [(at, float(v)) for at, v in await _rows(
        conn, "select at, value from supervision.samples where series = %s and at >= %s order by at", (series, since))]


# ----------------------------------------------------------------------------- CSV
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("month", "月份"), ("department", "部门代码"), ("department_name", "部门"), ("submissions", "报送"),
    ("accepted", "采纳"), ("duplicates", "重复"), ("rejected", "退回"), ("acceptance", "采纳率"),
    ("top_reasons", "主要退回原因"), ("publicity", "双公示记录"), ("on_time", "按时"), ("late", "超期"),
    ("unknown", "无法判定"), ("timeliness", "及时率"), ("objections_filed", "异议受理"),
    ("objections_answered", "异议答复"), ("upheld", "维持"), ("corrected", "更正"), ("accuracy", "准确率"),
    ("alerts", "惩戒提醒"), ("feedback", "惩戒反馈"), ("feedback_rate", "反馈率"), ("score", "得分"),
    ("band", "等次"),
)


def csv_rows(month: date, names: dict[str, str], rows: Sequence[Assessment]) -> list[list[str]]:
    """The assessment table as CSV cells, one row per department, in CSV_COLUMNS' order."""
    def rate(v: float | None) -> str:
        return "" if v is None else f"{v * 100:.1f}%"

    label = f"{month.year:04d}-{month.month:02d}"
    return [[label, a.department, names.get(a.department, UNKNOWN_TITLE), str(a.submissions), str(a.accepted),
             str(a.duplicates), str(a.rejected), rate(a.rates["acceptance"]),
             "；".join(f"{code} {n}" for code, n in list(a.reasons.items())[:3]), str(a.publicity), str(a.on_time),
             str(a.late), str(a.unknown), rate(a.rates["timeliness"]), str(a.objections_filed),
             str(a.objections_answered), str(a.upheld), str(a.corrected), rate(a.rates["accuracy"]), str(a.alerts),
             str(a.feedback), rate(a.rates["feedback"]), "" if a.score is None else f"{a.score:.1f}", a.band or ""]
            for a in rows]


def buckets(now: datetime, hours: int, size: timedelta = timedelta(minutes=5)) -> list[datetime]:
    """The starts of the 5-minute buckets of the last `hours` hours up to `now`'s, oldest first (aware UTC)."""
    seconds = size.total_seconds()
    last = datetime.fromtimestamp(now.timestamp() - now.timestamp() % seconds, UTC)
    n = int(hours * 3600 // seconds)
    return [last - size * k for k in range(n - 1, -1, -1)]


def china_clock(moment: datetime) -> str:
    """HH:MM in China time, for an axis."""
    return moment.astimezone(CHINA).strftime("%H:%M")
