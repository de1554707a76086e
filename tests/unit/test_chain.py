"""The per-entity hash chain detects a flipped byte, a dropped entry and a reordering."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from ledger.records import chain


def _entries(n: int) -> list[dict]:
    out, prev = [], chain.GENESIS
    for v in range(1, n + 1):
        e = {
            "entity_id": "uscc:91110000600037341L", "entity_version": v, "event_id": f"e{v}",
            "event_type": "AdministrativePenaltyImposed", "category": "enterprise", "department": "xc-samr",
            "sequenced_at": datetime(2026, 11, 27, 8, 0, v, tzinfo=UTC), "submission_partition": 0,
            "submission_offset": v, "warnings": [], "submission": f"body-{v}".encode(), "signature": b"s",
            "prev_hash": prev, "hash": b"",
        }
        chain.seal(e)
        out.append(e)
        prev = e["hash"]
    return out


def test_an_intact_chain_has_no_broken_links() -> None:
    assert chain.broken_links(_entries(5)) == []


def test_a_flipped_byte_is_found() -> None:
    es = _entries(4)
    es[2] = copy.deepcopy(es[2])
    es[2]["submission"] = b"bodz-3"
    assert chain.broken_links(es) == ["version 3: hash does not match the content"]


def test_a_dropped_entry_is_found() -> None:
    es = _entries(4)
    del es[1]
    problems = chain.broken_links(es)
    assert "version 3 where 2 was expected" in problems
    assert "version 3: prev_hash does not match the previous entry" in problems


def test_two_swapped_entries_are_found() -> None:
    es = _entries(4)
    es[1], es[2] = es[2], es[1]
    assert chain.broken_links(es)[:2] == ["version 3 where 2 was expected",
                                          "version 3: prev_hash does not match the previous entry"]


def test_the_sealed_bytes_are_the_entry_encoded_with_its_hash() -> None:
    from schemas import registry

    entry = dict(_entries(1)[0])
    entry["hash"] = b""
    data = chain.seal(entry)
    assert data == registry.encode("LedgerEntry", entry, version=1)  # no rules versions: written as version 1
    assert registry.decode(data, "LedgerEntry")[1]["hash"] == entry["hash"] == chain.entry_hash(entry)


def test_an_entry_naming_its_rules_versions_is_version_2_and_old_entries_still_check() -> None:
    """docs/domain-notes.md §14.3: the stamp travels in LedgerEntry v2; a v1 entry, read back through v2
    (empty map), still hashes to its own hash, and a v2 entry's stamp is covered by its hash."""
    from schemas import registry

    old = _entries(1)[0]
    old_bytes = chain.seal(dict(old, hash=b""))
    read = registry.decode(old_bytes, "LedgerEntry")[1]
    assert read["rules_versions"] == {} and chain.broken_links([read]) == []

    stamped = dict(old, hash=b"", rules_versions={"publication_periods": 2, "departments": 1})
    data = chain.seal(stamped)
    assert registry.schema_id_of(data) == registry.encode("LedgerEntry", stamped, version=2)[4]
    back = registry.decode(data, "LedgerEntry")[1]
    assert back["rules_versions"] == {"publication_periods": 2, "departments": 1}
    assert chain.broken_links([back]) == []
    assert chain.broken_links([dict(back, rules_versions={"publication_periods": 1, "departments": 1})]) == [
        "version 1: hash does not match the content"]
