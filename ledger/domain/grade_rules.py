"""The credit-grade weights as data: the validated contents of ``credit_grade.v<N>.json``.

The weights are the platform's own policy, not law (the file's ``notes`` say so); the grade itself
is computed by ``projections/grade.py``. The one rules loader (``ledger/rules/loader.py``) reads the
file; ``parse_grade_rules`` turns it into ``GradeRules``, validated like the other rules files
(``RulesError`` names the file, the entry and the reason). Pure: no file is opened here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ledger.domain.bands import Band, band_for, parse_bands
from ledger.domain.ruledoc import Reader
from ledger.domain.rules import LIST_KINDS, SEVERITIES

__all__ = ["MAX_SCORE", "MIN_SCORE", "TAX_LEVELS", "Band", "GradeRules", "parse_grade_rules"]

MIN_SCORE, MAX_SCORE = 0, 100
TAX_LEVELS: tuple[str, ...] = ("A", "B", "M", "C", "D")  # 纳税信用级别 (TaxCreditRated.level)


@dataclass(frozen=True)
class GradeRules:
    """The validated contents of ``credit_grade.v<N>.json``."""

    file: str
    version: int
    legal_sources: tuple[str, ...]
    start_score: int
    black_lists: Mapping[str, int]  # list kind -> points per active listing (<= 0)
    penalties: Mapping[str, int]  # severity -> points per published penalty (<= 0)
    tax_levels: Mapping[str, int]  # level of the latest assessed year -> points
    honour_points: int  # per red-list honour (>= 0)
    honour_cap: int  # honours counted at most
    revoked_licence: int  # per revoked licence (<= 0)
    bands: tuple[Band, ...]  # by min_score, highest first; the last starts at 0

    def band(self, score: int) -> Band:
        return band_for(self.bands, score)


# --------------------------------------------------------------------------- parsing (from the loader)


def parse_grade_rules(doc: dict[str, Any], file: str) -> GradeRules:
    """The ``GradeRules`` of the parsed ``credit_grade.v<N>.json`` (header already checked by the loader).

    Raises ``RulesError`` naming ``file``, the entry (e.g. ``black_lists.wage_arrears``) and the
    reason: a list kind, severity or tax level missing or unknown, a weight that is not a whole
    number from -100 to 100 or has the wrong sign (black lists, penalties and revoked licences
    deduct; honours add), a start score outside 0-100, bands that are not strictly descending,
    repeat a grade or do not end at 0.
    """
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "notes", "start_score", "black_lists",
                              "penalties", "tax_credit_levels", "red_list_honours", "revoked_licence", "bands"})
    reader.text(doc["notes"], "notes")
    start = _points(reader, doc["start_score"], "start_score", MIN_SCORE, MAX_SCORE)
    reader.keys(doc["black_lists"], "black_lists", set(LIST_KINDS))
    black = {k: _points(reader, doc["black_lists"][k], f"black_lists.{k}", -100, 0) for k in sorted(LIST_KINDS)}
    reader.keys(doc["penalties"], "penalties", set(SEVERITIES))
    penalties = {k: _points(reader, doc["penalties"][k], f"penalties.{k}", -100, 0) for k in SEVERITIES}
    reader.keys(doc["tax_credit_levels"], "tax_credit_levels", set(TAX_LEVELS))
    tax = {k: _points(reader, doc["tax_credit_levels"][k], f"tax_credit_levels.{k}", -100, 100)
           for k in TAX_LEVELS}
    honours = doc["red_list_honours"]
    reader.keys(honours, "red_list_honours", {"points_each", "max_counted"})
    honour_points = _points(reader, honours["points_each"], "red_list_honours.points_each", 0, 100)
    honour_cap = _points(reader, honours["max_counted"], "red_list_honours.max_counted", 0, 100)
    revoked = _points(reader, doc["revoked_licence"], "revoked_licence", -100, 0)
    return GradeRules(reader.file, doc["version"], tuple(doc["legal_sources"]), start,
                      MappingProxyType(black), MappingProxyType(penalties), MappingProxyType(tax),
                      honour_points, honour_cap, revoked, parse_bands(reader, doc["bands"], titled=True))


def _points(reader: Reader, value: Any, entry: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        reader.fail(entry, f"must be a whole number of points from {low} to {high}, got {value!r}")
    return value
