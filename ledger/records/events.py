"""The one conversion of an event record into the domain's `Event`.

A credit event travels as an Avro record of its family (schemas/avro): an `envelope` (event id,
type, subject, department, valid time, recorded time) and the family's own fields. The domain
judges and folds `Event` values. Every reader that hands a record to the domain goes through
`event_of`: the sequencer opening a submission (ledger/records/submissions.py), the projector's
fold (projections/rows.py), and the auditors' as-of fold over the ledger copy
(projections/audit/reads.py), so the three can never disagree about what a record means.

The record may come straight from Avro (dates as `date`, times as `datetime`) or back from JSON
(the ledger copy's jsonb: ISO text); both give the same `Event`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ledger.domain.model import Event

__all__ = ["FIRST_VERSIONS", "body_of", "event_of", "judged_versions"]


def body_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The family's own fields: the record without its envelope."""
    return {k: v for k, v in record.items() if k != "envelope"}


def event_of(record: Mapping[str, Any], *, entity_id: str, department: str | None = None,
             subject_birth_date: date | None = None, rules_versions: Mapping[str, int] | None = None) -> Event:
    """The domain event of a record, for the entity `entity_id` (the ledger's key of the subject: a
    credit code's entity id, or a natural person's pseudonym). `department` defaults to the one the
    envelope names; the sequencer passes the one that signed (checked equal before). `rules_versions`:
    the rules versions the ledger entry says the event was judged under (`judged_versions`)."""
    env = record["envelope"]
    return Event(
        event_id=env["event_id"], event_type=env["event_type"], entity_id=entity_id,
        department=department if department is not None else env["source_department"],
        valid_from=_date(env["valid_from"]), valid_to=_date(env.get("valid_to")),
        recorded_at=_moment(env["recorded_at"]), body=body_of(record), subject_birth_date=subject_birth_date,
        rules_versions=dict(rules_versions or {}),
    )


# The rules files a ledger entry written before LedgerEntry v2 was judged under: version 1 of each
# (the only versions there were; docs/domain-notes.md §14.3).
FIRST_VERSIONS = {"publication_periods": 1, "departments": 1, "workdays": 1, "punishment_catalogue": 1,
                  "credit_grade": 1}


def judged_versions(entry: Mapping[str, Any]) -> dict[str, int]:
    """The rules versions a ledger entry was judged under: its stamp, or version 1 of every file for an
    entry written before the stamp existed (decoded with an empty map)."""
    return dict(entry.get("rules_versions") or FIRST_VERSIONS)


def _date(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, str):
        return date.fromisoformat(v[:10])
    return v  # a date, or None


def _moment(v: Any) -> Any:
    return datetime.fromisoformat(v) if isinstance(v, str) else v
