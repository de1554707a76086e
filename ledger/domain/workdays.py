"""The PRC working-day calendar, with its adjusted working days (调休), as a rules file.

Legal sources: 《国务院关于职工工作时间的规定》 art. 7 (Saturday and Sunday are the weekly rest days);
《全国年节及纪念日放假办法》 (State Council; revised by Order No. 644, in force 2014-01-01, and by Order
No. 795 of 2024, in force 2025-01-01: Spring Festival and Labour Day one day more each) for the
statutory holidays; the yearly notice 国务院办公厅关于××年部分节假日安排的通知 for the adjustments:
weekdays given as days off and the weekend days worked in exchange. Working-day deadlines in the
ledger: "双公示" publication within 7 working days of the decision (国办发〔2015〕51号, 国发〔2016〕33号;
docs/domain-notes.md §3.1), court deletion within 3 working days (法释〔2017〕7号 art. 10).

Official and provisional years (docs/domain-notes.md §16.1). A year whose notice is in the file is
*official*. A year whose notice is not yet in the file is *provisional*: its entry (``"provisional":
true``) lists the statutory holidays on their statutory dates and the make-up days (补假) that art. 6
of the 2024 办法 gives when a statutory day falls on a Saturday or Sunday, and no 调休 swaps (no
``adjusted_workdays``). Provisional years follow the official ones and run to the end of the lunar
table the generator uses (2100), so the calendar does not run out for any date a user can submit.
Every answer counted over a provisional day is marked by the caller (``is_provisional``,
``provisional_after``) and recomputed when the notice is added (a new version of the file, written
by ``python -m ledger.rules.make_workdays add <year>``).

Data: ``ledger/rules/workdays.v<N>.json`` (the highest version), read by the one rules loader
(``ledger/rules/loader.py``) and turned into a ``WorkdayCalendar`` by ``parse_workdays``, validated
like the other rules files: one entry per year with its legal source, the dates off (``holidays``)
and the weekend days worked (``adjusted_workdays``). A weekday is a working day unless it is in
``holidays``; a Saturday or Sunday is a working day only if it is in ``adjusted_workdays``. An
invalid file raises ``RulesError`` (file, entry, reason); a date in a year the file does not list
(before the first year, or after the last provisional one) raises ``CalendarCoverageError``. The file is written by
``ledger/rules/make_workdays.py`` from the ``holidays`` package (used there only); add the next
year when the State Council publishes its notice (usually in November).

Pure: the calendar is a value that callers are given (``RuleBook.calendar``); its questions
(``is_working_day``, ``add_working_days``, ``working_days_between``) are its methods.

Known limit: a notice may move a weekend at the very end of the previous year (e.g. the 2002
notice made Saturday 2001-12-29 a working day), so the last days of the last covered year can
change when the next year's notice arrives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any

from ledger.domain.errors import CalendarCoverageError
from ledger.domain.ruledoc import Reader

__all__ = ["WorkdayCalendar", "WorkingDayDeadline", "parse_workdays"]

_SATURDAY = 5


@dataclass(frozen=True)
class WorkingDayDeadline:
    """A deadline counted in working days (the file's ``deadlines``): ``working_days`` after the
    trigger (not counted), for acts on or after ``applies_from``; ``measured`` False where the
    events carry no date to count from (kept as data with the reason in ``measured_from``)."""

    id: str
    working_days: int
    title: str
    legal_source: str
    applies_from: date
    measured_from: str
    measured_to: str
    measured: bool = True


@dataclass(frozen=True)
class WorkdayCalendar:
    """The working-day calendar of one rules file: dates off and weekend days worked, per year."""

    file: str
    version: int
    legal_sources: tuple[str, ...]
    year_sources: Mapping[int, str]  # year -> the State Council notice(s) for that year
    years: range
    holidays: frozenset[date]
    adjusted_workdays: frozenset[date]
    provisional_years: frozenset[int] = frozenset()  # years without their notice in the file
    deadlines: Mapping[str, WorkingDayDeadline] = field(default_factory=lambda: MappingProxyType({}))  # by id

    def is_provisional(self, d: date) -> bool:
        """True if ``d``'s year has no State Council notice in the file (its schedule is provisional)."""
        return d.year in self.provisional_years

    def provisional_after(self, a: date, b: date) -> bool:
        """True if an answer counted over the days after ``a`` up to ``b`` (either order) depends on a
        provisional year: a deadline ``add_working_days(a, n) == b`` or a count
        ``working_days_between(a, b)``. Provisional years come after every official one, so the
        later of the two dates decides."""
        return self.is_provisional(max(a, b))

    @property
    def official_years(self) -> range:
        """The years whose schedule is the State Council's notice (the first years of ``years``)."""
        provisional = min(self.provisional_years, default=self.years.stop)
        return range(self.years.start, provisional)

    def require_covered(self, d: date) -> None:
        """Raise ``CalendarCoverageError`` unless the file has a schedule (official or provisional)
        for ``d``'s year."""
        if d.year not in self.years:
            raise CalendarCoverageError(
                f"no working-day schedule (调休安排) for {d.year}: {self.file} covers "
                f"{self.years.start}-{self.years.stop - 1}; add a {d.year} entry whose legal_source is "
                f"the State Council notice for that year (国务院办公厅关于{d.year}年部分节假日安排的通知) "
                f"with `python -m ledger.rules.make_workdays add {d.year}`")

    def is_working_day(self, d: date) -> bool:
        """True if ``d`` is a working day in the PRC: a weekday that is no holiday or 调休 day off,
        or a weekend day that the year's notice made a working day."""
        self.require_covered(d)
        if d.weekday() >= _SATURDAY:
            return d in self.adjusted_workdays
        return d not in self.holidays

    def add_working_days(self, d: date, n: int) -> date:
        """The ``n``-th working day after ``d`` (before ``d`` if ``n`` is negative); ``d`` for 0.

        ``d`` itself is not counted, whether it is a working day or not: the double-publicity
        deadline of a decision taken on ``d`` is ``add_working_days(d, 7)``, and publication on
        that day is still in time.
        """
        step = timedelta(days=1 if n >= 0 else -1)
        self.require_covered(d)
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_working_day(d):
                remaining -= 1
        return d

    def working_days_between(self, a: date, b: date) -> int:
        """The number of working days in ``(a, b]``: after ``a``, up to and including ``b``.

        Negative (minus the working days in ``(b, a]``) when ``b`` is before ``a``. It is the
        inverse of ``add_working_days`` for ``n >= 0``:
        ``working_days_between(d, add_working_days(d, n)) == n``.
        """
        if b < a:
            return -self.working_days_between(b, a)
        self.require_covered(a)
        self.require_covered(b)
        index = self._index
        return index[b.toordinal() - self._first] - index[a.toordinal() - self._first]

    @property
    def _first(self) -> int:
        return date(self.years.start, 1, 1).toordinal()

    @cached_property
    def _index(self) -> tuple[int, ...]:
        """Working days counted from the first covered day up to each covered day (inclusive), so
        that a count over any span is two lookups (projections count millions of them). Computed
        once per calendar value, on first use, and kept in the value itself."""
        count, out = 0, []
        d, last = date(self.years.start, 1, 1), date(self.years.stop - 1, 12, 31)
        while d <= last:
            count += self.is_working_day(d)
            out.append(count)
            d += timedelta(days=1)
        return tuple(out)


def parse_workdays(doc: dict[str, Any], file: str) -> WorkdayCalendar:
    """The calendar of the parsed ``workdays.v<N>.json`` (header already checked by the loader).

    Raises ``RulesError`` naming ``file``, the entry (e.g. ``years.2024.holidays[3]``) and the
    reason: a date that is not ``YYYY-MM-DD`` or not in its entry's year, a date listed twice or
    both off and worked, an adjusted working day that is not a Saturday or Sunday, a year without
    its legal source or without 元旦, years that are not contiguous, a provisional year with 调休
    working days or followed by an official one.
    """
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "years"}, {"notes", "deadlines"})
    entries = reader.obj(doc["years"], "years")
    if not entries:
        reader.fail("years", "at least one year is required")
    year_sources: dict[int, str] = {}
    provisional: set[int] = set()
    holidays: set[date] = set()
    workdays: set[date] = set()
    for key, item in entries.items():
        if not re.fullmatch(r"[12][0-9]{3}", key):
            reader.fail(f"years.{key}", "the key must be a year written with four digits")
        year = int(key)
        entry = f"years.{key}"
        reader.keys(item, entry, {"legal_source", "holidays", "adjusted_workdays"}, {"notes", "provisional"})
        year_sources[year] = reader.text(item["legal_source"], f"{entry}.legal_source")
        if item.get("provisional", False) is True:
            provisional.add(year)
            if item["adjusted_workdays"]:
                reader.fail(f"{entry}.adjusted_workdays", "a provisional year has no 调休 working days: "
                                                          "only the year's notice can fix them")
        elif item.get("provisional", False) is not False:
            reader.fail(f"{entry}.provisional", "must be true or false")
        off = _dates(reader, item["holidays"], f"{entry}.holidays", year)
        worked = _dates(reader, item["adjusted_workdays"], f"{entry}.adjusted_workdays", year)
        if date(year, 1, 1) not in off:
            reader.fail(f"{entry}.holidays",
                        f"{year}-01-01 (元旦, 全国年节及纪念日放假办法 art. 2) is missing")
        for i, d in enumerate(worked):
            where = f"{entry}.adjusted_workdays[{i}]"
            if d.weekday() < _SATURDAY:
                reader.fail(where, f"{d} is a {d:%A}: adjusted working days are Saturdays or Sundays "
                                   "(a weekday is a working day anyway)")
            if d in off:
                reader.fail(where, f"{d} is also listed in {entry}.holidays: a date cannot be both off and worked")
        holidays.update(off)
        workdays.update(worked)
    years = sorted(year_sources)
    if gaps := sorted(set(range(years[0], years[-1] + 1)) - set(years)):
        reader.fail("years", f"the years must be contiguous: {', '.join(map(str, gaps))} missing "
                             f"between {years[0]} and {years[-1]}")
    if provisional and (late := [y for y in years if y not in provisional and y > min(provisional)]):
        reader.fail(f"years.{late[0]}", f"an official year cannot follow the provisional year {min(provisional)}: "
                                        "add the notices in order, oldest first")
    return WorkdayCalendar(reader.file, doc["version"], tuple(doc["legal_sources"]),
                           MappingProxyType(dict(sorted(year_sources.items()))),
                           range(years[0], years[-1] + 1), frozenset(holidays), frozenset(workdays),
                           frozenset(provisional), MappingProxyType(_deadlines(reader, doc.get("deadlines", {}))))


