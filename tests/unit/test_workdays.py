"""PRC working-day calendar with 调休 days, checked against the State Council notices.

2024: 国务院办公厅关于2024年部分节假日安排的通知 — 春节 2月10日至17日放假调休，共8天；2月4日（星期日）、2月18日（星期日）上班.
2025: 国务院办公厅关于2025年部分节假日安排的通知 — 国庆节、中秋节 10月1日至8日放假调休，共8天；
      9月28日（周日）、10月11日（周六）上班.
2026: 国务院办公厅关于2026年部分节假日安排的通知 — 春节 2月15日至23日放假调休，共9天；
      2月14日（周六）、2月28日（周六）上班.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import CalendarCoverageError, DomainError, RulesError
from ledger.rules import make_workdays
from ledger.rules.loader import default_directory, load_workdays
from tests.helpers import copy_rules

FILE = "workdays.v1.json"  # the name the small test files below are written under
CURRENT = "workdays.v2.json"  # the committed calendar: 2017-2026 official, 2027-2100 provisional
CAL = load_workdays()  # the calendar of ledger/rules, as every process gets it from the loader


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def test_spring_festival_2024() -> None:
    assert CAL.is_working_day(date(2024, 2, 4))  # Sunday worked
    assert CAL.is_working_day(date(2024, 2, 9))  # 除夕, Friday: a working day in the 2024 notice
    assert not any(CAL.is_working_day(d) for d in days(date(2024, 2, 10), date(2024, 2, 17)))
    assert CAL.is_working_day(date(2024, 2, 18))  # Sunday worked
    assert not CAL.is_working_day(date(2024, 2, 3))  # ordinary Saturday


def test_national_day_2025() -> None:
    assert CAL.is_working_day(date(2025, 9, 28))  # Sunday worked
    assert not any(CAL.is_working_day(d) for d in days(date(2025, 10, 1), date(2025, 10, 8)))
    assert CAL.is_working_day(date(2025, 10, 9))
    assert CAL.is_working_day(date(2025, 10, 11))  # Saturday worked
    assert not CAL.is_working_day(date(2025, 10, 12))


def test_spring_festival_2026() -> None:
    assert CAL.is_working_day(date(2026, 2, 14))  # Saturday worked
    assert not any(CAL.is_working_day(d) for d in days(date(2026, 2, 15), date(2026, 2, 23)))
    assert CAL.is_working_day(date(2026, 2, 28))  # Saturday worked


def test_ordinary_week() -> None:
    assert [CAL.is_working_day(d) for d in days(date(2024, 3, 4), date(2024, 3, 10))] == [
        True, True, True, True, True, False, False]


@pytest.mark.parametrize(
    ("decision", "deadline"),
    [
        # Decision on Thursday 2024-02-08: 2/9, 2/18 (Sunday), 2/19, 2/20, 2/21, 2/22, 2/23.
        (date(2024, 2, 8), date(2024, 2, 23)),
        # Decision on 2025-09-30: 10/9, 10/10, 10/11 (Saturday), 10/13, 10/14, 10/15, 10/16.
        (date(2025, 9, 30), date(2025, 10, 16)),
        # A decision taken on a holiday (2025-10-03) has the same deadline as one on 9/30.
        (date(2025, 10, 3), date(2025, 10, 16)),
        # Ordinary weeks: Monday 2024-03-04 + 7 working days = Wednesday 2024-03-13.
        (date(2024, 3, 4), date(2024, 3, 13)),
    ],
)
def test_double_publicity_deadline_is_seven_working_days(decision: date, deadline: date) -> None:
    assert CAL.add_working_days(decision, 7) == deadline
    assert CAL.working_days_between(decision, deadline) == 7


def test_friday_plus_one_is_a_worked_sunday() -> None:
    assert CAL.add_working_days(date(2024, 2, 2), 1) == date(2024, 2, 4)


def test_zero_and_negative_steps() -> None:
    assert CAL.add_working_days(date(2024, 2, 10), 0) == date(2024, 2, 10)
    assert CAL.add_working_days(date(2024, 2, 19), -1) == date(2024, 2, 18)
    assert CAL.add_working_days(date(2024, 2, 18), -1) == date(2024, 2, 9)


def test_working_days_between_counts_half_open_interval() -> None:
    assert CAL.working_days_between(date(2024, 2, 9), date(2024, 2, 18)) == 1
    assert CAL.working_days_between(date(2024, 2, 18), date(2024, 2, 9)) == -1
    assert CAL.working_days_between(date(2024, 2, 9), date(2024, 2, 9)) == 0


def test_coverage_is_2017_official_then_provisional_to_2100() -> None:
    assert CAL.years == range(2017, 2101)
    assert CAL.official_years == range(2017, 2027)
    assert CAL.provisional_years == frozenset(range(2027, 2101))


@pytest.mark.parametrize("day", [date(2016, 12, 31), date(2000, 6, 1), date(2101, 1, 3)])
def test_years_outside_the_file_raise(day: date) -> None:
    with pytest.raises(CalendarCoverageError, match=str(day.year)) as info:
        CAL.is_working_day(day)
    message = str(info.value)
    assert CURRENT in message  # which file to extend
    assert f"国务院办公厅关于{day.year}年部分节假日安排的通知" in message  # and with which notice


def test_deadline_running_past_the_lunar_table_raises() -> None:
    with pytest.raises(DomainError):
        CAL.add_working_days(date(2100, 12, 28), 7)


# --------------------------------------------------------------------------- 2017-2018 (Order 644)


def test_spring_festival_2017_under_order_644() -> None:
    """2017 notice: 春节 27 Jan (除夕, given by 调休) to 2 Feb; Sunday 22 Jan and Saturday 4 Feb worked."""
    assert not any(CAL.is_working_day(d) for d in days(date(2017, 1, 27), date(2017, 2, 2)))
    assert CAL.is_working_day(date(2017, 1, 22)) and CAL.is_working_day(date(2017, 2, 4))
    # decided Friday 20 Jan 2017: Sun 22 (worked), Mon 23 to Thu 26, Fri 3 and Sat 4 Feb (worked)
    assert CAL.add_working_days(date(2017, 1, 20), 7) == date(2017, 2, 4)
    assert not CAL.provisional_after(date(2017, 1, 20), date(2017, 2, 4))


def test_national_day_2018() -> None:
    """2018 notice: 1-7 Oct off; Saturday 29 and Sunday 30 Sep worked."""
    assert CAL.is_working_day(date(2018, 9, 29)) and CAL.is_working_day(date(2018, 9, 30))
    assert not any(CAL.is_working_day(d) for d in days(date(2018, 10, 1), date(2018, 10, 7)))
    assert CAL.add_working_days(date(2018, 9, 28), 7) == date(2018, 10, 12)  # 29, 30 Sep, 8-12 Oct


@pytest.mark.parametrize("year, net", [(2017, 11), (2018, 11), (2019, 11), (2020, 13), (2021, 11),
                                       (2022, 11), (2023, 11), (2024, 11), (2025, 13), (2026, 13)])
def test_net_days_off_of_each_official_year(year: int, net: int) -> None:
    """Weekday holidays minus working weekend days: 11 under Order 644 (2017-2024; 13 in 2020, the
    extended Spring Festival), 13 under Order 795 (from 2025) — docs/domain-notes.md §16.1."""
    assert net_days_off(year) == net


def test_every_provisional_year_nets_13() -> None:
    """13 statutory days, each made up when it falls on a weekend or on another holiday (2028: 中秋
    on 国庆 3 Oct), and no 调休: a provisional year that does not net to 13 is wrong."""
    assert {year: net_days_off(year) for year in CAL.provisional_years} == dict.fromkeys(CAL.provisional_years, 13)


def net_days_off(year: int) -> int:
    return (sum(1 for d in CAL.holidays if d.year == year and d.weekday() < 5)
            - sum(1 for d in CAL.adjusted_workdays if d.year == year))


# --------------------------------------------------------------------------- provisional years


def test_provisional_2027_is_the_statutory_table() -> None:
    """The 2027 table of docs/domain-notes.md §16.1: statutory days and the art. 6 make-up days."""
    off_2027 = sorted(d for d in CAL.holidays if d.year == 2027)
    assert off_2027 == [date(2027, 1, 1), *days(date(2027, 2, 5), date(2027, 2, 10)), date(2027, 4, 5),
                        *days(date(2027, 5, 1), date(2027, 5, 4)), date(2027, 6, 9), date(2027, 9, 15),
                        *days(date(2027, 10, 1), date(2027, 10, 5))]
    assert not any(d.year == 2027 for d in CAL.adjusted_workdays)  # no 调休 before the notice
    assert CAL.is_provisional(date(2027, 3, 1)) and not CAL.is_provisional(date(2026, 12, 31))
    assert "provisional" in CAL.year_sources[2027] and "第六条" in CAL.year_sources[2027]


def test_deadline_crossing_from_the_last_official_year_is_provisional() -> None:
    """Decided Tue 22 Dec 2026: 23, 24, 25, 28, 29, 30, 31 Dec — official, the day before the
    provisional year; decided Wed 23 Dec: the 7th working day is Mon 4 Jan 2027 (1 Jan off)."""
    assert CAL.add_working_days(date(2026, 12, 22), 7) == date(2026, 12, 31)
    assert not CAL.provisional_after(date(2026, 12, 22), date(2026, 12, 31))
    due = CAL.add_working_days(date(2026, 12, 23), 7)
    assert due == date(2027, 1, 4)
    assert CAL.provisional_after(date(2026, 12, 23), due)
    assert CAL.working_days_between(date(2026, 12, 23), date(2027, 1, 4)) == 7


def test_spring_festival_2027_provisional() -> None:
    # decided Thu 4 Feb 2027: Fri 5 to Wed 10 Feb off (除夕 to 初三 and two make-up days)
    assert CAL.add_working_days(date(2027, 2, 4), 1) == date(2027, 2, 11)


@pytest.mark.parametrize("decided, due", [(date(2030, 9, 27), date(2030, 10, 11)),
                                          (date(2045, 3, 1), date(2045, 3, 10)),
                                          (date(2099, 12, 21), date(2099, 12, 30))])
def test_far_years_are_covered_provisionally(decided: date, due: date) -> None:
    assert CAL.add_working_days(decided, 7) == due
    assert CAL.provisional_after(decided, due)


covered_days = st.dates(min_value=date(2017, 1, 1), max_value=date(2099, 11, 30))


@given(covered_days, st.integers(min_value=0, max_value=20))
def test_add_then_count_is_identity(start: date, n: int) -> None:
    end = CAL.add_working_days(start, n)
    assert CAL.working_days_between(start, end) == n
    if n:
        assert CAL.is_working_day(end)
        assert end > start


@given(covered_days, st.integers(min_value=0, max_value=20))
def test_going_back_from_a_working_day_returns_to_it(start: date, n: int) -> None:
    start = CAL.add_working_days(start, 1)  # a working day
    assert CAL.add_working_days(CAL.add_working_days(start, n), -n) == start


# --------------------------------------------------------------------------- the rules file


def test_every_year_names_its_notice_and_the_file_names_the_2024_revision() -> None:
    calendar = CAL
    assert calendar.file.endswith(CURRENT)
    assert calendar.version == 2
    for year, source in calendar.year_sources.items():
        if year in calendar.provisional_years:
            assert source.startswith("暂定（provisional）：国务院办公厅关于" + str(year))
            continue
        assert source.startswith(f"国务院办公厅关于{year}年部分节假日安排的通知")
    assert "延长2020年春节假期" in calendar.year_sources[2020]
    assert "调整2019年劳动节假期安排" in calendar.year_sources[2019]
    assert any("国务院令第795号" in s and "2025-01-01" in s for s in calendar.legal_sources)


def test_committed_file_matches_the_holidays_package() -> None:
    """An upgrade of the holidays package that changes a date of a covered year must be noticed:
    then check the date against the State Council notice and regenerate the file
    (``python -m ledger.rules.make_workdays write``) or report the error to the package."""
    doc = json.loads((default_directory() / CURRENT).read_text(encoding="utf-8"))
    official = sorted(int(y) for y, e in doc["years"].items() if not e.get("provisional"))
    package = make_workdays.package_dates(official[0], official[-1])
    for year, (holidays, workdays) in package.items():
        entry = doc["years"][str(year)]
        assert entry["holidays"] == [d.isoformat() for d in holidays], f"holidays of {year}"
        assert entry["adjusted_workdays"] == [d.isoformat() for d in workdays], f"adjusted_workdays of {year}"


def test_generator_reproduces_the_committed_file() -> None:
    """The file is written by the generator only: legal sources and notes are edited there."""
    committed = (default_directory() / CURRENT).read_text(encoding="utf-8")
    assert make_workdays.render(make_workdays.build()) == committed


def test_run_time_module_does_not_import_holidays() -> None:
    code = ("import sys, datetime, ledger.rules.loader as r; "
            "r.load().calendar.is_working_day(datetime.date(2024, 2, 4)); print('holidays' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "False"


def small_file() -> dict[str, Any]:
    return {
        "name": "workdays",
        "version": 1,
        "legal_sources": ["全国年节及纪念日放假办法"],
        "years": {
            "2024": {"legal_source": "国务院办公厅关于2024年部分节假日安排的通知",
                     "holidays": ["2024-01-01", "2024-02-10", "2024-02-15"],
                     "adjusted_workdays": ["2024-02-04", "2024-02-18"]},
            "2025": {"legal_source": "国务院办公厅关于2025年部分节假日安排的通知",
                     "holidays": ["2025-01-01", "2025-10-08"],
                     "adjusted_workdays": ["2025-10-11"]},
        },
    }


def write(directory: Path, doc: dict[str, Any]) -> Path:
    (directory / FILE).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return directory


def test_small_file_is_loaded(tmp_path: Path) -> None:
    calendar = load_workdays(write(tmp_path, small_file()))
    assert calendar.years == range(2024, 2026)
    assert calendar.year_sources[2025] == "国务院办公厅关于2025年部分节假日安排的通知"
    assert calendar.is_working_day(date(2024, 2, 4))  # Sunday worked
    assert not calendar.is_working_day(date(2024, 2, 15))  # Thursday off
    assert calendar.is_working_day(date(2024, 2, 14))  # not listed in this small file
    assert not calendar.is_working_day(date(2024, 2, 10))  # Saturday, holiday
    assert not calendar.is_working_day(date(2024, 2, 17))  # ordinary Saturday
    assert calendar.add_working_days(date(2025, 10, 7), 1) == date(2025, 10, 9)  # 10-08 off
    assert calendar.working_days_between(date(2025, 10, 10), date(2025, 10, 13)) == 2
    with pytest.raises(CalendarCoverageError, match="2026") as info:
        calendar.add_working_days(date(2025, 12, 30), 3)
    assert str(tmp_path / FILE) in str(info.value)
    assert "国务院办公厅关于2026年部分节假日安排的通知" in str(info.value)


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _add(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in path:
            target = target[key]
        target.append(value)
    return change


def _delete(path: list[str | int]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


@pytest.mark.parametrize(
    ("change", "entry", "reason"),
    [
        (_set(["years", "2024", "holidays", 1], "2024-2-10"), "years.2024.holidays[1]", "YYYY-MM-DD"),
        (_set(["years", "2024", "holidays", 1], "2024-02-30"), "years.2024.holidays[1]",
         "not a calendar date"),
        (_set(["years", "2024", "holidays", 1], 20240210), "years.2024.holidays[1]", "YYYY-MM-DD"),
        (_add(["years", "2024", "holidays"], "2025-01-02"), "years.2024.holidays[3]", "not in 2024"),
        (_add(["years", "2025", "adjusted_workdays"], "2024-10-12"), "years.2025.adjusted_workdays[1]",
         "not in 2025"),
        (_add(["years", "2024", "holidays"], "2024-02-15"), "years.2024.holidays[3]", "listed twice"),
        (_add(["years", "2024", "adjusted_workdays"], "2024-02-04"), "years.2024.adjusted_workdays[2]",
         "listed twice"),
        (_add(["years", "2024", "holidays"], "2024-02-18"), "years.2024.adjusted_workdays[1]",
         "both off and worked"),
        (_add(["years", "2025", "adjusted_workdays"], "2025-10-09"), "years.2025.adjusted_workdays[1]",
         "Saturdays or Sundays"),
        (_set(["years", "2024", "holidays"], ["2024-02-15"]), "years.2024.holidays", "元旦"),
        (_set(["years", "2024", "holidays"], "2024-01-01"), "years.2024.holidays", "JSON array"),
        (_set(["years", "2024", "legal_source"], " "), "years.2024.legal_source", "non-empty string"),
        (_delete(["years", "2025", "legal_source"]), "years.2025", "legal_source"),
        (_set(["years", "2025", "source"], "x"), "years.2025", "unknown key(s) source"),
        (_set(["years", "2027"], {"legal_source": "国务院办公厅关于2027年部分节假日安排的通知",
                                  "holidays": ["2027-01-01"], "adjusted_workdays": []}),
         "years", "2026 missing"),
        (_set(["years", "25"], {}), "years.25", "four digits"),
        (_set(["years"], {}), "years", "at least one year"),
        (_set(["years"], []), "years", "JSON object"),
        (_delete(["years"]), "file", "years"),
        (_set(["legal_sources"], []), "legal_sources", "legal sources"),
        (_set(["name"], "working_days"), "name", "does not match"),
        (_set(["version"], 2), "version", "does not match"),
    ],
)
def test_invalid_workdays_files_are_refused(tmp_path: Path, change: Callable[[dict[str, Any]], None],
                                            entry: str, reason: str) -> None:
    doc = small_file()
    change(doc)
    write(tmp_path, doc)
    with pytest.raises(RulesError) as info:
        load_workdays(tmp_path)
    assert info.value.file == str(tmp_path / FILE)
    assert info.value.entry == entry
    assert reason in info.value.reason
    assert FILE in str(info.value)


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(RulesError, match="cannot be read as JSON"):
        load_workdays(tmp_path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="no rules file"):
        load_workdays(tmp_path)


def test_highest_version_is_loaded(tmp_path: Path) -> None:
    write(tmp_path, small_file())
    doc = small_file()
    doc["version"] = 2
    doc["years"]["2026"] = {"legal_source": "国务院办公厅关于2026年部分节假日安排的通知",
                            "holidays": ["2026-01-01"], "adjusted_workdays": ["2026-01-04"]}
    (tmp_path / "workdays.v2.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    calendar = load_workdays(tmp_path)
    assert calendar.version == 2
    assert calendar.years == range(2024, 2027)
    assert calendar.file.endswith("workdays.v2.json")


# --------------------------------------------------------------------------- adding a notice; the deadlines


def test_adding_a_notice_writes_the_next_version_and_lists_the_days_that_change(tmp_path: Path) -> None:
    copy_rules(tmp_path, "workdays")
    notice = tmp_path / "notice.json"
    off = sorted(d.isoformat() for d in CAL.holidays if d.year == 2027 and d != date(2027, 10, 5))
    notice.write_text(json.dumps({"legal_source": "国务院办公厅关于2027年部分节假日安排的通知",
                                  "holidays": off, "adjusted_workdays": ["2027-10-09"]}), encoding="utf-8")
    with pytest.raises(SystemExit, match="2027 is still provisional"):
        make_workdays.add(2028, tmp_path, notice)
    written, changed = make_workdays.add(2027, tmp_path, notice)
    assert written.name == "workdays.v3.json"
    assert changed == ["2027-10-05 Tue: day off -> working day", "2027-10-09 Sat: day off -> working day"]
    calendar = load_workdays(tmp_path)
    assert (calendar.version, min(calendar.provisional_years)) == (3, 2028)
    with pytest.raises(SystemExit, match="not a provisional year"):
        make_workdays.add(2027, tmp_path, notice)


def test_the_short_deadlines_are_data_with_their_sources() -> None:
    d = CAL.deadlines
    assert {k: v.working_days for k, v in d.items()} == {
        "publication": 7, "penalty_withdrawal": 3, "court_deletion": 3, "wage_removal": 10, "repair_decision": 1,
        "repair_department": 3}
    assert "第八十五条" in d["penalty_withdrawal"].legal_source and "第十条" in d["court_deletion"].legal_source
    assert "第十七条" in d["wage_removal"].legal_source and "第四十三条" in d["repair_decision"].legal_source
    assert not d["repair_department"].measured


@pytest.mark.parametrize("change, entry", [
    (lambda doc: doc["deadlines"]["court_deletion"].update(working_days=0), "deadlines.court_deletion.working_days"),
    (lambda doc: doc["deadlines"]["court_deletion"].pop("legal_source"), "deadlines.court_deletion"),
    (lambda doc: doc["years"]["2027"]["adjusted_workdays"].append("2027-02-20"), "years.2027.adjusted_workdays"),
    (lambda doc: doc["years"]["2029"].pop("provisional"), "years.2029"),
])
def test_invalid_deadlines_and_provisional_years_are_refused(tmp_path: Path, change: Callable[[dict[str, Any]], None],
                                                             entry: str) -> None:
    doc = json.loads((default_directory() / CURRENT).read_text(encoding="utf-8"))
    change(doc)
    copy_rules(tmp_path, "workdays")
    (tmp_path / CURRENT).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_workdays(tmp_path)
    assert info.value.entry == entry
