"""The deadlines of objections and repair applications as data: the validated contents of
``objections.v<N>.json`` (docs/domain-notes.md §9, §9.2).

  * ``credit_office`` — the department that runs the platform (信用信息共享平台): it forwards
    objections, answers what is within its own remit or on a department's behalf, and decides
    repair applications (河南省社会信用条例 arts. 41, 43).
  * ``objection_steps`` — the working days of each step of an objection (art. 41(2)), by rule id:
    ``objection_forward``, ``objection_answer_own``, ``objection_source_answer``, ``objection_answer``.
  * ``repair_regimes`` — per national repair regime (NDRC Order 58 from 2023-05-01, Order 36 from
    2026-04-01) the working days to accept or refuse (``repair_accept``) and to decide
    (``repair_decide``) an application, chosen by the day it was received.

Every step counts working days on the calendar (``WorkdayCalendar``): the trigger day not counted,
the act in time on the deadline day. ``parse_objection_rules`` validates the document the loader
read (``RulesError`` names the file, the entry and the reason). Pure: no file is opened here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

from ledger.domain.ruledoc import Reader

__all__ = ["OBJECTION_STEPS", "REPAIR_STEPS", "ObjectionRules", "RepairRegime", "Step", "parse_objection_rules"]

OBJECTION_STEPS = ("objection_forward", "objection_answer_own", "objection_source_answer", "objection_answer")
REPAIR_STEPS = ("repair_accept", "repair_decide")
CONFIDENCE = ("V", "S", "M", "U")


@dataclass(frozen=True)
class Step:
    """One step's deadline: ``working_days`` after the day it counts ``from``."""

    id: str
    working_days: int
    title: str
    legal_source: str
    confidence: str
    counted_from: str
    done: str


@dataclass(frozen=True)
class RepairRegime:
    """A national repair regime, for the applications received from ``in_force_from`` to ``in_force_until``."""

    id: str
    title: str
    in_force_from: date
    in_force_until: date | None
    steps: Mapping[str, Step]  # REPAIR_STEPS

    def covers(self, day: date) -> bool:
        return self.in_force_from <= day and (self.in_force_until is None or day <= self.in_force_until)


@dataclass(frozen=True)
class ObjectionRules:
    """The validated contents of ``objections.v<N>.json``."""

    file: str
    version: int
    legal_sources: tuple[str, ...]
    credit_office: str  # the department id of the platform's operator
    objection_steps: Mapping[str, Step]  # OBJECTION_STEPS
    objection_from: date  # the steps apply to objections received on or after it
    repair_regimes: tuple[RepairRegime, ...]  # by in_force_from

    def repair_regime(self, received_on: date) -> RepairRegime | None:
        """The regime of an application received on ``received_on`` (None before the first: no deadline)."""
        return next((r for r in self.repair_regimes if r.covers(received_on)), None)

    def step(self, rule: str, received_on: date) -> Step | None:
        """The deadline of a step (an objection's or a repair application's, by rule id) for a matter
        received on ``received_on``; None when no rule in force then sets one."""
        if rule in self.objection_steps:
            return self.objection_steps[rule] if received_on >= self.objection_from else None
        regime = self.repair_regime(received_on)
        return None if regime is None else regime.steps.get(rule)

    def titles(self) -> dict[str, Step]:
        """Every rule id with its newest step (the title and working days a report shows)."""
        out = dict(self.objection_steps)
        for regime in self.repair_regimes:
            out.update(regime.steps)
        return out


def parse_objection_rules(doc: dict[str, Any], file: str) -> ObjectionRules:
    """The ``ObjectionRules`` of the parsed ``objections.v<N>.json`` (header checked by the loader)."""
    r = Reader(file)
    r.keys(doc, "file", {"name", "version", "legal_sources", "credit_office", "objection_steps", "repair_regimes"},
           {"notes"})
    office = r.obj(doc["credit_office"], "credit_office")
    r.keys(office, "credit_office", {"department", "title", "legal_source"}, {"confidence"})
    steps_doc = r.obj(doc["objection_steps"], "objection_steps")
    if set(steps_doc) != set(OBJECTION_STEPS):
        r.fail("objection_steps", f"must give exactly {', '.join(OBJECTION_STEPS)}")
    starts = {_applies_from(r, steps_doc[k], f"objection_steps.{k}") for k in OBJECTION_STEPS}
    if len(starts) != 1:
        r.fail("objection_steps", "every step of an objection applies from the same day (the article's)")
    objection_steps = {k: _step(r, k, steps_doc[k], f"objection_steps.{k}", {"applies_from"}) for k in OBJECTION_STEPS}
    regimes: list[RepairRegime] = []
    for i, item in enumerate(r.array(doc["repair_regimes"], "repair_regimes")):
        entry = f"repair_regimes[{i}]"
        r.keys(item, entry, {"id", "title", "in_force_from", "in_force_until", "legal_source", "steps"}, {"confidence"})
        r.text(item["legal_source"], f"{entry}.legal_source")
        start = r.date(item["in_force_from"], f"{entry}.in_force_from")
        until = None if item["in_force_until"] is None else r.date(item["in_force_until"], f"{entry}.in_force_until")
        if until is not None and until < start:
            r.fail(f"{entry}.in_force_until", f"{until} is before in_force_from {start}")
        if regimes and (regimes[-1].in_force_until is None or start <= regimes[-1].in_force_until):
            r.fail(f"{entry}.in_force_from", "regimes follow one another without overlap, oldest first")
        steps = r.obj(item["steps"], f"{entry}.steps")
        if set(steps) != set(REPAIR_STEPS):
            r.fail(f"{entry}.steps", f"must give exactly {', '.join(REPAIR_STEPS)}")
        regimes.append(RepairRegime(r.text(item["id"], f"{entry}.id"), r.text(item["title"], f"{entry}.title"),
                                    start, until, MappingProxyType({
                                        k: _step(r, k, steps[k], f"{entry}.steps.{k}") for k in REPAIR_STEPS})))
    return ObjectionRules(file, doc["version"], tuple(doc["legal_sources"]),
                          r.text(office["department"], "credit_office.department"),
                          MappingProxyType(objection_steps), starts.pop(), tuple(regimes))


def _applies_from(r: Reader, item: Any, entry: str) -> date:
    return r.date(r.obj(item, entry).get("applies_from"), f"{entry}.applies_from")


def _step(r: Reader, key: str, item: Any, entry: str, extra: set[str] | None = None) -> Step:
    r.keys(item, entry, {"working_days", "title", "from", "to", "legal_source", "confidence"}, extra)
    days = item["working_days"]
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 60:
        r.fail(f"{entry}.working_days", f"{days!r} is not a whole number of working days from 1 to 60")
    if item["confidence"] not in CONFIDENCE:
        r.fail(f"{entry}.confidence", f"must be one of {', '.join(CONFIDENCE)}")
    return Step(key, days, r.text(item["title"], f"{entry}.title"), r.text(item["legal_source"], f"{entry}.legal_source"),
                item["confidence"], r.text(item["from"], f"{entry}.from"), r.text(item["to"], f"{entry}.to"))
