"""Publication periods and the department matrix from their rules documents (pure).

``parse_publication_periods`` and ``parse_departments`` turn ``publication_periods.v<N>.json`` and
``departments.v<N>.json``, as the one rules loader (``ledger/rules/loader.py``) read them and
checked their header, into the frozen values of ``ledger/domain/rules.py``, validating every entry:
a ``RulesError`` names the file, the entry (e.g. ``penalty_regimes[1].severities.serious``) and the
reason. No file is opened here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import MappingProxyType
from typing import Any, cast

from ledger.domain.ruledoc import Reader
from ledger.domain.rules import (
    EVENT_TYPES,
    LIST_KINDS,
    SEVERITIES,
    Department,
    DepartmentMatrix,
    EarlyRemoval,
    EndCondition,
    Intake,
    ListKindRule,
    PenaltyCategory,
    Period,
    PeriodRule,
    PeriodStart,
    PublicationRules,
    Regime,
)

__all__ = ["parse_departments", "parse_publication_periods"]


def parse_publication_periods(doc: dict[str, Any], file: str) -> PublicationRules:
    """``PublicationRules`` from the parsed ``publication_periods.v<N>.json`` (header already checked
    by the loader); ``RulesError`` names ``file``, the entry and the reason."""
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "penalty_regimes", "list_kinds"},
                {"notes", "penalty_categories", "ceilings"})
    categories = _categories(reader, doc.get("penalty_categories", []))
    regimes = tuple(_regime(reader, item, f"penalty_regimes[{i}]", categories)
                    for i, item in enumerate(reader.array(doc["penalty_regimes"], "penalty_regimes")))
    _check_ceilings(reader, doc.get("ceilings", []), regimes)
    if not regimes:
        reader.fail("penalty_regimes", "at least one regime is required")
    for i in range(1, len(regimes)):
        before, after = regimes[i - 1], regimes[i]
        if before.in_force_until is None or before.in_force_until + timedelta(days=1) != after.in_force_from:
            reader.fail(f"penalty_regimes[{i}]",
                        f"regime {after.id} must start the day after {before.id} ends "
                        "(regimes are ordered, contiguous and non-overlapping)")
    if regimes[-1].in_force_until is not None:
        reader.fail(f"penalty_regimes[{len(regimes) - 1}]",
                    "the last regime must be open-ended (in_force_until null)")
    kinds = reader.obj(doc["list_kinds"], "list_kinds")
    if unknown := set(kinds) - LIST_KINDS:
        reader.fail("list_kinds", f"unknown list kind(s) {', '.join(sorted(unknown))}")
    if missing := LIST_KINDS - set(kinds):
        reader.fail("list_kinds", f"missing list kind(s) {', '.join(sorted(missing))}")
    list_kinds = {kind: _list_kind(reader, kind, value, f"list_kinds.{kind}")
                  for kind, value in kinds.items()}
    return PublicationRules(doc["version"], tuple(doc["legal_sources"]), regimes,
                            MappingProxyType(list_kinds), MappingProxyType(categories))


def parse_departments(doc: dict[str, Any], file: str, *, every_type: bool = True) -> DepartmentMatrix:
    """The ``DepartmentMatrix`` from the parsed ``departments.v<N>.json``; ``RulesError`` as above.

    ``every_type``: every event type the ledger knows must have a department that may emit it. True
    for the newest version; an older version predates the event types added since, and is kept only
    to judge again what was judged under it."""
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "departments"}, {"notes", "intakes"})
    intakes: dict[str, Intake] = {}
    for i, item in enumerate(reader.array(doc.get("intakes", []), "intakes")):
        entry = f"intakes[{i}]"
        reader.keys(item, entry, {"id", "name", "legal_source"})
        intake_id = reader.text(item["id"], f"{entry}.id")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", intake_id) or intake_id in intakes:
            reader.fail(f"{entry}.id", f"'{intake_id}' must be unique, lower-case letters, digits and hyphens")
        intakes[intake_id] = Intake(intake_id, reader.text(item["name"], f"{entry}.name"),
                                    reader.text(item["legal_source"], f"{entry}.legal_source"))
    departments: dict[str, Department] = {}
    for i, item in enumerate(reader.array(doc["departments"], "departments")):
        entry = f"departments[{i}]"
        reader.keys(item, entry, {"id", "name", "kind", "legal_source", "may_emit"}, {"intakes"})
        dep_id = reader.text(item["id"], f"{entry}.id")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", dep_id):
            reader.fail(f"{entry}.id", f"'{dep_id}' must be lower-case letters, digits and hyphens")
        if dep_id in departments:
            reader.fail(f"{entry}.id", f"duplicate department id '{dep_id}'")
        if dep_id in intakes:
            reader.fail(f"{entry}.id", f"'{dep_id}' is an intake: an intake never speaks as a department")
        via = [reader.text(t, f"{entry}.intakes[{j}]")
               for j, t in enumerate(reader.array(item.get("intakes", []), f"{entry}.intakes"))]
        for j, intake in enumerate(via):
            if intake not in intakes:
                reader.fail(f"{entry}.intakes[{j}]", f"unknown intake '{intake}' (not under intakes)")
        if item["kind"] not in ("emitter", "system", "sector", "public"):
            reader.fail(f"{entry}.kind", f"'{item['kind']}' is not one of emitter, system, sector, public")
        if item["kind"] == "public" and not item.get("intakes"):
            reader.fail(f"{entry}.intakes", "the public file only through an intake: name at least one")
        emits = reader.array(item["may_emit"], f"{entry}.may_emit")
        may_emit = [reader.text(t, f"{entry}.may_emit[{j}]") for j, t in enumerate(emits)]
        for j, event_type in enumerate(may_emit):
            if event_type not in EVENT_TYPES:
                reader.fail(f"{entry}.may_emit[{j}]", f"unknown event type '{event_type}'")
        if len(set(may_emit)) != len(may_emit):
            reader.fail(f"{entry}.may_emit", "an event type is listed twice")
        departments[dep_id] = Department(dep_id, reader.text(item["name"], f"{entry}.name"), item["kind"],
                                         reader.text(item["legal_source"], f"{entry}.legal_source"),
                                         frozenset(may_emit), frozenset(via))
    orphans = EVENT_TYPES - set().union(*(d.may_emit for d in departments.values()))
    if orphans and every_type:
        reader.fail("departments", f"no department may emit {', '.join(sorted(orphans))}")
    return DepartmentMatrix(doc["version"], tuple(doc["legal_sources"]), MappingProxyType(departments),
                            MappingProxyType(intakes))


def _categories(reader: Reader, items: Any) -> dict[str, PenaltyCategory]:
    """``penalty_categories``: each CF_CFLB value with its legal source, first date and other spellings."""
    out: dict[str, PenaltyCategory] = {}
    spellings: set[str] = set()
    for i, item in enumerate(reader.array(items, "penalty_categories")):
        entry = f"penalty_categories[{i}]"
        reader.keys(item, entry, {"name", "legal_source"}, {"since", "aliases", "confidence", "note"})
        name = reader.text(item["name"], f"{entry}.name")
        since = None if item.get("since") is None else reader.date(item["since"], f"{entry}.since")
        aliases = tuple(reader.text(a, f"{entry}.aliases[{j}]")
                        for j, a in enumerate(reader.array(item.get("aliases", []), f"{entry}.aliases")))
        for spelling in (name, *aliases):
            if spelling in spellings:
                reader.fail(entry, f"'{spelling}' names two categories")
            spellings.add(spelling)
        out[name] = PenaltyCategory(name, reader.text(item["legal_source"], f"{entry}.legal_source"), since,
                                    aliases)
    return out


def _check_ceilings(reader: Reader, items: Any, regimes: tuple[Regime, ...]) -> None:
    """A ceiling (e.g. Henan art. 19: at most 5 years from 2020-05-01) no regime in force after its
    start may exceed."""
    for i, item in enumerate(reader.array(items, "ceilings")):
        entry = f"ceilings[{i}]"
        reader.keys(item, entry, {"id", "legal_source", "from", "max_months"}, {"confidence"})
        reader.text(item["legal_source"], f"{entry}.legal_source")
        start = reader.date(item["from"], f"{entry}.from")
        ceiling = reader.months(item["max_months"], f"{entry}.max_months", minimum=1)
        for regime in regimes:
            if regime.in_force_until is not None and regime.in_force_until < start:
                continue
            for severity, period in regime.periods.items():
                if period.max_months > ceiling:
                    reader.fail(entry, f"regime {regime.id} publishes {severity} penalties {period.max_months} "
                                       f"months, beyond the ceiling of {ceiling} months from {start}")


def _regime(reader: Reader, item: Any, entry: str, categories: dict[str, PenaltyCategory]) -> Regime:
    reader.keys(item, entry, {"id", "title", "legal_source", "in_force_from", "in_force_until", "severities"},
                {"confidence", "period_start", "end_condition", "withdrawn_at_cut_over", "category_severity",
                 "notes"})
    start = reader.date(item["in_force_from"], f"{entry}.in_force_from")
    until = item["in_force_until"]
    end = None if until is None else reader.date(until, f"{entry}.in_force_until")
    if end is not None and end < start:
        reader.fail(f"{entry}.in_force_until", f"{end} is before in_force_from {start}")
    severities = reader.obj(item["severities"], f"{entry}.severities")
    reader.keys(severities, f"{entry}.severities", set(SEVERITIES))
    periods: dict[str, Period] = {}
    aliases: dict[str, str] = {}
    for severity in SEVERITIES:
        where = f"{entry}.severities.{severity}"
        spec = severities[severity]
        if isinstance(spec, dict) and "treat_as" in spec:
            reader.keys(spec, where, {"treat_as"}, {"note"})
            aliases[severity] = reader.text(spec["treat_as"], f"{where}.treat_as")
            continue
        reader.keys(spec, where, {"min_months", "max_months"})
        low = reader.months(spec["min_months"], f"{where}.min_months")
        high = reader.months(spec["max_months"], f"{where}.max_months")
        if high < 1 or low > high:
            reader.fail(where, f"min_months {low} must be <= max_months {high}, and max_months >= 1")
        periods[severity] = Period(low, high)
    for severity, target in aliases.items():
        if target not in periods:
            reader.fail(f"{entry}.severities.{severity}.treat_as",
                        f"'{target}' must name a severity of this regime that has its own periods")
        periods[severity] = periods[target]
    period_start = item.get("period_start", "decision_date")
    if period_start not in ("decision_date", "publication_date"):
        reader.fail(f"{entry}.period_start", f"'{period_start}' is not one of decision_date, publication_date")
    end_condition = item.get("end_condition", "automatic")
    if end_condition not in ("automatic", "automatic_once_corrected"):
        reader.fail(f"{entry}.end_condition",
                    f"'{end_condition}' is not one of automatic, automatic_once_corrected")
    cut_over = item.get("withdrawn_at_cut_over")
    if cut_over is not None:
        cut_over = reader.date(cut_over, f"{entry}.withdrawn_at_cut_over")
    mapping = _category_severity(reader, item.get("category_severity"), f"{entry}.category_severity", categories)
    return Regime(reader.text(item["id"], f"{entry}.id"), reader.text(item["title"], f"{entry}.title"),
                  reader.text(item["legal_source"], f"{entry}.legal_source"), start, end,
                  MappingProxyType(periods), cast(PeriodStart, period_start), cast(EndCondition, end_condition),
                  cut_over, MappingProxyType(mapping))


def _category_severity(reader: Reader, value: Any, entry: str,
                       categories: dict[str, PenaltyCategory]) -> dict[str, str]:
    """``category_severity`` of a regime: every category of ``penalty_categories`` to a class, with
    the source of the mapping (``legal_source``, ``confidence``)."""
    if value is None:
        return {}
    spec = reader.obj(value, entry)
    reader.keys(spec, entry, {"legal_source", "classes"}, {"confidence", "notes"})
    reader.text(spec["legal_source"], f"{entry}.legal_source")
    classes = reader.obj(spec["classes"], f"{entry}.classes")
    if missing := set(categories) - set(classes):
        reader.fail(f"{entry}.classes", f"no class for the category(ies) {', '.join(sorted(missing))}")
    if unknown := set(classes) - set(categories):
        reader.fail(f"{entry}.classes", f"'{', '.join(sorted(unknown))}' is not in penalty_categories")
    for name, severity in classes.items():
        if severity not in SEVERITIES:
            reader.fail(f"{entry}.classes.{name}", f"'{severity}' is not one of {', '.join(SEVERITIES)}")
    return dict(classes)


def _list_kind(reader: Reader, kind: str, item: Any, entry: str) -> ListKindRule:
    reader.keys(item, entry, {"title", "legal_source", "period", "early_removal"}, {"confidence"})
    period = reader.obj(item["period"], f"{entry}.period")
    rule = period.get("rule")
    fixed = decision = by_ground = extension = None
    if rule == "fixed":
        reader.keys(period, f"{entry}.period", {"rule", "months"})
        fixed = reader.months(period["months"], f"{entry}.period.months", minimum=1)
    elif rule == "by_decision":
        reader.keys(period, f"{entry}.period", {"rule", "min_months", "max_months"})
        decision = reader.range(period, f"{entry}.period", "min_months", "max_months")
    elif rule == "by_ground":
        reader.keys(period, f"{entry}.period", {"rule", "months_by_ground", "extension_months"})
        grounds = reader.obj(period["months_by_ground"], f"{entry}.period.months_by_ground")
        by_ground = {}
        for ground, months in grounds.items():
            where = f"{entry}.period.months_by_ground.{ground}"
            if not re.fullmatch(r"[1-9][0-9]*", ground):
                reader.fail(where, "grounds are numbered 1, 2, 3 ...")
            by_ground[int(ground)] = None if months is None else reader.months(months, where, minimum=1)
        if period["extension_months"] is not None:
            ext = reader.obj(period["extension_months"], f"{entry}.period.extension_months")
            reader.keys(ext, f"{entry}.period.extension_months", {"min", "max"})
            extension = reader.range(ext, f"{entry}.period.extension_months", "min", "max")
    else:
        reader.fail(f"{entry}.period.rule", f"'{rule}' is not one of fixed, by_decision, by_ground")
    removal = None
    if item["early_removal"] is not None:
        where = f"{entry}.early_removal"
        spec = reader.obj(item["early_removal"], where)
        after_listing, after_correction = "min_months_after_listing", "min_months_after_correction"
        reader.keys(spec, where, {"requires_correction", after_listing, after_correction})
        if not isinstance(spec["requires_correction"], bool):
            reader.fail(f"{where}.requires_correction", "must be true or false")
        removal = EarlyRemoval(spec["requires_correction"],
                               reader.months(spec[after_listing], f"{where}.{after_listing}"),
                               reader.months(spec[after_correction], f"{where}.{after_correction}"))
    return ListKindRule(kind, reader.text(item["title"], f"{entry}.title"),
                        reader.text(item["legal_source"], f"{entry}.legal_source"), cast(PeriodRule, rule),
                        fixed, decision, None if by_ground is None else MappingProxyType(by_ground),
                        extension, removal)
