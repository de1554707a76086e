"""The rows of objections and repair applications, from the state the fold reached (no I/O).

After each event of the seven families (ledger/domain/objections.py) the fold writes the matter's
whole row again (`objections` or `repair_applications`, keyed by the receipt number): its steps'
dates from the entity's state, and each step's deadline in working days from the objection rules the
filing was judged under (ledger/rules/objections.v<N>.json, `RuleBook.at`), counted on the calendar
as every short deadline is (`Folder.lateness`: the trigger day not counted, the deadline day in time).
A step's event also gives its `short_deadlines` row, so that it is in the lateness report beside the
other short deadlines (docs/domain-notes.md §15.2): objection_forward, objection_answer_own or
objection_source_answer, repair_accept, repair_decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from ledger.domain.model import EntityState
from ledger.domain.objection_rules import ObjectionRules
from ledger.domain.objections import OBJECTION
from projections.publicity import Lateness

Measure = Callable[[date, date, int], Lateness]  # Folder.lateness: (trigger, done, working days)

# the short deadline of each step's event: rule id (an objection's answer: whether it was forwarded),
# the state's field it counts from, the event's field it was done on
STEP_OF = {"ObjectionForwarded": ("objection_forward", "received_on", "forwarded_on"),
           "RepairAccepted": ("repair_accept", "received_on", "accepted_on"),
           "RepairRefused": ("repair_accept", "received_on", "refused_on"),
           "RepairDecided": ("repair_decide", "received_on", "decided_on")}


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


class Deadlines:
    """Deadlines of one matter: each computed once, with whether a provisional year was used."""

    def __init__(self, rules: ObjectionRules, measure: Measure, received: date) -> None:
        self.rules, self.measure, self.received = rules, measure, received
        self.provisional = False

    def due(self, rule: str, start: date | None, done: date | None) -> tuple[date | None, bool | None]:
        """(deadline, late) of a step counted from `start`; late is None while the step is not done."""
        step = self.rules.step(rule, self.received)
        if step is None or start is None:
            return None, None
        lateness = self.measure(start, done or start, step.working_days)
        self.provisional = self.provisional or lateness.provisional
        return lateness.deadline, None if done is None else lateness.late


def objection_row(m: Mapping[str, Any], receipt: str, rules: ObjectionRules, measure: Measure,
                  body: Mapping[str, Any], entity: tuple[str, str, str, str]) -> tuple[Any, ...]:
    """An objections row (views.OBJECTION_COLS); `entity` = (entity id, name, public id, category)."""
    received = date.fromisoformat(m["received_on"])
    forwarded, answered = _day(m.get("forwarded_on")), _day(m.get("answered_on"))
    clock = Deadlines(rules, measure, received)
    forward_due, forward_late = clock.due("objection_forward", received, forwarded)
    source_due, source_late = clock.due("objection_source_answer", forwarded, answered)
    answer_due, answer_late = clock.due("objection_answer" if forwarded else "objection_answer_own", received,
                                        answered)
    entity_id, name, public_id, category = entity
    return (receipt, entity_id, m["target_event_id"], m["record_kind"], m["record_ref"], m["grounds"], m["status"],
            m.get("result"), m.get("correcting_event_id"), m["filed_by"], receipt, received, forward_due, forwarded,
            m.get("forwarded_to"), forward_late, source_due, answer_due, answered, m.get("answered_by"), answer_late,
            source_late, body.get("explanation") if answered else None, clock.provisional, name, public_id, category)


def repair_row(m: Mapping[str, Any], receipt: str, rules: ObjectionRules, measure: Measure,
               body: Mapping[str, Any], entity: tuple[str, str, str, str]) -> tuple[Any, ...]:
    """A repair_applications row (views.REPAIR_COLS)."""
    received = date.fromisoformat(m["received_on"])
    accepted, refused, decided = _day(m.get("accepted_on")), _day(m.get("refused_on")), _day(m.get("decided_on"))
    clock = Deadlines(rules, measure, received)
    accept_due, accept_late = clock.due("repair_accept", received, accepted or refused)
    decide_due, decide_late = clock.due("repair_decide", received, decided)
    regime = rules.repair_regime(received)
    entity_id, name, public_id, category = entity
    return (receipt, entity_id, m["target_event_id"], m["record_kind"], m["record_ref"], m["status"], m.get("result"),
            m.get("repair_event_id"), m["filed_by"], receipt, received, None if regime is None else regime.id,
            accept_due, accepted, refused, body.get("reason") if refused else None, accept_late, decide_due, decided,
            decide_late, body.get("explanation") if decided else None, clock.provisional, name, public_id, category)


def matter_rows(entry: dict[str, Any], rec: dict[str, Any], after: EntityState, rules_at: Callable[[int], ObjectionRules],
                measure: Measure, public: dict[str, str]) -> tuple[str, tuple[Any, ...], tuple[Any, ...] | None]:
    """("objections" or "repair_applications", the matter's row, its step's short_deadlines row or None)
    for an event of the seven families that the fold just applied (`after`: the state after it)."""
    receipt = rec.get("receipt_no") or entry["event_id"]
    m = after.requests[receipt]
    rules = rules_at(m["rules"])
    entity = (entry["entity_id"], public["name"], public["id"], entry["category"])
    table, row = (("objections", objection_row(m, receipt, rules, measure, rec, entity)) if m["kind"] == OBJECTION
                  else ("repair_applications", repair_row(m, receipt, rules, measure, rec, entity)))
    t = entry["event_type"]
    if t == "ObjectionAnswered":
        step = ("objection_source_answer", "forwarded_on", "answered_on") if m.get("forwarded_on") else \
            ("objection_answer_own", "received_on", "answered_on")
    else:
        step = STEP_OF.get(t)
    if step is None:
        return table, row, None
    rule_id, start, done_field = step
    received = date.fromisoformat(m["received_on"])
    rule = rules.step(rule_id, received)
    if rule is None:
        return table, row, None
    trigger, done = date.fromisoformat(m[start]), rec[done_field]
    late = measure(trigger, done, rule.working_days)
    return table, row, (entry["event_id"], entry["entity_id"], rule_id, receipt, entry["department"], trigger, done,
                        rule.working_days, late.deadline, late.working_days_taken, late.late, late.provisional,
                        public["name"], public["id"], entry["category"])
