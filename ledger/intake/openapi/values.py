"""JSON -> Avro-ready values of the primitive and logical types (strings, integers in their 32-/64-bit
range, numbers, booleans, base64 bytes, RFC 3339 dates and date-times that Avro can hold); each
converter returns the value, or ``MISSING`` after adding its problem.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from ledger.intake.openapi.avro import INT_RANGE
from ledger.intake.openapi.problems import Conv, Problem, echo, fail, wrong_type

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 date-time (what JSON Schema's format means): seconds and an offset are required
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def _string(v: Any, path: str, errors: list[Problem]) -> Any:
    if not isinstance(v, str):
        return wrong_type(errors, path, "string", v)
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return fail(errors, path, "schema.unicode", "包含无效的 Unicode 字符 (not valid Unicode text: a lone surrogate)")
    return v


def _integer(kind: str) -> Conv:
    low, high = INT_RANGE[kind]

    def conv(v: Any, path: str, errors: list[Problem]) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return wrong_type(errors, path, "integer", v)
        if isinstance(v, float):
            if not (math.isfinite(v) and v.is_integer()):
                return fail(errors, path, "schema.type", f"应为整数 (expected an integer, got {echo(v)})")
            v = int(v)
        if not low <= v <= high:
            return fail(errors, path, "schema.range",
                         f"超出范围 (out of range for Avro {kind}: {low}..{high})")
        return v
    return conv


def _number(v: Any, path: str, errors: list[Problem]) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return wrong_type(errors, path, "number", v)
    if not math.isfinite(v):
        return fail(errors, path, "schema.type", "应为有限数值 (expected a finite number)")
    return float(v)


def _boolean(v: Any, path: str, errors: list[Problem]) -> Any:
    return v if isinstance(v, bool) else wrong_type(errors, path, "boolean", v)


def _null(v: Any, path: str, errors: list[Problem]) -> Any:
    return None if v is None else wrong_type(errors, path, "null", v)


def as_bytes(v: Any, path: str, errors: list[Problem]) -> Any:
    if not isinstance(v, str):
        return wrong_type(errors, path, "string (base64)", v)
    try:
        return base64.b64decode(v.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return fail(errors, path, "schema.base64", "不是 base64 编码 (not base64)")


def _unrepresentable(errors: list[Problem], path: str, v: str) -> object:
    return fail(errors, path, "schema.unrepresentable",
                 f"超出可表示的范围：日期应在 0001-01-01 至 9999-12-31 之间（UTC），且不含闰秒 (valid in form, but Avro "
                 f"dates and times hold years 1 to 9999 in UTC and no leap second: {echo(v)})")


def as_date(v: Any, path: str, errors: list[Problem]) -> Any:
    if not isinstance(v, str):
        return wrong_type(errors, path, "string (date YYYY-MM-DD)", v)
    try:
        if not _DATE.fullmatch(v):
            raise ValueError
        return date.fromisoformat(v)
    except ValueError:
        if _DATE.fullmatch(v) and v.startswith("0000") and _parses(date.fromisoformat, "2000" + v[4:]):
            return _unrepresentable(errors, path, v)
        return fail(errors, path, "schema.date", f"日期无效，应为 YYYY-MM-DD (not a date ({echo(v)}))")


def _parses(parse: Callable[[str], Any], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def as_datetime(v: Any, path: str, errors: list[Problem]) -> Any:
    if not isinstance(v, str):
        return wrong_type(errors, path, "string (RFC 3339 date-time)", v)
    text = v[:-1] + "+00:00" if v[-1:] in ("Z", "z") else v
    try:
        if not _DATETIME.fullmatch(v):
            raise ValueError
        dt = datetime.fromisoformat(text)
        dt.astimezone(UTC)  # out of range near year 1 / 9999 with an offset
        return dt
    except OverflowError:
        return _unrepresentable(errors, path, v)
    except ValueError:
        # RFC 3339 allows year 0000 and a leap second (:60); Python's datetime (and so fastavro) does not
        if _DATETIME.fullmatch(v) and (text.startswith("0000") or text[17:19] == "60") and _parses(
                datetime.fromisoformat, "2000" + text[4:17] + ("59" if text[17:19] == "60" else text[17:19]) + text[19:]):
            return _unrepresentable(errors, path, v)
        return fail(errors, path, "schema.datetime",
                     f"时间无效，应为 RFC 3339 格式，如 2026-11-27T08:30:00+08:00 (not an RFC 3339 date-time with "
                     f"seconds and offset ({echo(v)}))")


PRIMITIVES: dict[str, Conv] = {
    "string": _string, "int": _integer("int"), "long": _integer("long"), "float": _number, "double": _number,
    "boolean": _boolean, "null": _null, "bytes": as_bytes,
}