def _deadlines(reader: Reader, value: Any) -> dict[str, WorkingDayDeadline]:
    """The ``deadlines`` object: ``{id: {working_days, title, legal_source, applies_from,
    measured_from, measured_to, measured?}}``."""
    out = {}
    for key, item in reader.obj(value, "deadlines").items():
        entry = f"deadlines.{key}"
        reader.keys(item, entry, {"working_days", "title", "legal_source", "applies_from", "measured_from",
                                  "measured_to"}, {"measured"})
        days = item["working_days"]
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            reader.fail(f"{entry}.working_days", f"{days!r} is not a whole number of working days (1 or more)")
        if not isinstance(item.get("measured", True), bool):
            reader.fail(f"{entry}.measured", "must be true or false")
        out[key] = WorkingDayDeadline(key, days, reader.text(item["title"], f"{entry}.title"),
                                      reader.text(item["legal_source"], f"{entry}.legal_source"),
                                      reader.date(item["applies_from"], f"{entry}.applies_from"),
                                      reader.text(item["measured_from"], f"{entry}.measured_from"),
                                      reader.text(item["measured_to"], f"{entry}.measured_to"),
                                      item.get("measured", True))
    return out


def _dates(reader: Reader, value: Any, entry: str, year: int) -> list[date]:
    """A JSON array of distinct ISO dates, all in ``year``."""
    dates: list[date] = []
    for i, item in enumerate(reader.array(value, entry)):
        d = reader.date(item, f"{entry}[{i}]")
        if d.year != year:
            reader.fail(f"{entry}[{i}]", f"{d} is not in {year}")
        if d in dates:
            reader.fail(f"{entry}[{i}]", f"{d} is listed twice")
        dates.append(d)
    return dates
