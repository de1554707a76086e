"""Retriable Kafka errors: what they are, how a long-running process waits for them to pass, and
how it says so (a structlog warning with the error and the next attempt, and the counter
`ledger_kafka_retries_total{process,operation}`).

A broker that is paused, restarted or briefly unreachable makes aiokafka's calls fail with
retriable errors (KafkaTimeoutError, KafkaConnectionError, NodeNotReadyError, RequestTimedOutError,
NotCoordinatorError, ...: `KafkaError.retriable`). None of them may stop a process: a lag probe
that fails is skipped, a batch that fails is aborted and read again, and a start-up call is tried
again with a growing pause (`Backoff`), until the broker answers again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import errors
from prometheus_client import Counter

RETRIES = Counter("ledger_kafka_retries_total", "Kafka calls that failed on a retriable error and will be tried "
                  "again (or skipped, for a probe)", ["process", "operation"])

T = TypeVar("T")

# aiokafka raises these on a broker that does not answer in time; not every one is marked retriable
_ALSO_RETRIABLE: tuple[type[BaseException], ...] = (errors.KafkaTimeoutError, errors.KafkaConnectionError,
                                                     errors.NodeNotReadyError, errors.RequestTimedOutError,
                                                     errors.NotCoordinatorError, errors.CoordinatorNotAvailableError,
                                                     errors.NoBrokersAvailable, errors.UnknownTopicOrPartitionError,
                                                     asyncio.TimeoutError, ConnectionError)


class FencedInstanceIdError(errors.BrokerResponseError):
    """FENCED_INSTANCE_ID (82): the group coordinator's answer to a static member whose
    group.instance.id a newer member has taken. aiokafka 0.14 does not know the code (it would say
    UnknownError), so it is registered here, and the error names itself in its messages."""

    errno = 82
    message = "FENCED_INSTANCE_ID"
    description = "another member with the same group.instance.id has taken this member's place"


errors.kafka_errors.setdefault(FencedInstanceIdError.errno, FencedInstanceIdError)


def fenced(exc: BaseException) -> bool:
    """True when a newer process has taken this one's place: its producer (the same transactional id)
    or its static group membership (the same group.instance.id, seen in the consumer's error, which
    aiokafka wraps in a plain KafkaError). Not retriable: such a process must stop writing."""
    return (isinstance(exc, (errors.ProducerFenced, FencedInstanceIdError))
            or FencedInstanceIdError.__name__ in str(exc))


def retriable(exc: BaseException) -> bool:
    """True for an error that passes once the broker answers again (the call is worth trying again)."""
    if isinstance(exc, _ALSO_RETRIABLE):
        return True
    return isinstance(exc, errors.KafkaError) and bool(getattr(exc, "retriable", False))


class Backoff:
    """Pauses that double from `first` to at most `most` seconds; `reset()` after a success."""

    def __init__(self, first: float = 0.5, most: float = 30.0) -> None:
        self.first, self.most = first, most
        self.next = first

    def reset(self) -> None:
        self.next = self.first

    def take(self) -> float:
        delay = self.next
        self.next = min(self.next * 2, self.most)
        return delay


def note(log: Any, process: str, operation: str, exc: BaseException, next_in: float | None) -> None:
    """Count and log one retriable failure; `next_in`: seconds until the next attempt (None: skipped)."""
    RETRIES.labels(process, operation).inc()
    log.warning("kafka call failed on a retriable error; " + ("trying again" if next_in is not None else "skipped"),
                process=process, operation=operation, error=f"{type(exc).__name__}: {exc}"[:300],
                **({"next_attempt_in_s": round(next_in, 2)} if next_in is not None else {}))


async def probe(log: Any, process: str, operation: str, call: Callable[[], Awaitable[T]]) -> T | None:
    """A measurement (a lag probe): its result, or None when it failed on a retriable error (logged and
    counted; the caller skips this measurement and goes on)."""
    try:
        return await call()
    except Exception as exc:
        if not retriable(exc):
            raise
        note(log, process, operation, exc, None)
        return None


async def until_done(log: Any, process: str, operation: str, call: Callable[[], Awaitable[T]],
                     backoff: Backoff | None = None, stopping: Callable[[], bool] | None = None) -> T:
    """`call()` again and again, with growing pauses, while it fails on a retriable error; another
    error is raised at once, as is the last one when `stopping()` turns true."""
    backoff = backoff or Backoff()
    while True:
        try:
            return await call()
        except Exception as exc:
            if not retriable(exc) or (stopping is not None and stopping()):
                raise
            delay = backoff.take()
            note(log, process, operation, exc, delay)
            await asyncio.sleep(delay)
