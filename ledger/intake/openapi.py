"""The JSON face of the Avro schemas: the OpenAPI description of the HTTP gateway, and the decoder
that turns a JSON request into an Avro-ready record, both derived from schemas/avro.

Nothing about an event's fields is written here: every family record (a record of the catalogue
with an `envelope` field, newest version) becomes one JSON Schema, field by field, and the gateway
decodes requests with the very same walk over the same Avro schemas, so the description and the
behaviour cannot drift apart (tests/unit/test_openapi.py checks both ways).

Mapping (Avro -> JSON Schema, and what the decoder accepts):

    record              object, `properties` in field order, additionalProperties false; `required`
                        = the fields without a null branch and without a default
    doc                 description (the Chinese names and the national XK_/CF_ codes kept)
    ["null", T]         T or null (`type: [T, "null"]`, or anyOf [T, null] for a named T)
    other unions        anyOf over the branches
    enum                string with `enum` (a component of its own)
    array, map          array with `items`, object with `additionalProperties`
    int / long          integer with the 32-/64-bit range
    float / double      number;  boolean -> boolean;  string -> string
    bytes, fixed        string, base64 (`contentEncoding: base64`)
    date                string, format date (YYYY-MM-DD)
    timestamp-millis    string, format date-time (RFC 3339: seconds and an offset, e.g. ...Z or +08:00)
    named types         components/schemas/<name without namespace>, referenced by $ref

A `Submission` is one of the families; the family is chosen by `envelope.event_type`, which must be
the record's name (each family's schema pins it with `const`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, NamedTuple

from ledger.domain.identity import ID_NUMBER_RUN as _ID_RUN  # never echoed back in clear
from schemas import registry

API_VERSION = "1.0.0"
MAX_BATCH = 10_000
MAX_TIMEOUT, DEFAULT_TIMEOUT = 30.0, 5.0
MAX_PROBLEMS = 25  # per event: enough to fix a record, bounded so an answer stays small
REF = "#/components/schemas/"

INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 date-time (what JSON Schema's format means): seconds and an offset are required
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def short_name(full: str) -> str:
    return full.rsplit(".", 1)[-1]


def families() -> list[str]:
    """The event families: the newest version of every catalogue record with an `envelope` field."""
    cat = registry.catalogue()
    return sorted(name for name, s in cat.latest.items()
                  if any(f["name"] == "envelope" for f in s.parsed.get("fields", ())))


# ============================================================================ Avro -> JSON Schema


class _Deriver:
    """Walks parsed Avro schemas and collects the named types as components."""

    def __init__(self) -> None:
        self.named = registry.catalogue().named
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, full_name: str) -> dict[str, Any]:
        name = short_name(full_name)
        if name not in self.components:
            self.components[name] = {}  # placeholder first: recursive types terminate
            self.components[name] = self.named_type(self.named[full_name])
        return {"$ref": REF + name}

    def named_type(self, schema: dict[str, Any]) -> dict[str, Any]:
        kind = schema["type"]
        out: dict[str, Any]
        if kind == "record":
            props: dict[str, Any] = {}
            required: list[str] = []
            for f in schema["fields"]:
                props[f["name"]] = self.field(f)
                if not optional(f):
                    required.append(f["name"])
            out = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
        elif kind == "enum":
            out = {"type": "string", "enum": list(schema["symbols"])}
        elif kind == "fixed":
            out = {"type": "string", "contentEncoding": "base64", "description": f"{schema['size']} bytes"}
        else:  # pragma: no cover - Avro has no other named types
            raise ValueError(f"unexpected named type {kind}")
        if schema.get("doc"):
            out["description"] = schema["doc"]
        out["title"] = short_name(schema["name"])
        return out

    def field(self, f: dict[str, Any]) -> dict[str, Any]:
        out = dict(self.type(f["type"]))
        if f.get("doc"):
            out["description"] = f["doc"]
        if "default" in f:
            out["default"] = f["default"]
        return out

    def type(self, t: Any) -> dict[str, Any]:
        if isinstance(t, str):
            if t in self.named:
                return self.ref(t)
            return primitive(t)
        if isinstance(t, list):
            branches = [b for b in t if b != "null"]
            nullable = len(branches) < len(t)
            if len(branches) == 1 and nullable:
                inner = self.type(branches[0])
                if isinstance(inner.get("type"), str) and "$ref" not in inner and "enum" not in inner:
                    return {**inner, "type": [inner["type"], "null"]}
                return {"anyOf": [inner, {"type": "null"}]}
            return {"anyOf": [self.type(b) for b in branches] + ([{"type": "null"}] if nullable else [])}
        logical = t.get("logicalType")
        if logical == "date":
            return {"type": "string", "format": "date"}
        if logical in ("timestamp-millis", "timestamp-micros"):
            return {"type": "string", "format": "date-time"}
        kind = t["type"]
        if kind in ("record", "enum", "fixed"):
            return self.ref(t["name"])
        if kind == "array":
            return {"type": "array", "items": self.type(t["items"])}
        if kind == "map":
            return {"type": "object", "additionalProperties": self.type(t["values"])}
        return self.type(kind)


def primitive(t: str) -> dict[str, Any]:
    if t in INT_RANGE:
        low, high = INT_RANGE[t]
        return {"type": "integer", "format": "int32" if t == "int" else "int64", "minimum": low, "maximum": high}
    return {
        "string": {"type": "string"}, "boolean": {"type": "boolean"}, "null": {"type": "null"},
        "float": {"type": "number", "format": "float"}, "double": {"type": "number", "format": "double"},
        "bytes": {"type": "string", "contentEncoding": "base64"},
    }[t]


def optional(f: dict[str, Any]) -> bool:
    """A field the JSON may leave out: it has a default, or null is one of its branches."""
    t = f["type"]
    return "default" in f or t == "null" or (isinstance(t, list) and "null" in t)


def _problem_schemas() -> dict[str, Any]:
    problem = {"type": "object", "required": ["field", "code", "message"], "properties": {
        "field": {"type": "string", "description": "JSON path of the field at fault, e.g. envelope.valid_from"},
        "code": {"type": "string", "description": "machine-readable reason, e.g. schema.date, uscc.length"},
        "message": {"type": "string", "description": "中文说明 (English in brackets)"}}}
    batch_problem = {**problem, "required": ["field", "code", "message"],
                     "properties": {"index": {"type": "integer", "minimum": 0,
                                              "description": "position of the event in the batch (0-based); "
                                                             "absent when the body as a whole is at fault"},
                                    **problem["properties"]}}
    return {
        "Problem": {**problem, "title": "Problem"},
        "BatchProblem": {**batch_problem, "title": "BatchProblem"},
        "Refusal": {"type": "object", "required": ["error", "reasons"], "title": "Refusal",
                    "description": "The gateway refused the request before anything was submitted.",
                    "properties": {"error": {"type": "string"},
                                   "reasons": {"type": "array", "items": {"$ref": REF + "Problem"}}}},
        "BatchRefusal": {"type": "object", "required": ["error", "reasons"], "title": "BatchRefusal",
                         "description": "The whole batch was refused: nothing of it was submitted.",
                         "properties": {"error": {"type": "string"},
                                        "reasons": {"type": "array", "items": {"$ref": REF + "BatchProblem"}}}},
        "Error": {"type": "object", "required": ["error"], "title": "Error",
                  "properties": {"error": {"type": "string"}, "code": {"type": "string"}}},
        "ParameterError": {"type": "object", "required": ["error", "code", "parameter"], "title": "ParameterError",
                           "description": "A query parameter that cannot be used (nothing submitted).",
                           "properties": {"error": {"type": "string"}, "code": {"const": "parameter"},
                                          "parameter": {"type": "string", "description": "its name"}}},
        "Pending": {"type": "object", "required": ["event_id", "status", "status_url"], "title": "Pending",
                    "description": "Submitted to the ledger (on Kafka, acknowledged) but not judged yet.",
                    "properties": {"event_id": {"type": "string"}, "status": {"const": "PENDING"},
                                   "status_url": {"type": "string",
                                                  "description": "GET it for the outcome (with ?timeout= to wait)"}}},
        "BatchResult": {
            "type": "object", "required": ["counts", "outcomes"], "title": "BatchResult",
            "properties": {
                "counts": {"type": "object", "additionalProperties": {"type": "integer"},
                           "description": "number of outcomes by status (PENDING: not judged yet)"},
                "outcomes": {"type": "array", "description": "one per event, in the order of the request",
                             "items": {"oneOf": [{"$ref": REF + "Outcome"}, {"$ref": REF + "Pending"}]}}}},
        "Health": {"type": "object", "required": ["status"], "title": "Health",
                   "properties": {"status": {"type": "string"}, "kafka": {"type": "string"},
                                  "outcomes_watcher": {"type": "string"}}},
    }


def _json(schema_ref: str, description: str, *alternatives: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": REF + schema_ref}
    if alternatives:
        schema = {"anyOf": [schema] + [{"$ref": REF + a} for a in alternatives]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@cache
def _document() -> str:
    d = _Deriver()
    names = families()
    for name in names:
        d.ref(registry.schema_for(name).parsed["name"])
        fam = d.components[name]
        envelope = fam["properties"]["envelope"]
        # the family is chosen by envelope.event_type, which must be the record's name
        fam["properties"]["envelope"] = {
            "allOf": [{"$ref": envelope["$ref"]},
                      {"type": "object", "properties": {"event_type": {"const": name}}}],
            **{k: v for k, v in envelope.items() if k != "$ref"}}
    d.ref(registry.schema_for("Outcome").parsed["name"])
    components = dict(sorted(d.components.items()))
    components["Submission"] = {
        "title": "Submission", "oneOf": [{"$ref": REF + n} for n in names],
        "description": "One credit event of any family, chosen by envelope.event_type (信用事件)."}
    components["SubmissionBatch"] = {"title": "SubmissionBatch", "type": "array", "minItems": 1,
                                     "maxItems": MAX_BATCH, "items": {"$ref": REF + "Submission"}}
    components.update(_problem_schemas())
    timeout = {"name": "timeout", "in": "query", "required": False,
               "description": f"seconds to wait for the sequencer's outcome (default {DEFAULT_TIMEOUT:g}, at "
                              f"most {MAX_TIMEOUT:g}); after that the answer is 202 with a status URL",
               "schema": {"type": "number", "minimum": 0, "maximum": MAX_TIMEOUT, "default": DEFAULT_TIMEOUT}}
    unauthorized = _json("Error", "no or unknown bearer token (nothing submitted)")
    unauthorized["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    common = {"401": unauthorized, "413": _json("Error", "body too large"),
              "503": _json("Error", "Kafka unavailable: nothing or not surely submitted; resubmit with the same "
                                    "event id (a resubmission is answered DUPLICATE)")}
    paths = {
        "/v1/events": {"post": {
            "operationId": "submitEvent", "summary": "Submit one credit event (报送一条信用事件)",
            "description": "Validated against the family's Avro schema, the department authorised against "
                           "the department matrix, signed with the department's key and submitted to "
                           "credit.submissions; the answer is the sequencer's outcome.",
            "parameters": [timeout],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": REF + "Submission"}}}},
            "responses": {
                "200": _json("Outcome", "ACCEPTED (with the ledger position) or DUPLICATE (the original one)"),
                "202": {**_json("Pending", "no outcome within the timeout: ask the status URL"),
                        "headers": {"Location": {"schema": {"type": "string"}}}},
                "400": _json("Refusal", "not JSON, not a valid event of its family, or a malformed identifier "
                                        "(or a bad query parameter)", "ParameterError"),
                "403": _json("Refusal", "the caller's department may not submit this event"),
                "422": _json("Outcome", "REJECTED or CONFLICT by the sequencer, with reasons"),
                **common}}},
        "/v1/events:batch": {"post": {
            "operationId": "submitBatch", "summary": f"Submit up to {MAX_BATCH:,} events (批量报送)",
            "description": "All or nothing at the gateway: every event is checked first, and if any is invalid "
                           "or forbidden the whole batch is refused and nothing is submitted. Then each event "
                           "is judged by the sequencer on its own (per-item outcomes).",
            "parameters": [timeout],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": REF + "SubmissionBatch"}}}},
            "responses": {
                "200": _json("BatchResult", "every event judged (each outcome may be ACCEPTED, DUPLICATE, "
                                            "REJECTED or CONFLICT)"),
                "202": _json("BatchResult", "some events not judged within the timeout (status PENDING, with "
                                            "their status URLs)"),
                "400": _json("BatchRefusal", "some event invalid: nothing submitted (or a bad query parameter)",
                             "ParameterError"),
                "403": _json("BatchRefusal", "some event forbidden for the caller's department: nothing submitted"),
                **common}}},
        "/v1/outcomes/{event_id}": {"get": {
            "operationId": "getOutcome", "summary": "The outcome of a submission (查询报送结果)",
            "description": "Known for the events this gateway submitted for the caller's department since it "
                           "started (a bounded cache); 404 otherwise.",
            "parameters": [
                {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}},
                {**timeout, "description": "seconds to wait for a pending outcome (default 0, at most "
                                           f"{MAX_TIMEOUT:g})", "schema": {**timeout["schema"], "default": 0}}],
            "responses": {
                "200": _json("Outcome", "judged: ACCEPTED or DUPLICATE"),
                "202": _json("Pending", "submitted, not judged yet"),
                "400": _json("ParameterError", "bad parameter"),
                "404": _json("Error", "unknown to this gateway"),
                "422": _json("Outcome", "judged: REJECTED or CONFLICT"),
                "401": unauthorized, "503": common["503"]}}},
        "/health": {"get": {
            "operationId": "health", "summary": "200 when Kafka answers and outcomes are watched", "security": [],
            "responses": {"200": _json("Health", "healthy"), "503": _json("Health", "not healthy")}}},
    }
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Credit ledger submission gateway (信用信息报送接口)", "version": API_VERSION,
                 "description": "Departments submit credit events over HTTP/JSON. The event shapes are derived "
                                "from the Avro schemas in schemas/avro (the one source of event shapes); dates "
                                "are YYYY-MM-DD, times RFC 3339 with seconds and offset (Avro holds dates and "
                                "times of years 1 to 9999 in UTC, without leap seconds: others are refused with "
                                "schema.unrepresentable), money integer fen (分). Authenticate with "
                                "`Authorization: Bearer <your department's token>`."},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"departmentToken": []}],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"departmentToken": {
                           "type": "http", "scheme": "bearer",
                           "description": "one token per emitting department (LEDGER_KEYS_DIR/api-tokens.json "
                                          "holds their SHA-256)"}}},
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=False)


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 description (a fresh copy)."""
    return json.loads(_document())


