"""The one clock (ledger/platform/clock.py): "today" is the China Standard Time date of the moment,
whatever the machine's time zone; a fixed clock for tests; a naive moment is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ledger.platform.clock import Clock, parse_day


def test_today_is_the_date_in_beijing_not_the_utc_date() -> None:
    clock = Clock.fixed(datetime(2026, 12, 3, 16, 30, tzinfo=UTC))  # 00:30 on the 4th in Beijing
    assert clock.today() == date(2026, 12, 4)
    assert clock.now() == datetime(2026, 12, 3, 16, 30, tzinfo=UTC) and clock.now().tzinfo is UTC
    assert Clock.fixed(datetime(2026, 12, 3, 15, 59, 59, tzinfo=UTC)).today() == date(2026, 12, 3)
    # the same moment told in another zone is the same day in Beijing
    new_york = timezone(timedelta(hours=-5))
    assert Clock.fixed(datetime(2026, 12, 3, 11, 30, tzinfo=new_york)).today() == date(2026, 12, 4)
    assert clock.now_ms() == int(datetime(2026, 12, 3, 16, 30, tzinfo=UTC).timestamp() * 1000)


def test_a_clock_on_a_day_reads_that_day() -> None:
    assert Clock.on(date(2027, 1, 5)).today() == date(2027, 1, 5)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Clock.fixed(datetime(2026, 12, 4, 0, 30))
    with pytest.raises(ValueError, match="naive"):
        Clock(lambda: datetime(2026, 12, 4, 0, 30)).now()


def test_the_machine_clock_gives_an_aware_moment_and_its_china_date() -> None:
    clock = Clock()
    now = clock.now()
    assert now.tzinfo is UTC
    assert clock.today() in {(now + timedelta(hours=8)).date(), (now + timedelta(hours=8, seconds=5)).date()}


def test_a_day_option_names_itself_when_wrong() -> None:
    assert parse_day("2027-01-05", "--today") == date(2027, 1, 5)
    with pytest.raises(ValueError, match="--today: '05/01/2027' is not a date"):
        parse_day("05/01/2027", "--today")
