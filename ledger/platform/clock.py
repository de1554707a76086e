"""The one clock: the only module of the product that reads the wall clock.

Every "today" of the ledger is a China Standard Time date (docs/domain-notes.md: decision days,
publication deadlines, the day an entry was appended are China-local dates), whatever the machine's
time zone: a decision dated today and submitted at 00:30 in Beijing (16:30 UTC the day before) is
dated today, not in the future. The composition root (ops/root.py) builds one ``Clock`` per process
and hands it, or its ``today``/``now`` methods, to whoever decides a date; the pure cores take those
as values or callables and never read the time themselves. Tests build a ``Clock.fixed(...)``.

``now()`` is an aware UTC datetime; ``today()`` is the China-local date of that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from ledger.domain.local_time import CHINA


def _system_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Clock:
    source: Callable[[], datetime] = field(default=_system_now)

    def now(self) -> datetime:
        """The current moment, aware, in UTC."""
        moment = self.source()
        if moment.tzinfo is None:
            raise ValueError(f"the clock's source gave a naive datetime {moment!r}: it must carry a zone")
        return moment.astimezone(UTC)

    def today(self) -> date:
        """Today's date in China Standard Time (UTC+8)."""
        return self.now().astimezone(CHINA).date()

    def now_ms(self) -> int:
        """The current moment in milliseconds since the epoch."""
        return int(self.now().timestamp() * 1000)

    def timestamp(self) -> float:
        """The current moment in seconds since the epoch."""
        return self.now().timestamp()

    @classmethod
    def fixed(cls, moment: datetime) -> Clock:
        """A clock that always reads ``moment`` (aware), for tests and for a pass run "as of" a day."""
        if moment.tzinfo is None:
            raise ValueError(f"a fixed clock needs an aware datetime, got {moment!r}")
        return cls(lambda: moment)

    @classmethod
    def on(cls, day: date) -> Clock:
        """A clock fixed at noon, China Standard Time, of ``day`` (its ``today()`` is ``day``)."""
        return cls.fixed(datetime.combine(day, time(12), CHINA))


SYSTEM = Clock()  # the machine's clock (faked as a whole by libfaketime in the faked-time test runs)


def parse_day(value: str, what: str) -> date:
    """A YYYY-MM-DD option value, or a clear error naming the option."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: '{value}' is not a date YYYY-MM-DD") from None
