"""How the decoder says what is wrong: a ``Problem`` per field (JSON path, code, message), ``Invalid``
carrying them (at most ``MAX_PROBLEMS``), and the safe echo of a bad value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from ledger.domain.identity import ID_NUMBER_RUN as _ID_RUN  # never echoed back in clear

MAX_PROBLEMS = 25  # per event: enough to fix a record, bounded so an answer stays small


class Problem(NamedTuple):
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class Invalid(Exception):
    """A request that is not a valid event; every problem names its field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems[:3]))
        self.problems = problems


MISSING = object()
Conv = Callable[[Any, str, list[Problem]], Any]


def echo(value: Any, limit: int = 40) -> str:
    """A short, safe rendering of a bad value for a message (ID-number-like runs masked)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = _ID_RUN.sub(lambda m: "*" * len(m.group()), text)
    return text if len(text) <= limit else text[:limit] + "…"


def json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def fail(errors: list[Problem], path: str, code: str, message: str) -> object:
    if len(errors) < MAX_PROBLEMS:
        errors.append(Problem(path or "(record)", code, message))
    return MISSING


def wrong_type(errors: list[Problem], path: str, expected: str, value: Any) -> object:
    return fail(errors, path, "schema.type",
                 f"类型错误：应为{expected}，收到{json_type(value)} (expected {expected}, got {json_type(value)})")
