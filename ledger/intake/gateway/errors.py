"""What the gateway raises instead of answering, and the answer each one gets (app.answer).

    Exception
    ├── BadParameter      (ledger/platform/web.py)  400 "parameter": a query parameter it cannot use
    └── GatewayError
        ├── Unauthorized   401 auth.missing | auth.unknown, with WWW-Authenticate: Bearer
        ├── IntakeRefused  400 invalid | 403 forbidden: the gateway refuses an event itself, naming
        │                  every problem; nothing is submitted
        ├── Unavailable    503 kafka.unavailable: Kafka did not acknowledge a submission in time
        ├── Limited        429 limit.rate | limit.concurrency, with Retry-After: the department is over
        │                  its share of the gateway (limits.py, fairness.py); nothing is submitted
        └── TooLarge       413 body.too_large: the body is over the limit of a single event or a batch

Raised by others and answered too: openapi.Invalid (the JSON does not fit the family's schema;
turned into IntakeRefused 400), aiokafka's KafkaError (503) and aiohttp's HTTP exceptions (413
body too large, 404 no such route, 405 method).

IntakeRefused is the gateway's own refusal, before anything is submitted; a refusal of the
sequencer's front door (ledger.records.submissions.Refused) is an outcome on credit.outcomes.
"""

from __future__ import annotations

from ledger.intake.gateway.fairness import Refusal
from ledger.intake.openapi import Problem


class GatewayError(Exception):
    """A request the gateway answers without a submission."""


class Unauthorized(GatewayError):
    """No bearer token, or one of no department."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class IntakeRefused(GatewayError):
    """The gateway refuses an event itself (400 invalid, 403 forbidden); nothing is submitted."""

    def __init__(self, status: int, problems: list[Problem]) -> None:
        super().__init__(problems[0].message if problems else "refused")
        self.status, self.problems = status, problems


class Unavailable(GatewayError):
    """Kafka did not acknowledge a submission in time (or failed it): resubmit with the same id."""


class Limited(GatewayError):
    """The department is over one of its limits (rate or concurrency): 429 with Retry-After."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


class TooLarge(GatewayError):
    """The request's body is larger than a single event's or a batch's limit: 413."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(f"{what} over {limit} bytes")
        self.limit, self.what = limit, what
