"""The operator dashboard's supervision part: the monthly assessment of the departments (目标考核) as a
table and as a CSV download, and the charts (server-rendered SVG, projections/web/charts.py).

Where the pictures come from (all of it written by the department supervision, consumers/supervision/):

  * throughput and refusals over the last hours: its 5-minute buckets of the ledger's topics
    (entries appended to credit.events, answers on credit.outcomes by status), counted from the
    records themselves, so a restart of any process leaves no hole;
  * lag over the last hours: the samples it records every 30 s of the projector's lag in seconds
    (from the projector's /metrics), shown as the largest per 5 minutes;
  * lateness and the assessment per department per month: its monthly counts (the last 12 months).

Query parameters of /dashboard: `month=YYYY-MM` (the assessment shown; default this month, China
time) and `hours=1..48` (the span of the charts, default 6). /dashboard/assessment.csv?month=YYYY-MM
is the table as CSV (UTF-8 with BOM, a Chinese header row).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from aiohttp import web

from ledger.domain import assessment as m
from ledger.domain.rulebook import RuleBook
from ledger.platform.web import BadParameter
from projections import supervision as reads
from projections.web import charts
from projections.web.params import Params

__all__ = ["DEFAULT_HOURS", "MONTHS_SHOWN", "context", "csv_body", "parse_month"]

DEFAULT_HOURS, MAX_HOURS = 6, 48
MONTHS_SHOWN = 12
LAG_SERIES = "projector_lag_seconds"
LATE_ALL_RED = 0.3  # a month with 30 % of its double-publicity records late is shown all red


def parse_month(value: str | None, today: date) -> date:
    """`YYYY-MM` -> its first day (default: `today`'s month); BadParameter naming `month` otherwise."""
    if value is None:
        return today.replace(day=1)
    found = re.fullmatch(r"([0-9]{4})-([0-9]{2})", value.strip())
    if not found or not 2000 <= int(found[1]) <= 2100 or not 1 <= int(found[2]) <= 12:
        raise BadParameter("month", f"'{value[:20]}' is not a month YYYY-MM (e.g. 2026-11)")
    return date(int(found[1]), int(found[2]), 1)


def names(rules: RuleBook) -> dict[str, str]:
    return {d: dep.name for d, dep in rules.departments.departments.items()} | {m.UNKNOWN_DEPARTMENT: reads.UNKNOWN_TITLE}


def _label(month: date) -> str:
    return f"{month.year % 100:02d}年{month.month}月"


async def context(conn: psycopg.AsyncConnection[Any], request: web.Request, rules: RuleBook, now: datetime,
                  today: date) -> dict[str, Any]:
    """What the dashboard template shows of the supervision (after the request's month and hours are checked)."""
    p = Params(request, frozenset({"month", "hours"}))
    month = parse_month(p.text("month", 20), today)
    hours = p.integer("hours", DEFAULT_HOURS, 1, MAX_HOURS)
    months = reads.months_before(month, MONTHS_SHOWN)
    counts = await reads.month_counts(conn, months)
    table = reads.assessments(rules.assessment, rules.departments, counts[month])
    starts = reads.buckets(now, hours)
    since = starts[0]
    recent = await reads.recent(conn, since, [m.APPENDED, m.SUBMISSIONS, *(m.STATUS + s for s in m.REJECTED_STATUSES)])
    lag = await reads.samples(conn, LAG_SERIES, since)
    titles = names(rules)
    return {
        "month": month, "month_value": f"{month.year:04d}-{month.month:02d}", "hours": hours,
        "assessment": table, "assessment_rules": rules.assessment,
        "active": [a for a in table if reads.active(a)], "idle": [a for a in table if not reads.active(a)],
        "charts": {
            "throughput": _throughput(starts, recent), "rejections": _rejections(starts, recent),
            "lag": _lag(starts, lag), "lateness": _lateness(months, counts, titles),
            "scores": _scores(months, counts, rules, titles),
        },
        "supervision_has_data": bool(recent) or any(counts.values()),
    }


def _every(n: int) -> int:
    return max(1, n // 12)  # about a dozen labels on an axis


def _throughput(starts: list[datetime], recent: dict[datetime, dict[str, int]]) -> str:
    labels = [reads.china_clock(s) for s in starts]
    per_second = lambda measure: [recent.get(s, {}).get(measure, 0) / 300 for s in starts]  # noqa: E731
    return charts.line_chart(labels, [charts.Series("报送（条/秒）", per_second(m.SUBMISSIONS)),
                                      charts.Series("记入账本（条/秒）", per_second(m.APPENDED))],
                             title="吞吐量（每5分钟平均，北京时间）", unit="条/秒", label_every=_every(len(starts)))


def _rejections(starts: list[datetime], recent: dict[datetime, dict[str, int]]) -> str:
    labels = [reads.china_clock(s) for s in starts]
    return charts.bar_chart(labels, [
        charts.Series("退回（REJECTED）", [recent.get(s, {}).get(m.STATUS + "REJECTED", 0) for s in starts]),
        charts.Series("冲突（CONFLICT）", [recent.get(s, {}).get(m.STATUS + "CONFLICT", 0) for s in starts])],
        title="拒收（每5分钟条数，北京时间）", unit="条", label_every=_every(len(starts)))


def _lag(starts: list[datetime], samples: list[tuple[datetime, float]]) -> str:
    worst: dict[int, float] = {}
    step = timedelta(minutes=5).total_seconds()
    first = starts[0].timestamp()
    for at, value in samples:
        i = int((at.timestamp() - first) // step)
        if 0 <= i < len(starts):
            worst[i] = max(worst.get(i, 0.0), value)
    return charts.line_chart([reads.china_clock(s) for s in starts],
                             [charts.Series("投影延迟（秒）", [worst.get(i) for i in range(len(starts))])],
                             title="投影延迟（每5分钟最大值，秒；监督服务每30秒采样）", unit="秒",
                             label_every=_every(len(starts)))


def _lateness(months: list[date], counts: dict[date, dict[str, dict[str, int]]], titles: dict[str, str]) -> str:
    departments = sorted({d for c in counts.values() for d, n in c.items() if n.get(m.PUBLICITY)})
    cells: dict[tuple[int, int], tuple[float, str]] = {}
    for i, d in enumerate(departments):
        for j, month in enumerate(months):
            n = counts[month].get(d, {})
            judged = n.get(m.PUBLICITY_LATE, 0) + n.get(m.PUBLICITY_ON_TIME, 0)
            if judged:
                late = n.get(m.PUBLICITY_LATE, 0)
                cells[(i, j)] = (late / judged, f"{late}/{judged}")
    return charts.heatmap([titles.get(d, d) for d in departments], [_label(x) for x in months], cells,
                          title="双公示超期（超期条数/可判定条数，按部门、按月）", good_high=False,
                          span=(0.0, LATE_ALL_RED))


def _scores(months: list[date], counts: dict[date, dict[str, dict[str, int]]], rules: RuleBook,
            titles: dict[str, str]) -> str:
    by_month = {month: {a.department: a for a in reads.assessments(rules.assessment, rules.departments, counts[month])}
                for month in months}
    departments = sorted({d for month in months for d, a in by_month[month].items() if a.score is not None})
    cells = {(i, j): (a.score / 100, f"{a.score:.0f}") for i, d in enumerate(departments)
             for j, month in enumerate(months) if (a := by_month[month].get(d)) is not None and a.score is not None}
    bands = [b.min_score for b in rules.assessment.bands]  # the colours run from the lowest pass to the best band
    return charts.heatmap([titles.get(d, d) for d in departments], [_label(x) for x in months], cells,
                          title="考核得分（百分制，按部门、按月）", good_high=True,
                          span=(min(b for b in bands if b > 0) / 100, max(bands) / 100))


def csv_body(month: date, rules: RuleBook, counts: dict[str, dict[str, int]]) -> bytes:
    """The month's assessment as a CSV file: UTF-8 with a byte-order mark (Excel opens the Chinese
    text correctly), the Chinese header row, one row per department."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([title for _, title in reads.CSV_COLUMNS])
    writer.writerows(reads.csv_rows(month, names(rules), reads.assessments(rules.assessment, rules.departments, counts)))
    return ("\ufeff" + out.getvalue()).encode("utf-8")
