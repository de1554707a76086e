"""The one clock: the only module of the product that reads the wall clock.

Every "today" of the ledger is a China Standard Time date (docs/domain-notes.md: decision days,
publication deadlines, the day an entry was appended are China-local dates), whatever the machine's
time zone: a decision dated today and submitted at 00:30 in Beijing (16:30 UTC the day before) is
dated today, not in the future. The composition root (ops/root.py) builds one ``Clock`` per process
and hands it, or its ``today``/``now`` methods, to whoever decides a date; the pure cores take those
as values or callables and never read the time themselves. Tests build a ``Clock.fixed(...)``.

``now()`` is an aware UTC datetime; ``today()`` is the China-local date of that moment.

Ledger time is the broker's: ``BrokerClock`` is the sequencer's clock, the latest time the broker
stamped on a record the sequencer read or wrote (LogAppendTime), carried forward by this machine's
monotonic clock, so that a sequencer whose machine's clock is wrong (docs/architecture.md, "One
clock") still dates entries and decides "today" by the broker's.
"""

from __future__ import annotations

import time as _time
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


class BrokerClock:
    """The broker's clock as one process sees it: the latest broker timestamp observed (the LogAppendTime
    of a record of credit.submissions or credit.events, which the broker stamps when it appends it)
    carried forward by this machine's monotonic clock (which no setting of the wall clock moves). Each
    observation is a lower bound of the broker's time when it arrives (by the network's delay, a few
    milliseconds), so the largest one wins. Before the first observation it reads `fallback`.
    ``clock`` is a ``Clock`` over it, for whoever takes one."""

    def __init__(self, fallback: Clock = SYSTEM, monotonic: Callable[[], float] = _time.monotonic) -> None:
        self.fallback = fallback
        self._monotonic = monotonic
        self._seen: tuple[float, float] | None = None  # (broker seconds, monotonic seconds) of the best observation
        self.clock = Clock(self.now)

    @property
    def observed(self) -> bool:
        return self._seen is not None

    def observe(self, timestamp_ms: int) -> None:
        at, mono = timestamp_ms / 1000, self._monotonic()
        if self._seen is None or at > self._seen[0] + (mono - self._seen[1]):
            self._seen = (at, mono)

    def now(self) -> datetime:
        if self._seen is None:
            return self.fallback.now()
        at, mono = self._seen
        return datetime.fromtimestamp(at + (self._monotonic() - mono), UTC)

    def today(self) -> date:
        return self.clock.today()

    def skew(self) -> float | None:
        """Seconds by which the fallback (this machine's clock) is ahead of the broker's (None: not observed)."""
        return None if self._seen is None else (self.fallback.now() - self.now()).total_seconds()


def parse_day(value: str, what: str) -> date:
    """A YYYY-MM-DD option value, or a clear error naming the option."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: '{value}' is not a date YYYY-MM-DD") from None
