"""The ledger copy's record (projections/rows.py, `copied_record` and `shown_record`): the submitted
record's bytes with the subject's identifier in its public form, no clear ID number in them, and read back
with the entry's rules versions as the same record the copy's JSON held before it kept the bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bench import fold
from ledger.domain import identity
from projections.rows import _dumps, _masked, copied_record, public_subject, shown_record
from schemas import registry


@pytest.fixture(scope="module")
def entries() -> list[tuple[dict[str, Any], str, dict[str, Any], bytes]]:
    out = []
    for _, _, value in fold.fixed_entries(3000, 11, life_share=0.5):
        _, entry = registry.decode(value, "LedgerEntry")
        name, rec = registry.decode(entry["submission"])
        out.append((entry, name, rec, value))
    return out


def _person(entries: list[tuple[dict[str, Any], str, dict[str, Any], bytes]]) -> tuple[Any, ...]:
    return next(e for e in entries if e[2]["envelope"]["subject"]["id_type"] == "RIC")


def _before(entry: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    """What the copy's jsonb payload held before it kept the bytes."""
    loaded: dict[str, Any] = orjson.loads(_dumps(_masked(rec, public_subject(rec)["id"], entry.get("rules_versions"))))
    return loaded


def _check(entry: dict[str, Any], name: str, rec: dict[str, Any], copied: bytes) -> None:
    clear = identity.normalise(rec["envelope"]["subject"]["id"])
    again, _ = registry.decode(copied)  # still a record of its family
    assert again == name
    if rec["envelope"]["subject"]["id_type"] == "RIC":
        assert clear.encode() not in copied and identity.mask_ric(clear).encode() in copied
    assert shown_record(copied, entry.get("rules_versions")) == _before(entry, rec)


def test_every_record_reads_back_as_the_copy_held_it_and_no_id_number_is_in_clear(entries) -> None:
    kinds = {"RIC": 0, "USCC": 0}
    for entry, name, rec, _ in entries:
        public = public_subject(rec)["id"]
        value = entry["submission"]
        copied = copied_record(value, name, rec, public)
        _check(entry, name, rec, copied)
        if rec["envelope"]["subject"]["id_type"] == "USCC":
            assert copied is value  # a code in its canonical form: the ledger's bytes themselves
        else:
            assert len(copied) == len(value) and copied != value  # masked where it stands
        kinds[rec["envelope"]["subject"]["id_type"]] += 1
    assert min(kinds.values()) > 100, kinds


def _entry_with(entry: dict[str, Any], name: str, rec: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    submission = registry.encode(name, rec)
    return {**entry, "submission": submission}, submission


@pytest.mark.parametrize("how", ["id twice", "id not canonical"])
def test_a_record_the_mask_cannot_overwrite_in_place_is_encoded_again(entries, how) -> None:
    entry, name, rec, _ = _person(entries)
    clear = rec["envelope"]["subject"]["id"]
    if how == "id twice":  # the number also in a text of the record: two occurrences, so not in place
        rec = {**rec, "facts": f"{rec['facts']} 身份证号 {clear}"}
    else:  # full-width digits: the public form (NFKC, masked) is shorter in UTF-8
        wide = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in clear)
        rec = {**rec, "envelope": {**rec["envelope"], "subject": {**rec["envelope"]["subject"], "id": wide}}}
    entry, value = _entry_with(entry, name, rec)
    copied = copied_record(value, name, rec, public_subject(rec)["id"])
    _, inner = registry.decode(copied)
    assert inner["envelope"]["subject"]["id"] == identity.mask_ric(identity.normalise(clear))
    shown = shown_record(copied, entry.get("rules_versions"))
    assert shown == _before(entry, rec)
    if how == "id twice":  # as before: the subject's identifier is masked, a text is kept as written
        assert shown["facts"].endswith(clear)


def test_a_nul_of_an_old_record_is_shown_as_ufffd(entries) -> None:
    entry, name, rec, _ = _person(entries)
    entry, value = _entry_with(entry, name, {**rec, "facts": "经查\x00当事人"})
    copied = copied_record(value, name, rec | {"facts": "经查\x00当事人"}, public_subject(rec)["id"])
    assert shown_record(copied, None)["facts"] == "经查\ufffd当事人"


def test_the_rules_versions_an_entry_was_judged_under_are_read_back_in_the_envelope(entries) -> None:
    entry, name, rec, _ = _person(entries)
    stamped = {**entry, "rules_versions": {"publication_periods": 2}}
    shown = shown_record(copied_record(entry["submission"], name, rec, public_subject(rec)["id"]),
                         {"publication_periods": 2})
    assert shown["envelope"]["rules_versions"] == {"publication_periods": 2} and shown == _before(stamped, rec)
    assert "rules_versions" not in shown_record(entry["submission"], None)["envelope"]
