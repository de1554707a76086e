"""The ledger copy's record (projections/rows.py, `copied_entry` and `shown_record`): the ledger entry's
bytes with the subject's identifier in its public form, no clear ID number in them, and read back as the
same record the copy's JSON held before it kept the bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bench import fold
from ledger.domain import identity
from projections.rows import _dumps, _masked, copied_entry, public_subject, shown_record
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


def _check(entry: dict[str, Any], rec: dict[str, Any], copied: bytes) -> None:
    clear = identity.normalise(rec["envelope"]["subject"]["id"])
    _, again = registry.decode(copied, "LedgerEntry")  # still a ledger entry
    assert {k: v for k, v in again.items() if k != "submission"} == {
        k: v for k, v in entry.items() if k != "submission"}
    if rec["envelope"]["subject"]["id_type"] == "RIC":
        assert clear.encode() not in copied and identity.mask_ric(clear).encode() in copied
    assert shown_record(copied) == _before(entry, rec)


def test_every_record_reads_back_as_the_copy_held_it_and_no_id_number_is_in_clear(entries) -> None:
    kinds = {"RIC": 0, "USCC": 0}
    for entry, name, rec, value in entries:
        public = public_subject(rec)["id"]
        copied = copied_entry(value, entry, name, rec, public)
        _check(entry, rec, copied)
        if rec["envelope"]["subject"]["id_type"] == "USCC":
            assert copied is value  # a code in its canonical form: the ledger's bytes themselves
        else:
            assert len(copied) == len(value) and copied != value  # masked where it stands
        kinds[rec["envelope"]["subject"]["id_type"]] += 1
    assert min(kinds.values()) > 100, kinds


def _entry_with(entry: dict[str, Any], name: str, rec: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    changed = {**entry, "submission": registry.encode(name, rec)}
    return changed, registry.encode("LedgerEntry", changed)


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
    copied = copied_entry(value, entry, name, rec, public_subject(rec)["id"])
    _, inner = registry.decode(registry.decode(copied, "LedgerEntry")[1]["submission"])
    assert inner["envelope"]["subject"]["id"] == identity.mask_ric(identity.normalise(clear))
    assert shown_record(copied) == _before(entry, rec)
    if how == "id twice":  # as before: the subject's identifier is masked, a text is kept as written
        assert shown_record(copied)["facts"].endswith(clear)


def test_a_nul_of_an_old_record_is_shown_as_ufffd(entries) -> None:
    entry, name, rec, _ = _person(entries)
    entry, value = _entry_with(entry, name, {**rec, "facts": "经查\x00当事人"})
    copied = copied_entry(value, entry, name, rec | {"facts": "经查\x00当事人"}, public_subject(rec)["id"])
    assert shown_record(copied)["facts"] == "经查\ufffd当事人"
