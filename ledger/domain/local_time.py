"""The ledger's local time zone: China Standard Time, UTC+8 all year (no daylight saving).

Every legal date of the city's credit records (decision days, publication deadlines, the day a
ledger entry was appended) is a China-local date. A constant, not a clock: nothing here reads the
time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "UTC+08:00")


# --------------------------------------------------------------------------- calendar periods in China time
# The department supervision counts by China-local day and month (consumers/supervision/): a period
# is [start, end) in seconds since the epoch, start being 00:00 China time of its first day. Pure:
# the moment comes in as a value (a ledger record's timestamp), never from a clock.

def china_day(seconds: float) -> date:
    """The China-local date of a moment given in seconds since the epoch."""
    return datetime.fromtimestamp(seconds, CHINA).date()


def china_midnight(day: date) -> float:
    """00:00 China time of ``day``, in seconds since the epoch."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA).timestamp()


def day_period(seconds: float) -> tuple[float, float]:
    """The China-local day holding the moment: (its 00:00, the next day's 00:00), in epoch seconds."""
    day = china_day(seconds)
    return china_midnight(day), china_midnight(day + timedelta(days=1))


def month_period(seconds: float) -> tuple[float, float]:
    """The China-local calendar month holding the moment: (00:00 of its first day, 00:00 of the next
    month's first day), in epoch seconds."""
    first = china_day(seconds).replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return china_midnight(first), china_midnight(following)


def bucket_period(seconds: float, size: float) -> tuple[float, float]:
    """The bucket of ``size`` seconds holding the moment (buckets aligned to the epoch; for a size
    that divides an hour they are aligned to China-time hours too, UTC+8 being whole hours)."""
    start = seconds - seconds % size
    return start, start + size
