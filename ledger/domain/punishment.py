"""The joint-punishment catalogue (联合惩戒措施清单) and the red-list incentives, as data.

``ledger/rules/punishment_catalogue.v<N>.json`` maps each list kind to measures, each measure to the
departments that implement it (ids of the department matrix) and to the actions a sector system may
ask about ("may entity X do Y"), with its legal basis (docs/domain-notes.md §5). Pure: the one rules loader
(``ledger/rules/loader.py``) reads the file and ``parse_catalogue`` turns it into a ``Catalogue``;
the list keeper (alerts), the trigger query and the portal all read the same ``Catalogue``.

A measure applies to an entity when one of its list kinds is active for the entity and the entity's
credit database is among its categories (none listed = every database).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any, Literal

from ledger.domain.identity import Category
from ledger.domain.ruledoc import Reader
from ledger.domain.rules import LIST_KINDS, DepartmentMatrix, add_months

__all__ = ["RED_LIST", "Catalogue", "HonourKind", "Measure", "parse_catalogue"]

RED_LIST = "red"
CATEGORIES: frozenset[str] = frozenset(Category.__args__)  # type: ignore[attr-defined]
Kind = Literal["punishment", "incentive"]
_ID = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Measure:
    id: str
    kind: Kind
    name: str
    name_en: str
    list_kinds: frozenset[str]
    categories: frozenset[str]  # empty: every credit database
    departments: tuple[str, ...]
    actions: frozenset[str]
    legal_basis: str
    confidence: str

    def applies_to(self, category: str) -> bool:
        return not self.categories or category in self.categories

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "name_en": self.name_en,
                "list_kinds": sorted(self.list_kinds), "categories": sorted(self.categories),
                "departments": list(self.departments), "actions": sorted(self.actions),
                "legal_basis": self.legal_basis, "confidence": self.confidence}


@dataclass(frozen=True)
class HonourKind:
    """How long a red-list honour of this kind holds: ``default_months`` when the award states no
    end, at most ``max_months`` when it does. ``names``: the honour titles of this kind (empty: any
    title no other kind names)."""

    id: str
    names: frozenset[str]
    default_months: int
    max_months: int
    legal_source: str
    confidence: str


@dataclass(frozen=True)
class Catalogue:
    version: int
    legal_sources: tuple[str, ...]
    measures: Mapping[str, Measure]  # punishments and incentives, by id
    honour_kinds: tuple[HonourKind, ...] = ()  # red-list validity (from version 2)

    def honour_kind(self, title: str) -> HonourKind | None:
        """The kind an honour title belongs to (the catch-all kind if no kind names it; None if
        the catalogue sets no validity, as version 1)."""
        named = next((k for k in self.honour_kinds if title in k.names), None)
        return named or next((k for k in self.honour_kinds if not k.names), None)

    def honour_end(self, title: str, awarded_on: date, valid_until: date | None) -> date | None:
        """First day an honour no longer holds: the day after its stated last day, or after the
        kind's default validity (None: no end known, a version-1 catalogue and no stated end)."""
        if valid_until is not None:
            return valid_until + timedelta(days=1)
        kind = self.honour_kind(title)
        return None if kind is None else add_months(awarded_on, kind.default_months) + timedelta(days=1)

    @property
    def actions(self) -> frozenset[str]:
        return frozenset().union(*(m.actions for m in self.measures.values()))

    def for_list(self, list_kind: str, category: str) -> tuple[Measure, ...]:
        """The measures a listing of this kind brings for an entity of this credit database, in file order."""
        return tuple(m for m in self.measures.values() if list_kind in m.list_kinds and m.applies_to(category))

    def applicable(self, active_lists: Iterable[str], category: str, action: str | None = None) -> tuple[Measure, ...]:
        """Measures in force for an entity on these lists (optionally only those concerning ``action``)."""
        active = set(active_lists)
        return tuple(m for m in self.measures.values()
                     if m.list_kinds & active and m.applies_to(category) and (action is None or action in m.actions))


