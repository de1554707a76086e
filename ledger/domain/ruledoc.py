"""Checked reading of one rules document: a JSON value already parsed, checked entry by entry.

The rules files of ``ledger/rules/`` are read by the loader (``ledger/rules/loader.py``); the domain
turns the parsed document into its values (``PublicationRules``, ``DepartmentMatrix``,
``Catalogue``, ``WorkdayCalendar``, ``GradeRules``) with a ``Reader``, whose checks raise
``RulesError`` naming the file, the entry (e.g. ``penalty_regimes[1].severities.serious``) and the
reason. Pure: no file is opened here; ``file`` is only the name the errors carry.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, NoReturn

from ledger.domain.errors import RulesError

__all__ = ["Reader"]


class Reader:
    """Type checks for one rules file; every failure is a ``RulesError`` naming file and entry."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, entry: str, reason: str) -> NoReturn:
        raise RulesError(self.file, entry, reason)

    def obj(self, value: Any, entry: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(entry, "must be a JSON object")
        return value

    def array(self, value: Any, entry: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(entry, "must be a JSON array")
        return value

    def keys(self, value: Any, entry: str, required: set[str], optional: set[str] | None = None) -> None:
        present = set(self.obj(value, entry))
        if missing := required - present:
            self.fail(entry, f"missing key(s) {', '.join(sorted(missing))}")
        if unknown := present - required - (optional or set()):
            self.fail(entry, f"unknown key(s) {', '.join(sorted(unknown))}")

    def text(self, value: Any, entry: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(entry, "must be a non-empty string")
        return value

    def months(self, value: Any, entry: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 1200:
            self.fail(entry, f"must be a whole number of months from {minimum} to 1200, got {value!r}")
        return value

    def range(self, spec: dict[str, Any], entry: str, low_key: str, high_key: str) -> tuple[int, int]:
        low = self.months(spec[low_key], f"{entry}.{low_key}", minimum=1)
        high = self.months(spec[high_key], f"{entry}.{high_key}", minimum=1)
        if low > high:
            self.fail(entry, f"{low_key} {low} must be <= {high_key} {high}")
        return low, high

    def date(self, value: Any, entry: str) -> date:
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            self.fail(entry, f"must be a date written YYYY-MM-DD, got {value!r}")
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(entry, f"{value} is not a calendar date")
