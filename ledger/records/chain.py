"""The per-entity hash chain: hash = SHA-256(prev_hash || the entry encoded with an empty hash field).

`hash` is the last field of LedgerEntry and Avro writes a bytes field as its zigzag length followed
by the bytes, so the entry with an empty hash ends in the single byte 0x00 and the sealed entry is
the same bytes with that last byte replaced by 0x40 (length 32) and the hash: one encoding serves
both the hash and the record.

An entry is encoded with the LedgerEntry version it was written in: version 3 when it carries a batch
proof, a signer or a client's signature (``batch_proof``, ``signer``, ``client_signature``,
``client_body``), version 2 when it names the rules versions it was judged under
(``rules_versions``), version 1 otherwise (the entries written before those fields existed, which
decode with empty values), so an old entry's hash still checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from schemas import registry

GENESIS = bytes(32)
_LEN32 = b"\x40"  # zigzag varint of 32


V3_FIELDS = ("signer", "batch_proof", "client_signature", "client_body")


def _encode(entry: Mapping[str, Any]) -> bytes:
    """The framed entry with an empty hash, in the LedgerEntry version it was written in."""
    if any(entry.get(f) for f in V3_FIELDS):
        return registry.encode("LedgerEntry", {**entry, "hash": b""}, version=3)
    entry = {k: v for k, v in entry.items() if k not in V3_FIELDS}
    if entry.get("rules_versions"):
        return registry.encode("LedgerEntry", {**entry, "hash": b""}, version=2)
    return registry.encode("LedgerEntry", {k: v for k, v in entry.items() if k != "rules_versions"} | {"hash": b""},
                           version=1)


def entry_hash(entry: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(bytes(entry["prev_hash"]) + _encode(entry)).digest()


def seal(entry: dict[str, Any]) -> bytes:
    """Set entry["hash"] and return the framed LedgerEntry record, encoded once."""
    unsealed = _encode(entry)
    digest = hashlib.sha256(bytes(entry["prev_hash"]) + unsealed).digest()
    entry["hash"] = digest
    return unsealed[:-1] + _LEN32 + digest


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