def parse_catalogue(doc: dict[str, Any], file: str, matrix: DepartmentMatrix) -> Catalogue:
    """The ``Catalogue`` of the parsed ``punishment_catalogue.v<N>.json`` (header already checked by
    the loader), its departments checked against ``matrix``; ``RulesError`` names the entry and the reason."""
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "measures", "incentives"}, {"notes", "honour_kinds"})
    measures: dict[str, Measure] = {}
    for section, kind in (("measures", "punishment"), ("incentives", "incentive")):
        for i, item in enumerate(reader.array(doc[section], section)):
            measure = _measure(reader, item, f"{section}[{i}]", kind, matrix)
            if measure.id in measures:
                reader.fail(f"{section}[{i}].id", f"duplicate measure id '{measure.id}'")
            measures[measure.id] = measure
    covered = set().union(*(m.list_kinds for m in measures.values() if m.kind == "punishment"))
    if missing := LIST_KINDS - covered:
        reader.fail("measures", f"no measure for list kind(s) {', '.join(sorted(missing))}")
    kinds = tuple(_honour_kind(reader, item, f"honour_kinds[{i}]")
                  for i, item in enumerate(reader.array(doc.get("honour_kinds", []), "honour_kinds")))
    if kinds and sum(1 for k in kinds if not k.names) != 1:
        reader.fail("honour_kinds", "exactly one kind must have no names (the kind of every other title)")
    titles = [t for k in kinds for t in k.names]
    if len(set(titles)) != len(titles):
        reader.fail("honour_kinds", "an honour title is named by two kinds")
    return Catalogue(doc["version"], tuple(doc["legal_sources"]), MappingProxyType(measures), kinds)


def _honour_kind(reader: Reader, item: object, entry: str) -> HonourKind:
    reader.keys(item, entry, {"id", "names", "default_months", "max_months", "legal_source", "confidence"})
    assert isinstance(item, dict)
    months = {}
    for key in ("default_months", "max_months"):
        value = item[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 120:
            reader.fail(f"{entry}.{key}", f"must be a whole number of months from 1 to 120, got {value!r}")
        months[key] = value
    if months["default_months"] > months["max_months"]:
        reader.fail(f"{entry}.default_months", "must not exceed max_months")
    if item["confidence"] not in ("V", "S", "M", "U"):
        reader.fail(f"{entry}.confidence", f"'{item['confidence']}' is not one of V, S, M, U")
    names = [reader.text(v, f"{entry}.names[{j}]") for j, v in enumerate(reader.array(item["names"], f"{entry}.names"))]
    return HonourKind(reader.text(item["id"], f"{entry}.id"), frozenset(names), months["default_months"],
                      months["max_months"], reader.text(item["legal_source"], f"{entry}.legal_source"),
                      item["confidence"])


def _measure(reader: Reader, item: object, entry: str, kind: Kind, matrix: DepartmentMatrix) -> Measure:
    reader.keys(item, entry, {"id", "name", "name_en", "list_kinds", "categories", "departments", "actions",
                              "legal_basis", "confidence"})
    assert isinstance(item, dict)
    mid = reader.text(item["id"], f"{entry}.id")
    if not _ID.fullmatch(mid):
        reader.fail(f"{entry}.id", f"'{mid}' must be lower-case letters, digits and hyphens")
    allowed_lists = {RED_LIST} if kind == "incentive" else LIST_KINDS
    list_kinds = _names(reader, item["list_kinds"], f"{entry}.list_kinds", allowed_lists, "list kind")
    categories = _names(reader, item["categories"], f"{entry}.categories", CATEGORIES, "credit database",
                        may_be_empty=True)
    departments = _names(reader, item["departments"], f"{entry}.departments",
                         set(matrix.departments), "department")
    actions = [reader.text(a, f"{entry}.actions[{j}]") for j, a in enumerate(reader.array(item["actions"],
                                                                                            f"{entry}.actions"))]
    for j, action in enumerate(actions):
        if not _ID.fullmatch(action):
            reader.fail(f"{entry}.actions[{j}]", f"'{action}' must be lower-case letters, digits and hyphens")
    if not actions:
        reader.fail(f"{entry}.actions", "at least one action is required")
    if item["confidence"] not in ("V", "S", "U"):
        reader.fail(f"{entry}.confidence", f"'{item['confidence']}' is not one of V, S, U")
    return Measure(mid, kind, reader.text(item["name"], f"{entry}.name"),
                   reader.text(item["name_en"], f"{entry}.name_en"), frozenset(list_kinds), frozenset(categories),
                   tuple(departments), frozenset(actions), reader.text(item["legal_basis"], f"{entry}.legal_basis"),
                   item["confidence"])


def _names(reader: Reader, value: object, entry: str, allowed: Iterable[str], what: str,
           may_be_empty: bool = False) -> list[str]:
    names = [reader.text(v, f"{entry}[{j}]") for j, v in enumerate(reader.array(value, entry))]
    if not names and not may_be_empty:
        reader.fail(entry, f"at least one {what} is required")
    allowed = set(allowed)
    for j, name in enumerate(names):
        if name not in allowed:
            reader.fail(f"{entry}[{j}]", f"unknown {what} '{name}'")
    if len(set(names)) != len(names):
        reader.fail(entry, f"a {what} is listed twice")
    return names
