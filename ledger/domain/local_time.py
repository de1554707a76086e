"""The ledger's local time zone: China Standard Time, UTC+8 all year (no daylight saving).

Every legal date of the city's credit records (decision days, publication deadlines, the day a
ledger entry was appended) is a China-local date. A constant, not a clock: nothing here reads the
time.
"""

from __future__ import annotations

from datetime import timedelta, timezone

CHINA = timezone(timedelta(hours=8), "UTC+08:00")
