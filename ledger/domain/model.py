"""The entity's state, and the two pure functions every part of the ledger shares.

    decide(state, event, today) -> warnings, or raise Rejection   (the sequencer, before appending)
    evolve(state, event) -> state                                   (the sequencer, projections, as-of replay)

`Event` is the decoded, plain-Python form of a submission: the envelope's fields plus the family
body as a mapping. Nothing here knows about Kafka, Avro or PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from ledger.domain.errors import Rejection


@dataclass(frozen=True)
class Event:
    event_id: str
    event_type: str
    entity_id: str
    department: str
    valid_from: date
    valid_to: date | None
    recorded_at: datetime
    body: Mapping[str, Any]


@dataclass(frozen=True)
class EntityState:
    """What the sequencer must know of an entity to judge its next event."""

    version: int = 0
    # open administrative penalties, by event id: decision date and severity
    penalties: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"version": self.version, "penalties": self.penalties, "counts": self.counts},
                          sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EntityState:
        d = json.loads(text)
        return cls(version=d["version"], penalties=d["penalties"], counts=d["counts"])


def decide(state: EntityState, event: Event, today: date) -> list[str]:
    """Judge an event against the entity's state. Returns warning codes, or raises Rejection."""
    if event.valid_from > today:
        raise Rejection("valid_from", "time.future",
                        f"生效日期 {event.valid_from} 晚于今天 {today} (the decision cannot take effect in the future)")
    check = _CHECKS.get(event.event_type)
    if check is None:
        raise Rejection("event_type", "event_type.unknown",
                        f"未知的事件类型 {event.event_type} (this event type is not known to the ledger)")
    return check(state, event, today)


def evolve(state: EntityState, event: Event) -> EntityState:
    """The state after an accepted event. Total: every event type known to decide() is handled."""
    counts = dict(state.counts)
    counts[event.event_type] = counts.get(event.event_type, 0) + 1
    penalties = state.penalties
    if event.event_type == "AdministrativePenaltyImposed":
        penalties = {**penalties, event.event_id: {
            "decision_date": str(event.body["decision_date"]), "severity": str(event.body["severity"]),
            "decision_no": str(event.body["decision_no"]),
        }}
    return replace(state, version=state.version + 1, penalties=penalties, counts=counts)


# --------------------------------------------------------------------------- per-family checks


def _check_penalty(state: EntityState, event: Event, today: date) -> list[str]:
    b = event.body
    if b["decision_date"] > today:
        raise Rejection("decision_date", "time.future",
                        f"处罚决定日期 {b['decision_date']} 晚于今天 (the decision date is in the future)")
    for name in ("fine_fen", "confiscation_fen"):
        if b.get(name) is not None and b[name] < 0:
            raise Rejection(name, "money.negative", f"{name} 金额不能为负数 (an amount cannot be negative)")
    if not b["penalty_categories"]:
        raise Rejection("penalty_categories", "required",
                        "处罚类别不能为空 (at least one penalty category, CF_CFLB, is required)")
    for name in ("decision_no", "violation_type", "facts", "legal_basis", "content", "authority"):
        if not str(b[name]).strip():
            raise Rejection(name, "required", f"{name} 不能为空 (this field is required)")
    if any(p["decision_no"] == b["decision_no"] for p in state.penalties.values()):
        raise Rejection("decision_no", "penalty.decision_no_exists",
                        f"该主体已有文号为 {b['decision_no']} 的处罚决定 "
                        f"(this entity already has a penalty with this decision number)")
    return []


_CHECKS = {
    "AdministrativePenaltyImposed": _check_penalty,
}
