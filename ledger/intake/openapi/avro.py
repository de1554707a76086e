"""What both walks over the Avro schemas share: the event families, short names, which fields the JSON
may leave out, the integer ranges.
"""

from __future__ import annotations

from typing import Any

from schemas import registry

INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def short_name(full: str) -> str:
    return full.rsplit(".", 1)[-1]


def families() -> list[str]:
    """The event families: the newest version of every catalogue record with an `envelope` field."""
    cat = registry.catalogue()
    return sorted(name for name, s in cat.latest.items()
                  if any(f["name"] == "envelope" for f in s.parsed.get("fields", ())))


def optional(f: dict[str, Any]) -> bool:
    """A field the JSON may leave out: it has a default, or null is one of its branches."""
    t = f["type"]
    return "default" in f or t == "null" or (isinstance(t, list) and "null" in t)
