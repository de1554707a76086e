"""The per-entity hash chain: hash = SHA-256(prev_hash || the entry encoded with an empty hash field)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from schemas import registry

GENESIS = bytes(32)


def entry_hash(entry: Mapping[str, Any]) -> bytes:
    body = registry.encode("LedgerEntry", {**entry, "hash": b""})
    return hashlib.sha256(bytes(entry["prev_hash"]) + body).digest()


def seal(entry: dict[str, Any]) -> dict[str, Any]:
    entry["hash"] = entry_hash(entry)
    return entry


def broken_links(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Check one entity's entries in order; returns what is wrong (empty when the chain is intact)."""
    problems: list[str] = []
    prev, expect_version = GENESIS, 1
    for e in entries:
        if e["entity_version"] != expect_version:
            problems.append(f"version {e['entity_version']} where {expect_version} was expected")
        if bytes(e["prev_hash"]) != prev:
            problems.append(f"version {e['entity_version']}: prev_hash does not match the previous entry")
        if entry_hash(e) != bytes(e["hash"]):
            problems.append(f"version {e['entity_version']}: hash does not match the content")
        prev, expect_version = bytes(e["hash"]), e["entity_version"] + 1
    return problems
