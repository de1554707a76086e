"""PRC working-day calendar with 调休 days, checked against the State Council notices.

2024: 国务院办公厅关于2024年部分节假日安排的通知 — 春节 2月10日至17日放假调休，共8天；2月4日（星期日）、2月18日（星期日）上班.
2025: 国务院办公厅关于2025年部分节假日安排的通知 — 国庆节、中秋节 10月1日至8日放假调休，共8天；
      9月28日（周日）、10月11日（周六）上班.
2026: 国务院办公厅关于2026年部分节假日安排的通知 — 春节 2月15日至23日放假调休，共9天；
      2月14日（周六）、2月28日（周六）上班.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import CalendarCoverageError, DomainError
from ledger.domain.workdays import add_working_days, covered_years, is_working_day, working_days_between


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def test_spring_festival_2024() -> None:
    assert is_working_day(date(2024, 2, 4))  # Sunday worked
    assert is_working_day(date(2024, 2, 9))  # 除夕, Friday: a working day in the 2024 notice
    assert not any(is_working_day(d) for d in days(date(2024, 2, 10), date(2024, 2, 17)))
    assert is_working_day(date(2024, 2, 18))  # Sunday worked
    assert not is_working_day(date(2024, 2, 3))  # ordinary Saturday


def test_national_day_2025() -> None:
    assert is_working_day(date(2025, 9, 28))  # Sunday worked
    assert not any(is_working_day(d) for d in days(date(2025, 10, 1), date(2025, 10, 8)))
    assert is_working_day(date(2025, 10, 9))
    assert is_working_day(date(2025, 10, 11))  # Saturday worked
    assert not is_working_day(date(2025, 10, 12))


def test_spring_festival_2026() -> None:
    assert is_working_day(date(2026, 2, 14))  # Saturday worked
    assert not any(is_working_day(d) for d in days(date(2026, 2, 15), date(2026, 2, 23)))
    assert is_working_day(date(2026, 2, 28))  # Saturday worked


def test_ordinary_week() -> None:
    assert [is_working_day(d) for d in days(date(2024, 3, 4), date(2024, 3, 10))] == [
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
    assert add_working_days(decision, 7) == deadline
    assert working_days_between(decision, deadline) == 7


def test_friday_plus_one_is_a_worked_sunday() -> None:
    assert add_working_days(date(2024, 2, 2), 1) == date(2024, 2, 4)


def test_zero_and_negative_steps() -> None:
    assert add_working_days(date(2024, 2, 10), 0) == date(2024, 2, 10)
    assert add_working_days(date(2024, 2, 19), -1) == date(2024, 2, 18)
    assert add_working_days(date(2024, 2, 18), -1) == date(2024, 2, 9)


def test_working_days_between_counts_half_open_interval() -> None:
    assert working_days_between(date(2024, 2, 9), date(2024, 2, 18)) == 1
    assert working_days_between(date(2024, 2, 18), date(2024, 2, 9)) == -1
    assert working_days_between(date(2024, 2, 9), date(2024, 2, 9)) == 0


def test_coverage_is_2001_to_2026_with_holidays_0_109() -> None:
    assert covered_years() == range(2001, 2027)


@pytest.mark.parametrize("day", [date(2027, 1, 4), date(2000, 6, 1)])
def test_years_without_official_schedule_raise(day: date) -> None:
    with pytest.raises(CalendarCoverageError, match=str(day.year)):
        is_working_day(day)


def test_deadline_running_into_an_uncovered_year_raises() -> None:
    with pytest.raises(DomainError):
        add_working_days(date(2026, 12, 28), 7)


covered_days = st.dates(min_value=date(2001, 1, 1), max_value=date(2026, 11, 30))


@given(covered_days, st.integers(min_value=0, max_value=20))
def test_add_then_count_is_identity(start: date, n: int) -> None:
    end = add_working_days(start, n)
    assert working_days_between(start, end) == n
    if n:
        assert is_working_day(end)
        assert end > start


@given(covered_days, st.integers(min_value=0, max_value=20))
def test_going_back_from_a_working_day_returns_to_it(start: date, n: int) -> None:
    start = add_working_days(start, 1)  # a working day
    assert add_working_days(add_working_days(start, n), -n) == start
