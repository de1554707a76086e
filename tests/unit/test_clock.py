"""The one clock (ledger/platform/clock.py): "today" is the China Standard Time date of the moment,
whatever the machine's time zone; a fixed clock for tests; a naive moment is refused; and the broker's
clock, which the sequencer judges by, carried forward from the broker's timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ledger.domain.local_time import CHINA
from ledger.platform.clock import BrokerClock, Clock, parse_day


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


def test_the_broker_clock_carries_the_latest_broker_time_forward_on_the_monotonic_clock() -> None:
    ticks = [100.0]
    machine = Clock.fixed(datetime(2026, 12, 4, 0, 5, tzinfo=CHINA))  # this machine: 10 minutes ahead
    broker = BrokerClock(fallback=machine, monotonic=lambda: ticks[0])
    assert broker.now() == machine.now() and broker.skew() is None  # nothing observed yet: the machine's
    at = datetime(2026, 12, 3, 23, 55, tzinfo=CHINA)
    broker.observe(int(at.timestamp() * 1000))
    assert broker.now() == at and broker.today() == date(2026, 12, 3)
    ticks[0] += 30  # half a minute later by the monotonic clock
    assert broker.now() == at + timedelta(seconds=30) and broker.skew() == 600 - 30
    broker.observe(int(at.timestamp() * 1000))  # an older observation (a record appended earlier) changes nothing
    assert broker.now() == at + timedelta(seconds=30)
    broker.observe(int((at + timedelta(seconds=31)).timestamp() * 1000))  # a later one wins
    assert broker.now() == at + timedelta(seconds=31)
    ticks[0] += 300
    assert broker.today() == date(2026, 12, 4)  # the broker's midnight, not the machine's
