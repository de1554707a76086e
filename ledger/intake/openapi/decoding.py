"""JSON -> Avro-ready record: the decoder of every family compiled from the same Avro schemas the
description is derived from; the strict JSON parser; and back, a decoded Avro value as JSON data.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import orjson

from ledger.intake.openapi.avro import families, optional
from ledger.intake.openapi.problems import MISSING, Conv, Invalid, Problem, echo, fail, json_type, wrong_type
from ledger.intake.openapi.values import PRIMITIVES, as_bytes, as_date, as_datetime
from schemas import registry


class _Compiler:
    def __init__(self) -> None:
        self.named = registry.catalogue().named
        self.done: dict[str, Conv] = {}

    def compile(self, t: Any) -> Conv:
        if isinstance(t, str):
            if t in self.named:
                if t not in self.done:
                    slot: list[Conv] = []
                    self.done[t] = lambda v, p, e: slot[0](v, p, e)  # recursive types terminate
                    slot.append(self.compile(self.named[t]))
                    self.done[t] = slot[0]
                return self.done[t]
            return PRIMITIVES[t]
        if isinstance(t, list):
            return self.union(t)
        logical = t.get("logicalType")
        if logical == "date":
            return as_date
        if logical in ("timestamp-millis", "timestamp-micros"):
            return as_datetime
        kind = t["type"]
        if kind == "record":
            return self.record(t)
        if kind == "enum":
            return self.enum(t)
        if kind == "fixed":
            return self.fixed(t)
        if kind == "array":
            return self.array(t)
        if kind == "map":
            return self.map(t)
        return self.compile(kind)

    def record(self, t: dict[str, Any]) -> Conv:
        fields = [(f["name"], self.compile(f["type"]), optional(f), f.get("default")) for f in t["fields"]]
        names = frozenset(n for n, *_ in fields)

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            if not isinstance(v, dict):
                return wrong_type(errors, path, "object", v)
            prefix = path + "." if path else ""
            ok = True
            for key in v:
                if key not in names:
                    ok = False
                    fail(errors, prefix + echo(key), "schema.unknown_field",
                          "该数据格式没有这个字段 (no such field in this event family)")
            out: dict[str, Any] = {}
            for name, sub, opt, default in fields:
                if name in v:
                    value = sub(v[name], prefix + name, errors)
                    if value is MISSING:
                        ok = False
                    out[name] = value
                elif opt:
                    out[name] = default
                else:
                    ok = False
                    fail(errors, prefix + name, "schema.required", "必填字段缺失 (required field missing)")
            return out if ok else MISSING
        return conv

    def enum(self, t: dict[str, Any]) -> Conv:
        symbols = tuple(t["symbols"])
        allowed = frozenset(symbols)

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            if not isinstance(v, str):
                return wrong_type(errors, path, "string", v)
            if v not in allowed:
                return fail(errors, path, "schema.enum",
                             f"取值无效，应为 {' / '.join(symbols)} 之一 (not one of {', '.join(symbols)}: {echo(v)})")
            return v
        return conv

    def fixed(self, t: dict[str, Any]) -> Conv:
        size = t["size"]

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            b = as_bytes(v, path, errors)
            if b is not MISSING and len(b) != size:
                return fail(errors, path, "schema.size", f"长度应为 {size} 字节 (must be {size} bytes)")
            return b
        return conv

    def array(self, t: dict[str, Any]) -> Conv:
        item = self.compile(t["items"])

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            if not isinstance(v, list):
                return wrong_type(errors, path, "array", v)
            out = [item(x, f"{path}[{i}]", errors) for i, x in enumerate(v)]
            return MISSING if any(x is MISSING for x in out) else out
        return conv

    def map(self, t: dict[str, Any]) -> Conv:
        value = self.compile(t["values"])

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            if not isinstance(v, dict):
                return wrong_type(errors, path, "object", v)
            out = {k: value(x, f"{path}.{echo(k)}", errors) for k, x in v.items()}
            return MISSING if any(x is MISSING for x in out.values()) else out
        return conv

    def union(self, t: list[Any]) -> Conv:
        nullable = "null" in t
        branches = [self.compile(b) for b in t if b != "null"]

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            if v is None and nullable:
                return None
            first: list[Problem] = []
            for i, branch in enumerate(branches):
                local: list[Problem] = []
                out = branch(v, path, local)
                if out is not MISSING:
                    return out
                if i == 0:
                    first = local
            if len(branches) == 1:  # T or null: T's own problems say the most
                for p in first:
                    fail(errors, p.field, p.code, p.message)
                return MISSING
            return fail(errors, path, "schema.union", "不符合任何允许的类型 (matches none of the allowed types)")
        return conv


@dataclass(frozen=True)
class _Decoders:
    by_family: dict[str, Conv]


@cache
def _decoders() -> _Decoders:
    c = _Compiler()
    return _Decoders({name: c.compile(registry.schema_for(name).parsed["name"]) for name in families()})


def parse_json(body: bytes) -> Any:
    """JSON text -> Python value; Invalid (code json.malformed) for anything that is not strict JSON."""
    try:  # the fast parser first (strict JSON); anything it refuses is judged again below, as before
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError:
        raise Invalid([Problem("(body)", "json.malformed", "请求体不是 UTF-8 编码 (the body is not UTF-8)")]) from None
    except (ValueError, RecursionError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise Invalid([Problem("(body)", "json.malformed",
                               f"请求体不是有效的 JSON (the body is not valid JSON{where})")]) from None


def event_type_of(obj: Any) -> str:
    """The family named by envelope.event_type; Invalid naming the field otherwise."""
    if not isinstance(obj, dict):
        raise Invalid([Problem("(record)", "schema.type",
                               f"事件应为 JSON 对象 (an event is a JSON object, got {json_type(obj)})")])
    env = obj.get("envelope")
    if not isinstance(env, dict):
        raise Invalid([Problem("envelope", "schema.required" if env is None else "schema.type",
                               "缺少事件信封 (the envelope object is required)")])
    event_type = env.get("event_type")
    known = _decoders().by_family
    if not isinstance(event_type, str) or event_type not in known:
        raise Invalid([Problem("envelope.event_type", "event_type.unknown",
                               f"未知的事件类型 (unknown event type {echo(event_type)}; one of "
                               f"{', '.join(sorted(known))})")])
    return event_type


def decode_event(obj: Any) -> tuple[str, dict[str, Any]]:
    """A JSON event -> (family, record ready for registry.encode). Invalid lists every problem (up to
    MAX_PROBLEMS), each with the JSON path of its field. Never raises anything else."""
    name = event_type_of(obj)
    errors: list[Problem] = []
    record = _decoders().by_family[name](obj, "", errors)
    if record is MISSING or errors:
        raise Invalid(errors or [Problem("(record)", "schema.invalid", "不是有效的事件 (not a valid event)")])
    if not record["envelope"]["event_id"].strip():
        raise Invalid([Problem("envelope.event_id", "required", "事件编号不能为空 (the event id is required)")])
    return name, record


def plain(value: Any) -> Any:
    """A decoded Avro value as JSON data (dates ISO, times RFC 3339 in UTC, bytes base64)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value
