"""The gateway's limits per department, applied: the settings' defaults (LEDGER_GATEWAY_*), the file
LEDGER_KEYS_DIR/gateway-limits.json where it names a department (or "*"), read again when it changes
like the tokens (watched.py), and the decisions of fairness.py taken on the process's monotonic clock.

    with limiter.request(department):     # 429 (Limited) if over its requests at once or its rate
        ...read the body, count its events...
        limiter.charge(department, events)  # 429 (Limited) if the bucket holds too few
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger.intake.gateway.errors import Limited
from ledger.intake.gateway.fairness import EVERY, Fairness, Limits, parse_limits
from ledger.intake.gateway.watched import Watched
from ledger.platform import config

LIMITS_FILE = "gateway-limits.json"


def defaults(settings: config.Settings) -> Limits:
    return Limits(settings.gateway_events_per_second, settings.gateway_burst, settings.gateway_concurrent_requests)


class Limiter:
    def __init__(self, settings: config.Settings, keys_dir: Path | None = None, recheck_seconds: float = 5.0) -> None:
        default = defaults(settings)
        self.file = Watched((keys_dir or settings.keys_dir) / LIMITS_FILE,
                            lambda text: parse_limits(json.loads(text), default), "gateway limits", recheck_seconds,
                            missing=lambda: {EVERY: default})
        self.fairness = Fairness(self.file.value)

    @contextmanager
    def request(self, department: str) -> Iterator[None]:
        """One request of the department, counted as in flight until it is answered."""
        self.fairness.limits = self.file.current()
        refused = self.fairness.enter(department, time.monotonic())
        if refused is not None:
            raise Limited(refused)
        try:
            yield
        finally:
            self.fairness.leave(department)

    def charge(self, department: str, events: int) -> None:
        refused = self.fairness.charge(department, events, time.monotonic())
        if refused is not None:
            raise Limited(refused)
