"""The PRC working-day calendar, with its adjusted working days (调休).

Legal sources: 《全国年节及纪念日放假办法》 (State Council; last revised by Order No. 795 of 2024,
in force 2025-01-01) for the statutory holidays, and the yearly notice
国务院办公厅关于××年部分节假日安排的通知 for the adjustments: weekdays given as days off and the weekend days worked in exchange. Working-day
deadlines in the ledger: "双公示" publication within 7 working days of the decision (国办发〔2015〕51号,
国发〔2016〕33号; domain.md §3.1), court deletion within 3 working days (法释〔2017〕7号 art. 10).

Data: the ``holidays`` package (pinned 0.109), class ``holidays.China``. It models the statutory
holidays as entries of the set (with the 调休 days off added as "substituted" holidays) and keeps
the weekend days that are working days in ``weekend_workdays``; ``is_working_day`` combines both.
The yearly notices are transcribed for 2001-2026 only (``ChinaStaticHolidays.special_public_holidays``).
For other years the package would still compute the statutory holidays but not the 调休 days, i.e.
it would guess; this module raises ``CalendarCoverageError`` instead. Update the ``holidays`` pin
when the State Council publishes the next year's notice (usually in November).

Known limit: a notice may move a weekend at the very end of the previous year (e.g. the 2002
notice made Saturday 2001-12-29 a working day), so the last days of the last covered year can
change when the next year's notice arrives.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

from holidays.countries.china import China, ChinaStaticHolidays
from holidays.version import __version__ as holidays_version

from ledger.domain.errors import CalendarCoverageError

__all__ = ["add_working_days", "covered_years", "is_working_day", "working_days_between"]

# The holidays package checked its China data against the official notices from 2001 on.
_FIRST_CHECKED_YEAR = 2001


@cache
def covered_years() -> range:
    """The years for which the official 调休 schedule is known (2001-2026 with holidays 0.109)."""
    years = sorted(y for y in ChinaStaticHolidays.special_public_holidays if y >= _FIRST_CHECKED_YEAR)
    first, last = years[0], years[-1]
    missing = set(range(first, last + 1)) - set(years)
    if missing:  # a gap would mean a year without its notice: refuse to guess for it
        last = min(missing) - 1
    return range(first, last + 1)


@cache
def _calendar() -> China:
    return China(years=covered_years())  # type: ignore[no-untyped-call]  # holidays leaves __init__ untyped


def _require_covered(d: date) -> None:
    years = covered_years()
    if d.year not in years:
        raise CalendarCoverageError(
            f"no official working-day schedule (调休安排) for {d.year}: the calendar covers "
            f"{years.start}-{years.stop - 1} (holidays {holidays_version}); update the holidays "
            f"package once the State Council notice for {d.year} is published")


def is_working_day(d: date) -> bool:
    """True if ``d`` is a working day in the PRC: a weekday that is no holiday or 调休 day off,
    or a weekend day that the year's notice made a working day."""
    _require_covered(d)
    return bool(_calendar().is_working_day(d))


def add_working_days(d: date, n: int) -> date:
    """The ``n``-th working day after ``d`` (before ``d`` if ``n`` is negative); ``d`` for 0.

    ``d`` itself is not counted, whether it is a working day or not: the double-publicity deadline
    of a decision taken on ``d`` is ``add_working_days(d, 7)``, and publication on that day is
    still in time.
    """
    step = timedelta(days=1 if n >= 0 else -1)
    _require_covered(d)
    remaining = abs(n)
    while remaining:
        d += step
        if is_working_day(d):
            remaining -= 1
    return d


def working_days_between(a: date, b: date) -> int:
    """The number of working days in ``(a, b]``: after ``a``, up to and including ``b``.

    Negative (minus the working days in ``(b, a]``) when ``b`` is before ``a``. It is the inverse
    of ``add_working_days`` for ``n >= 0``: ``working_days_between(d, add_working_days(d, n)) == n``.
    """
    if b < a:
        return -working_days_between(b, a)
    _require_covered(a)
    _require_covered(b)
    return sum(is_working_day(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))
