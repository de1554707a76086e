"""A transparent, rule-based public credit grade (公共信用评价), computed from an entity's state.

The weights live in ``ledger/rules/credit_grade.v<N>.json`` (the highest version), not here. They
are the platform's own policy, not law (the file's ``notes`` say so); the file's ``legal_sources``
(河南省社会信用条例 arts. 19-20, the national basic list of punishment measures) decide only WHICH
information may count:

  * every ACTIVE black-list entry (``state.listings`` with status ``active``), by list kind;
  * every administrative penalty still PUBLISHED (``state.penalties`` with status ``published``;
    repaired, expired and revoked penalties no longer count), by severity;
  * the tax credit level of the LATEST assessed year (``state.tax_ratings``), bonus or deduction; level
    D, whatever the last rating said, while a major tax violation listing is active (``tax_level``);
  * red-list honours IN FORCE (``state.honours`` of kind honour with status ``active``: not suspended
    by a black listing, expired or revoked), a bonus each, counted up to a cap (an A-level tax rating
    is on the red list too but counts through its tax level, once);
  * revoked licences (``state.licences`` with status ``revoked``), weight 0 in version 1 (see the
    file's notes: the state does not keep why a licence ended).

``grade(state, rules)`` starts from the file's start score, adds one ``Reason`` per item that moved
the score (an item whose weight is 0 gives no reason), clamps the result to [0, 100] and, if it had
to, adds a ``score.clamped`` reason for the difference, so that the points of the reasons always sum
to ``score - start_score``. The letter comes from the file's bands (the first band whose
``min_score`` the score reaches).

Reasons are ordered by kind (``list``, ``penalty``, ``licence``, ``tax``, ``honour``, then the
clamp), then by code, then by ref. Honours are one reason (``honour.red_list``): the state keeps
only their count, not the individual awards, so there is no document number to tell them apart.

The grade is a function of the state alone, with no date: a penalty whose publication period has
ended keeps counting until the scheduler's ``ListingExpired`` event reaches the ledger, exactly as
the published views show it.

Pure: the standard library and ``ledger.domain`` only. The rules file is read at start by the one
rules loader (``ledger/rules/loader.py``, ``load_grade``), which validates it into ``GradeRules``
(``ledger/domain/grade_rules.py``) and raises ``RulesError`` naming the file, the entry and the
reason; the weights come in as that value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ledger.domain.grade_rules import MAX_SCORE, MIN_SCORE, GradeRules
from ledger.domain.model import HONOUR, LIST_TITLES, EntityState

__all__ = ["Grade", "Reason", "TaxLevel", "grade", "tax_level"]

SEVERITY_TITLES = {"minor": "轻微", "general": "一般", "serious": "严重"}
_KIND_ORDER = {"list": 0, "penalty": 1, "licence": 2, "tax": 3, "honour": 4, "score": 5}


@dataclass(frozen=True)
class Reason:
    """One item that moved the score: ``code`` (``list.dishonest_debtor``, ``penalty.general``,
    ``licence.revoked``, ``tax.level_D``, ``honour.red_list``, ``score.clamped``), a Chinese
    sentence for the public page, the points it added (negative: deducted) and the case, decision,
    licence number or tax year it refers to (``None`` for honours and the clamp)."""

    code: str
    text_zh: str
    points: int
    ref: str | None


@dataclass(frozen=True)
class Grade:
    score: int
    grade: str
    reasons: tuple[Reason, ...]


def grade(state: EntityState, rules: GradeRules) -> Grade:
    """The entity's score, letter and the reasons that make up the score (see the module doc).

    Raises ``ValueError`` if the state holds a list kind, severity or tax level the rules do not
    weigh (impossible for a state built by ``evolve`` from accepted events and a valid file).
    """
    reasons: list[Reason] = []
    for listing in state.active_listings():
        kind, ref = listing["list_kind"], str(listing["ref"])
        points = _weight(rules.black_lists, kind, "list kind")
        if points:
            reasons.append(Reason(f"list.{kind}", f"列入{LIST_TITLES.get(kind, kind)}（{ref}）", points, ref))
    for decision_no, penalty in state.penalties.items():
        if penalty["status"] != "published":
            continue
        severity = penalty["severity"]
        points = _weight(rules.penalties, severity, "penalty severity")
        if points:
            reasons.append(Reason(f"penalty.{severity}",
                                  f"行政处罚信息公示期内（{SEVERITY_TITLES.get(severity, severity)}失信行为，"
                                  f"{decision_no}）", points, decision_no))
    if rules.revoked_licence:
        for licence_no, licence in state.licences.items():
            if licence["status"] == "revoked":
                reasons.append(Reason("licence.revoked", f"行政许可被撤销（许可编号{licence_no}）",
                                      rules.revoked_licence, licence_no))
    tax = tax_level(state)
    if tax is not None:
        points = _weight(rules.tax_levels, tax.level, "tax credit level")
        if points:
            reasons.append(Reason(tax.code, tax.text_zh, points, tax.ref))
    honours = len(state.active_honours(HONOUR))
    counted = min(honours, rules.honour_cap)
    if counted and rules.honour_points:
        extra = f"，按上限计{counted}项" if honours > counted else ""
        reasons.append(Reason("honour.red_list",
                              f"列入红名单（守信激励）{honours}项{extra}，每项加{rules.honour_points}分",
                              counted * rules.honour_points, None))
    reasons.sort(key=lambda r: (_KIND_ORDER[r.code.split(".", 1)[0]], r.code, r.ref or ""))
    raw = rules.start_score + sum(r.points for r in reasons)
    score = min(MAX_SCORE, max(MIN_SCORE, raw))
    if score != raw:
        reasons.append(Reason("score.clamped",
                              f"得分按{MIN_SCORE}至{MAX_SCORE}分计：计算得分{raw}分，计为{score}分",
                              score - raw, None))
    return Grade(score, rules.band(score).grade, tuple(reasons))


@dataclass(frozen=True)
class TaxLevel:
    """The tax credit level that counts now, and why: ``tax.level_<L>`` (the latest assessed year's
    rating, ``ref`` the year) or ``tax.level_D_implied`` (a major tax violation listing is active:
    level D directly, whatever the last rating said; ``ref`` the case number)."""

    level: str
    code: str
    text_zh: str
    ref: str


def tax_level(state: EntityState) -> TaxLevel | None:
    """The level in force: D while a major tax violation listing is active (国家税务总局令第54号: the
    subject is rated D directly; docs/domain-notes.md §4.4), else the latest assessed year's rating."""
    listed = sorted(state.active_listings("major_tax_violation"), key=lambda x: (x["listed_on"], x["ref"]))
    if listed:
        ref = str(listed[0]["ref"])
        return TaxLevel("D", "tax.level_D_implied",
                        f"列入重大税收违法失信主体名单（{ref}），纳税信用直接判为D级（国家税务总局令第54号）", ref)
    if not state.tax_ratings:
        return None
    year = max(state.tax_ratings, key=int)
    level = state.tax_ratings[year]
    return TaxLevel(level, f"tax.level_{level}", f"{year}年度纳税信用级别为{level}级", str(year))


def _weight(weights: Mapping[str, int], key: str, what: str) -> int:
    try:
        return weights[key]
    except KeyError:
        raise ValueError(f"the credit-grade rules give no weight for the {what} '{key}'") from None
