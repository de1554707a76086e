"""The county (县、市、区) of an entity, from its code: the validated ``divisions.v<N>.json`` and one function.

    county_of(id_type, normalised_id, divisions) -> the county's id

The division part of an identifier says where it was issued: characters 3-8 of a unified social
credit code are the registering authority's division (GB 32100-2015, GB/T 2260), characters 1-6 of a
resident ID number the county of household registration (GB 11643-1999). The rules file lists
Xuchang's counties, districts and zones with their codes, today's and historical (411023 许昌县 is
today's 建安区), the codes that name only the city (the "city level": 411000, 411001, the old
prefecture 412600) and what everything else is ("outside": 市外). docs/domain-notes.md §2.3.

Pure: the loader (``ledger/rules/loader.py``) reads the file; ``parse_divisions`` validates it
(``RulesError`` naming the file, the entry and the reason).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ledger.domain.ruledoc import Reader

__all__ = ["County", "Divisions", "county_of", "division_code", "parse_divisions"]

KINDS = ("district", "county", "county_city", "zone", "city_level", "outside")
_CODE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class County:
    """One place an entity can be in: a county, district, county-level city or zone of the city, the
    city level (a code that names only the city) or outside the city."""

    id: str  # today's division code, "411000" for the city level, "outside"
    name: str  # 魏都区, 市本级, 市外
    kind: str  # one of KINDS
    title: str  # the name as a heading shows it


@dataclass(frozen=True)
class Divisions:
    """The validated contents of ``divisions.v<N>.json``."""

    version: int
    city: str  # 许昌市
    counties: tuple[County, ...]  # the city's own, in the file's order, then the city level, then outside
    by_code: Mapping[str, str]  # every code of the file (today's and historical) -> county id

    @property
    def by_id(self) -> dict[str, County]:
        return {c.id: c for c in self.counties}

    @property
    def outside(self) -> County:
        return self.counties[-1]

    def county(self, code: str) -> County:
        """The county a six-digit division code belongs to (outside the city for any code not listed)."""
        return self.by_id[self.by_code.get(code, self.outside.id)]


def division_code(id_type: str, normalised_id: str) -> str:
    """The six-digit division part of a normalised identifier: characters 3-8 of a credit code,
    characters 1-6 of a resident ID number ('' when the identifier is too short to hold one)."""
    code = normalised_id[2:8] if id_type == "USCC" else normalised_id[:6]
    return code if _CODE.fullmatch(code) else ""


def county_of(id_type: str, normalised_id: str, divisions: Divisions) -> str:
    """The id of the county (``County.id``) an entity's identifier places it in."""
    return divisions.by_code.get(division_code(id_type, normalised_id), divisions.outside.id)


# --------------------------------------------------------------------------- parsing (from the loader)


def parse_divisions(doc: dict[str, Any], file: str) -> Divisions:
    """The ``Divisions`` of the parsed ``divisions.v<N>.json`` (header checked by the loader).

    ``RulesError`` names ``file``, the entry and the reason: a code that is not six digits or is
    listed twice (a code belongs to one place), a kind not known, a county without a legal source."""
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "city", "city_level", "outside", "counties"},
                {"notes"})
    reader.keys(doc["city"], "city", {"code", "name", "legal_source"}, {"confidence"})
    by_code: dict[str, str] = {}

    def claim(code: Any, entry: str, county_id: str) -> None:
        text = reader.text(code, entry)
        if not _CODE.fullmatch(text):
            reader.fail(entry, f"'{text}' is not a six-digit division code")
        if text in by_code:
            reader.fail(entry, f"{text} is listed twice (already under {by_code[text]})")
        by_code[text] = county_id

    counties: list[County] = []
    for i, item in enumerate(reader.array(doc["counties"], "counties")):
        entry = f"counties[{i}]"
        reader.keys(item, entry, {"code", "name", "kind", "legal_source", "former_codes"}, {"confidence"})
        if item["kind"] not in KINDS[:4]:
            reader.fail(f"{entry}.kind", f"'{item['kind']}' is not one of {', '.join(KINDS[:4])}")
        reader.text(item["legal_source"], f"{entry}.legal_source")
        name = reader.text(item["name"], f"{entry}.name")
        claim(item["code"], f"{entry}.code", item["code"])
        counties.append(County(item["code"], name, item["kind"], name))
        for j, former in enumerate(reader.array(item["former_codes"], f"{entry}.former_codes")):
            where = f"{entry}.former_codes[{j}]"
            reader.keys(former, where, {"code", "name", "in_use", "legal_source"}, {"confidence"})
            claim(former["code"], f"{where}.code", item["code"])
    level = doc["city_level"]
    reader.keys(level, "city_level", {"id", "name", "title", "codes"})
    level_id = reader.text(level["id"], "city_level.id")
    for j, item in enumerate(reader.array(level["codes"], "city_level.codes")):
        reader.keys(item, f"city_level.codes[{j}]", {"code", "name", "legal_source"}, {"confidence"})
        claim(item["code"], f"city_level.codes[{j}].code", level_id)
    if level_id not in by_code or by_code[level_id] != level_id:
        reader.fail("city_level.id", f"'{level_id}' must be one of the city level's own codes")
    counties.append(County(level_id, reader.text(level["name"], "city_level.name"), "city_level",
                           reader.text(level["title"], "city_level.title")))
    outside = doc["outside"]
    reader.keys(outside, "outside", {"id", "name", "title", "legal_source"}, {"confidence"})
    outside_id = reader.text(outside["id"], "outside.id")
    if _CODE.fullmatch(outside_id) or outside_id in {c.id for c in counties}:
        reader.fail("outside.id", f"'{outside_id}' must not be a division code or another place's id")
    counties.append(County(outside_id, reader.text(outside["name"], "outside.name"), "outside",
                           reader.text(outside["title"], "outside.title")))
    return Divisions(doc["version"], reader.text(doc["city"]["name"], "city.name"), tuple(counties),
                     MappingProxyType(by_code))
