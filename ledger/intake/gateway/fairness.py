"""A fair gateway: what each department may have of it, decided without I/O (the clock comes in as `now`).

Two limits per department, both on the submission routes:

  events per second   a token bucket: it holds up to `burst` events and refills at `events_per_second`;
                      a request takes as many as it carries (a batch its events). A request needs the
                      bucket to hold min(its events, burst): a batch larger than the burst is taken from
                      a full bucket, which goes into debt and refills from there, so every batch the
                      gateway accepts (up to 10,000 events) can pass and the rate still holds over time.
  concurrent requests the requests of the department being handled at once (from the token's check to
                      the answer, the wait for the sequencer's outcome included).

Over either the answer is 429 with Retry-After: for the rate, when the bucket will hold enough; for
concurrency, one second (a request's answer usually comes within it). Zero means no limit. The limits
are the settings' (LEDGER_GATEWAY_*) unless the limits file names the department (or "*": every
department it does not name); `parse_limits` reads that file's JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

RATE, CONCURRENCY = "rate", "concurrency"
FIELDS = {"events_per_second": float, "burst": int, "concurrent_requests": int}
EVERY = "*"


@dataclass(frozen=True)
class Limits:
    events_per_second: float  # the bucket's refill; 0: no rate limit
    burst: int  # the bucket's size in events
    concurrent_requests: int  # 0: no cap


@dataclass(frozen=True)
class Refusal:
    reason: str  # RATE or CONCURRENCY
    retry_after: int  # whole seconds, at least 1 (the Retry-After header)
    limits: Limits


@dataclass
class Bucket:
    tokens: float
    stamp: float


def parse_limits(data: Any, default: Limits) -> dict[str, Limits]:
    """The limits file's JSON, {department or "*": {events_per_second?, burst?, concurrent_requests?}},
    as Limits per department (a field not given is the default's; "*" changes the default of the
    departments not named). ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError('expected {department or "*": {events_per_second, burst, concurrent_requests}}')
    every = _limits(EVERY, data.get(EVERY, {}), default)
    out = {EVERY: every}
    for dept, given in data.items():
        if dept != EVERY:
            out[dept] = _limits(dept, given, every)
    return out


def _limits(dept: str, given: Any, base: Limits) -> Limits:
    if not isinstance(given, dict) or set(given) - set(FIELDS):
        raise ValueError(f"{dept}: expected an object with some of {', '.join(FIELDS)}")
    values: dict[str, Any] = {}
    for name, kind in FIELDS.items():
        if name in given:
            v = given[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0 or \
                    (kind is int and v != int(v)):
                raise ValueError(f"{dept}.{name}: {v!r} is not a {'whole ' if kind is int else ''}number >= 0")
            values[name] = kind(v)
    limits = replace(base, **values)
    if limits.events_per_second > 0 and limits.burst < 1:
        raise ValueError(f"{dept}.burst: a rate needs a burst of at least 1 event")
    return limits


@dataclass
class Fairness:
    """Every department's bucket and requests in flight, under the limits given (`limits["*"]` for a
    department not named). `enter` before reading a request's body, `charge` once its events are
    counted, `leave` when it is answered (always, after a successful `enter`)."""

    limits: dict[str, Limits]
    buckets: dict[str, Bucket] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)

    def of(self, department: str) -> Limits:
        return self.limits.get(department) or self.limits[EVERY]

    def _bucket(self, department: str, limits: Limits, now: float) -> Bucket:
        b = self.buckets.get(department)
        if b is None:
            b = self.buckets[department] = Bucket(float(limits.burst), now)
        elif now > b.stamp:
            b.tokens = min(float(limits.burst), b.tokens + (now - b.stamp) * limits.events_per_second)
            b.stamp = now
        else:  # a smaller burst since: never more than it
            b.tokens = min(float(limits.burst), b.tokens)
        return b

    def _wait(self, department: str, events: int, now: float) -> Refusal | None:
        limits = self.of(department)
        if limits.events_per_second <= 0:
            return None
        b = self._bucket(department, limits, now)
        need = min(events, limits.burst)
        if b.tokens >= need:
            return None
        return Refusal(RATE, max(1, math.ceil((need - b.tokens) / limits.events_per_second)), limits)

    def enter(self, department: str, now: float) -> Refusal | None:
        """May one more request of the department be read? None: yes, and it counts as in flight."""
        limits = self.of(department)
        if limits.concurrent_requests and self.in_flight.get(department, 0) >= limits.concurrent_requests:
            return Refusal(CONCURRENCY, 1, limits)
        refused = self._wait(department, 1, now)
        if refused is None:
            self.in_flight[department] = self.in_flight.get(department, 0) + 1
        return refused

    def charge(self, department: str, events: int, now: float) -> Refusal | None:
        """Take the request's events from the bucket, or the refusal (nothing taken) if it holds too few."""
        refused = self._wait(department, events, now)
        if refused is None and self.of(department).events_per_second > 0:
            self.buckets[department].tokens -= events
        return refused

    def leave(self, department: str) -> None:
        left = self.in_flight.get(department, 0) - 1
        if left > 0:
            self.in_flight[department] = left
        else:
            self.in_flight.pop(department, None)
