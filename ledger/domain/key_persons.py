"""Key natural persons (重点人群): the categories of ``key_persons.v<N>.json`` and the check of a registration.

国办发〔2016〕98号 names the groups whose members get a professional credit record (civil servants,
enterprise executives, lawyers, accountants, ... veterinarians); the seed asks that at least 80 % of
them have a credit record. Each group's register is kept by a department (``registers``), which
reports its members through the register feed: an ``EntityRegistered`` (v2) of a natural person with
``key_person_categories``. Coverage is then measured per category against those registrations
(docs/domain-notes.md §12.2).

Pure: the loader reads the file; ``parse_key_persons`` validates it against the department matrix
(every register department must exist and may emit EntityRegistered).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ledger.domain.errors import Rejection
from ledger.domain.ruledoc import Reader
from ledger.domain.rules import DepartmentMatrix

__all__ = ["KeyPersonCategory", "KeyPersonRules", "check_categories", "parse_key_persons"]

REGISTER_EVENT = "EntityRegistered"


@dataclass(frozen=True)
class KeyPersonCategory:
    id: str  # e.g. lawyer
    name: str  # 律师
    registers: frozenset[str]  # the departments that keep its register (department ids)


@dataclass(frozen=True)
class KeyPersonRules:
    """The validated contents of ``key_persons.v<N>.json``."""

    version: int
    target: float  # the seed's coverage target (0.80)
    categories: Mapping[str, KeyPersonCategory]  # in the file's order


def check_categories(categories: Sequence[str], department: str, is_person: bool, entity_kind: str,
                     known: frozenset[str], rules: KeyPersonRules) -> None:
    """A registration's key-person categories, judged: a natural person's (kind natural_person),
    each category known and reported by a department that keeps its register, none twice, none
    already recorded for this person (``known``). Raises Rejection naming ``key_person_categories``."""
    field = "key_person_categories"
    if not categories:
        return
    if not is_person or entity_kind != "natural_person":
        raise Rejection(field, "key_person.not_a_person",
                        "重点人群类别只适用于自然人（主体类型 natural_person，身份证号码）"
                        "(key-person categories are for natural persons only: entity_kind natural_person, "
                        "identified by a resident ID number)")
    if len(set(categories)) != len(categories):
        raise Rejection(field, "key_person.repeated", "重点人群类别重复 (a category is listed twice)")
    for category in categories:
        spec = rules.categories.get(category)
        if spec is None:
            raise Rejection(field, "key_person.unknown_category",
                            f"“{category}”不是重点人群类别（国办发〔2016〕98号，重点人群类别第{rules.version}版）"
                            f"(not a key-person category; known: {', '.join(rules.categories)})")
        if department not in spec.registers:
            raise Rejection(field, "key_person.not_register",
                            f"{department} 不掌握“{spec.name}”的名册，不能报送该类人员（掌握名册的部门："
                            f"{'、'.join(sorted(spec.registers))}）(this department does not keep the register of "
                            f"{category}; its register is kept by {', '.join(sorted(spec.registers))})")
        if category in known:
            raise Rejection(field, "key_person.already_registered",
                            f"该自然人已登记为“{spec.name}” (this person is already registered in {category})")


# --------------------------------------------------------------------------- parsing (from the loader)


def parse_key_persons(doc: dict[str, Any], file: str, matrix: DepartmentMatrix) -> KeyPersonRules:
    """The ``KeyPersonRules`` of the parsed ``key_persons.v<N>.json``; ``RulesError`` names the entry:
    an id that is not lower-case letters and underscores or is repeated, a register department the
    matrix does not know or that may not emit EntityRegistered, a target outside (0, 1]."""
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "target", "categories"}, {"notes"})
    reader.keys(doc["target"], "target", {"share", "legal_source"}, {"confidence"})
    share = doc["target"]["share"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        reader.fail("target.share", f"must be a share in (0, 1], got {share!r}")
    categories: dict[str, KeyPersonCategory] = {}
    for i, item in enumerate(reader.array(doc["categories"], "categories")):
        entry = f"categories[{i}]"
        reader.keys(item, entry, {"id", "name", "registers", "legal_source"}, {"confidence"})
        category = reader.text(item["id"], f"{entry}.id")
        if not re.fullmatch(r"[a-z][a-z_]*", category) or category in categories:
            reader.fail(f"{entry}.id", f"'{category}' must be unique, lower-case letters and underscores")
        reader.text(item["legal_source"], f"{entry}.legal_source")
        registers = reader.array(item["registers"], f"{entry}.registers")
        if not registers:
            reader.fail(f"{entry}.registers", "name at least one department that keeps the register")
        for j, department in enumerate(registers):
            known = matrix.departments.get(department)
            if known is None:
                reader.fail(f"{entry}.registers[{j}]", f"unknown department '{department}' (not in departments "
                            f"v{matrix.version})")
            if REGISTER_EVENT not in known.may_emit:
                reader.fail(f"{entry}.registers[{j}]", f"{department} may not emit {REGISTER_EVENT} "
                            f"(departments v{matrix.version})")
        categories[category] = KeyPersonCategory(category, reader.text(item["name"], f"{entry}.name"),
                                                 frozenset(registers))
    if not categories:
        reader.fail("categories", "list at least one category")
    return KeyPersonRules(doc["version"], float(share), MappingProxyType(categories))