def document_bytes() -> bytes:
    return _document().encode("utf-8")


# ============================================================================ JSON -> Avro-ready record


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


_MISSING = object()
Conv = Callable[[Any, str, list[Problem]], Any]


def echo(value: Any, limit: int = 40) -> str:
    """A short, safe rendering of a bad value for a message (ID-number-like runs masked)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = _ID_RUN.sub(lambda m: "*" * len(m.group()), text)
    return text if len(text) <= limit else text[:limit] + "…"


def _json_type(v: Any) -> str:
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


def _fail(errors: list[Problem], path: str, code: str, message: str) -> object:
    if len(errors) < MAX_PROBLEMS:
        errors.append(Problem(path or "(record)", code, message))
    return _MISSING


def _wrong_type(errors: list[Problem], path: str, expected: str, value: Any) -> object:
    return _fail(errors, path, "schema.type",
                 f"类型错误：应为{expected}，收到{_json_type(value)} (expected {expected}, got {_json_type(value)})")


def _string(v: Any, path: str, errors: list[Problem]) -> Any:
    if not isinstance(v, str):
        return _wrong_type(errors, path, "string", v)
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return _fail(errors, path, "schema.unicode", "包含无效的 Unicode 字符 (not valid Unicode text: a lone surrogate)")
    return v


def _integer(kind: str) -> Conv:
    low, high = INT_RANGE[kind]

    def conv(v: Any, path: str, errors: list[Problem]) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return _wrong_type(errors, path, "integer", v)
        if isinstance(v, float):
            if not (math.isfinite(v) and v.is_integer()):
                return _fail(errors, path, "schema.type", f"应为整数 (expected an integer, got {echo(v)})")
            v = int(v)
        if not low <= v <= high:
            return _fail(errors, path, "schema.range",
                         f"超出范围 (out of range for Avro {kind}: {low}..{high})")
        return v
    return conv


def _number(v: Any, path: str, errors: list[Problem]) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _wrong_type(errors, path, "number", v)
    if not math.isfinite(v):
        return _fail(errors, path, "schema.type", "应为有限数值 (expected a finite number)")
    return float(v)


def _boolean(v: Any, path: str, errors: list[Problem]) -> Any:
    return v if isinstance(v, bool) else _wrong_type(errors, path, "boolean", v)


def _null(v: Any, path: str, errors: list[Problem]) -> Any:
    return None if v is None else _wrong_type(errors, path, "null", v)


def _bytes(v: Any, path: str, errors: list[Problem]) -> Any:
    if not isinstance(v, str):
        return _wrong_type(errors, path, "string (base64)", v)
    try:
        return base64.b64decode(v.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return _fail(errors, path, "schema.base64", "不是 base64 编码 (not base64)")


def _unrepresentable(errors: list[Problem], path: str, v: str) -> object:
    return _fail(errors, path, "schema.unrepresentable",
                 f"超出可表示的范围：日期应在 0001-01-01 至 9999-12-31 之间（UTC），且不含闰秒 (valid in form, but Avro "
                 f"dates and times hold years 1 to 9999 in UTC and no leap second: {echo(v)})")


def _date(v: Any, path: str, errors: list[Problem]) -> Any:
    if not isinstance(v, str):
        return _wrong_type(errors, path, "string (date YYYY-MM-DD)", v)
    try:
        if not _DATE.fullmatch(v):
            raise ValueError
        return date.fromisoformat(v)
    except ValueError:
        if _DATE.fullmatch(v) and v.startswith("0000") and _parses(date.fromisoformat, "2000" + v[4:]):
            return _unrepresentable(errors, path, v)
        return _fail(errors, path, "schema.date", f"日期无效，应为 YYYY-MM-DD (not a date ({echo(v)}))")


def _parses(parse: Callable[[str], Any], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _datetime(v: Any, path: str, errors: list[Problem]) -> Any:
    if not isinstance(v, str):
        return _wrong_type(errors, path, "string (RFC 3339 date-time)", v)
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
        return _fail(errors, path, "schema.datetime",
                     f"时间无效，应为 RFC 3339 格式，如 2026-11-27T08:30:00+08:00 (not an RFC 3339 date-time with "
                     f"seconds and offset ({echo(v)}))")


PRIMITIVES: dict[str, Conv] = {
    "string": _string, "int": _integer("int"), "long": _integer("long"), "float": _number, "double": _number,
    "boolean": _boolean, "null": _null, "bytes": _bytes,
}


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
            return _date
        if logical in ("timestamp-millis", "timestamp-micros"):
            return _datetime
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
                return _wrong_type(errors, path, "object", v)
            prefix = path + "." if path else ""
            ok = True
            for key in v:
                if key not in names:
                    ok = False
                    _fail(errors, prefix + echo(key), "schema.unknown_field",
                          "该数据格式没有这个字段 (no such field in this event family)")
            out: dict[str, Any] = {}
            for name, sub, opt, default in fields:
                if name in v:
                    value = sub(v[name], prefix + name, errors)
                    if value is _MISSING:
                        ok = False
                    out[name] = value
                elif opt:
                    out[name] = default
                else:
                    ok = False
                    _fail(errors, prefix + name, "schema.required", "必填字段缺失 (required field missing)")
            return out if ok else _MISSING
        return conv

    def enum(self, t: dict[str, Any]) -> Conv:
        symbols = tuple(t["symbols"])
        allowed = frozenset(symbols)

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            if not isinstance(v, str):
                return _wrong_type(errors, path, "string", v)
            if v not in allowed:
                return _fail(errors, path, "schema.enum",
                             f"取值无效，应为 {' / '.join(symbols)} 之一 (not one of {', '.join(symbols)}: {echo(v)})")
            return v
        return conv

    def fixed(self, t: dict[str, Any]) -> Conv:
        size = t["size"]

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            b = _bytes(v, path, errors)
            if b is not _MISSING and len(b) != size:
                return _fail(errors, path, "schema.size", f"长度应为 {size} 字节 (must be {size} bytes)")
            return b
        return conv

    def array(self, t: dict[str, Any]) -> Conv:
        item = self.compile(t["items"])

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            if not isinstance(v, list):
                return _wrong_type(errors, path, "array", v)
            out = [item(x, f"{path}[{i}]", errors) for i, x in enumerate(v)]
            return _MISSING if any(x is _MISSING for x in out) else out
        return conv

    def map(self, t: dict[str, Any]) -> Conv:
        value = self.compile(t["values"])

        def conv(v: Any, path: str, errors: list[Problem]) -> Any:
            if not isinstance(v, dict):
                return _wrong_type(errors, path, "object", v)
            out = {k: value(x, f"{path}.{echo(k)}", errors) for k, x in v.items()}
            return _MISSING if any(x is _MISSING for x in out.values()) else out
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
                if out is not _MISSING:
                    return out
                if i == 0:
                    first = local
            if len(branches) == 1:  # T or null: T's own problems say the most
                for p in first:
                    _fail(errors, p.field, p.code, p.message)
                return _MISSING
            return _fail(errors, path, "schema.union", "不符合任何允许的类型 (matches none of the allowed types)")
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
                               f"事件应为 JSON 对象 (an event is a JSON object, got {_json_type(obj)})")])
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
    if record is _MISSING or errors:
        raise Invalid(errors or [Problem("(record)", "schema.invalid", "不是有效的事件 (not a valid event)")])
    if not record["envelope"]["event_id"].strip():
        raise Invalid([Problem("envelope.event_id", "required", "事件编号不能为空 (the event id is required)")])
    return name, record


# ============================================================================ Avro-ready -> JSON


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
