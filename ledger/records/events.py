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

__all__ = ["event_of", "body_of"]


def body_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The family's own fields: the record without its envelope."""
    return {k: v for k, v in record.items() if k != "envelope"}


def event_of(record: Mapping[str, Any], *, entity_id: str, department: str | None = None,
             subject_birth_date: date | None = None) -> Event:
    """The domain event of a record, for the entity `entity_id` (the ledger's key of the subject: a
    credit code's entity id, or a natural person's pseudonym). `department` defaults to the one the
    envelope names; the sequencer passes the one that signed (checked equal before)."""
    env = record["envelope"]
    return Event(
        event_id=env["event_id"], event_type=env["event_type"], entity_id=entity_id,
        department=department if department is not None else env["source_department"],
        valid_from=_date(env["valid_from"]), valid_to=_date(env.get("valid_to")),
        recorded_at=_moment(env["recorded_at"]), body=body_of(record), subject_birth_date=subject_birth_date,
    )


def _date(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, str):
        return date.fromisoformat(v[:10])
    return v  # a date, or None


def _moment(v: Any) -> Any:
    return datetime.fromisoformat(v) if isinstance(v, str) else v
