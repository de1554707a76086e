"""Avro -> JSON Schema: the walk that turns the Avro types into JSON Schemas, the named types
collected as components (see the mapping in the package doc).
"""

from __future__ import annotations

from typing import Any

from ledger.intake.openapi.avro import INT_RANGE, optional, short_name
from schemas import registry

REF = "#/components/schemas/"


class Deriver:
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
