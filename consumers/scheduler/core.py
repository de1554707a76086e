"""The expiry scheduler's pure part: what a due item is, and the ListingExpired record that ends it.

Every field of the record follows from its target (the listing or penalty and its legal end), and
the event id is a uuid5 of the target event id and the list kind, so a second submission of the same
expiry is byte for byte the same record: a DUPLICATE at the sequencer. consumers/scheduler/service.py
finds what is due and submits these records.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.domain.local_time import CHINA

DEPARTMENT = "ledger-scheduler"
PENALTY_PUBLICATION = "administrative_penalty_publication"
RED = "red"  # a red-list honour whose validity ended: HonourExpired
# Namespace of the expiry event ids (uuid5 of "<target event id>|<list kind>"); never change it,
# or expiries already in the ledger would no longer be recognised as duplicates.
EXPIRY_NAMESPACE = uuid.UUID("8f1d2c55-3b7e-5e0a-9a41-6c1e2f0b7d13")


@dataclass(frozen=True)
class Due:
    """One listing or penalty publication whose period ended on `ends` and that is still in force."""

    entity_id: str
    list_kind: str  # a black list kind, or administrative_penalty_publication
    target_ref: str
    target_event_id: str
    ends: date
    partition: int  # where the target's ledger entry is in credit.events
    offset: int


def expiry_event_id(target_event_id: str, list_kind: str) -> str:
    """The expiry's event id: the same target always gives the same id (idempotence at the sequencer)."""
    return str(uuid.uuid5(EXPIRY_NAMESPACE, f"{target_event_id}|{list_kind}"))


def expiry_record(due: Due, subject: dict[str, Any], rule_version: int) -> dict[str, Any]:
    """The ListingExpired record of a due item (HonourExpired for a red-list honour, `rule_version`
    then the punishment catalogue's); every field follows from the target, so a resubmission is
    byte for byte the same record."""
    envelope = {
        "event_id": expiry_event_id(due.target_event_id, due.list_kind),
        "event_type": "HonourExpired" if due.list_kind == RED else "ListingExpired",
        "schema_version": 1, "subject": {k: subject[k] for k in ("id", "id_type", "name")},
        "source_department": DEPARTMENT, "valid_from": due.ends, "valid_to": None,
        "recorded_at": datetime(due.ends.year, due.ends.month, due.ends.day, tzinfo=CHINA),
    }
    if due.list_kind == RED:
        return {"envelope": envelope, "document_no": due.target_ref, "target_event_id": due.target_event_id,
                "expired_on": due.ends, "catalogue_version": rule_version}
    return {"envelope": envelope, "list_kind": due.list_kind, "target_ref": due.target_ref,
            "target_event_id": due.target_event_id, "expired_on": due.ends, "rule_version": rule_version}


def parse_today(value: str | None, clock_today: Callable[[], date]) -> Callable[[], date]:
    """The scheduler's today: a fixed date (YYYY-MM-DD) or the clock's China Standard Time date,
    the same as the sequencer's (so a period ends on the China-local day the law counts)."""
    if not value:
        return clock_today
    try:
        fixed = date.fromisoformat(value)
    except ValueError:
        raise SystemExit(f"--today / LEDGER_SCHEDULER_TODAY: '{value}' is not a date YYYY-MM-DD") from None
    return lambda: fixed
