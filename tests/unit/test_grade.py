"""The public credit grade: weights from ledger/rules/credit_grade.v1.json, states from the real domain.

Every state here is built by applying ops.workload records through decide/evolve, as the sequencer
and the projector do, so the grade sees the real shapes of listings, penalties, ratings, honours.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.decide import decide
from ledger.domain.errors import Rejection, RulesError
from ledger.domain.grade_rules import MAX_SCORE, MIN_SCORE, TAX_LEVELS, GradeRules
from ledger.domain.model import EntityState, Event, evolve
from ledger.domain.rules import LIST_KINDS, SEVERITIES
from ledger.rules.loader import default_directory, load, load_grade
from ops import workload
from projections.grade import Grade, Reason, grade

_LOADED = load()
PUBLICATION, CATALOGUE = _LOADED.publication, _LOADED.catalogue
RULES = _LOADED.grade
TODAY = date(2026, 11, 27)
SUBJECT = workload.Subject("91411002MA5FMHPPX6", "USCC", "许昌瑞祥食品有限公司")
FILE = "credit_grade.v1.json"


def _event(dept_rec: tuple[str, dict[str, Any]]) -> Event:
    dept, rec = dept_rec
    env = rec["envelope"]
    return Event(env["event_id"], env["event_type"], "uscc:" + SUBJECT.id, dept, env["valid_from"], env["valid_to"],
                 datetime(2026, 11, 27, tzinfo=UTC), {k: v for k, v in rec.items() if k != "envelope"})


def _apply(*dept_recs: tuple[str, dict[str, Any]], state: EntityState | None = None) -> EntityState:
    s = state or EntityState()
    for dr in dept_recs:
        e = _event(dr)
        assert decide(s, e, TODAY, PUBLICATION, CATALOGUE) == []
        s = evolve(s, e)
    return s


def _penalty(ref: str, decided: date, severity: str) -> tuple[str, dict[str, Any]]:
    return workload.workload_penalty(random.Random(ref), SUBJECT, "xc-samr", ref, decided, severity)


def _check_invariants(g: Grade, r: GradeRules) -> None:
    assert sum(x.points for x in g.reasons) == g.score - r.start_score
    assert MIN_SCORE <= g.score <= MAX_SCORE
    assert g.grade == r.band(g.score).grade
    assert all(x.points != 0 for x in g.reasons)
    assert [x.code for x in g.reasons].count("score.clamped") <= 1
    assert all(x.code != "score.clamped" for x in g.reasons[:-1])  # the clamp, if any, comes last


# --------------------------------------------------------------------------- the file


def test_the_file_names_its_sources_and_says_the_weights_are_policy() -> None:
    doc = json.loads((default_directory() / FILE).read_text(encoding="utf-8"))
    assert (doc["name"], doc["version"]) == ("credit_grade", 1)
    sources = "\n".join(doc["legal_sources"])
    assert "河南省社会信用条例" in sources and "第十九条" in sources and "第二十条" in sources
    assert "全国失信惩戒措施基础清单" in sources
    assert "not law" in doc["notes"] and "不是法律规定" in doc["notes"]


def test_the_weights_as_loaded() -> None:
    assert RULES.start_score == 100
    assert dict(RULES.black_lists) == {"dishonest_debtor": -40, "major_tax_violation": -40, "serious_dishonesty": -40,
                                       "wage_arrears": -30, "procurement_ban": -25}
    assert dict(RULES.penalties) == {"minor": -2, "general": -5, "serious": -15}
    assert dict(RULES.tax_levels) == {"A": 5, "B": 0, "M": 0, "C": -10, "D": -20}
    assert (RULES.honour_points, RULES.honour_cap, RULES.revoked_licence) == (3, 3, 0)
    assert [(b.grade, b.min_score) for b in RULES.bands] == [("A", 90), ("B", 75), ("C", 60), ("D", 0)]
    assert RULES.file.endswith(FILE)


@pytest.mark.parametrize(("score", "letter"), [(100, "A"), (90, "A"), (89, "B"), (75, "B"), (74, "C"), (60, "C"),
                                                (59, "D"), (0, "D")])
def test_bands(score: int, letter: str) -> None:
    assert RULES.band(score).grade == letter


def test_loaded_rules_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RULES.start_score = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        RULES.black_lists["wage_arrears"] = 0  # type: ignore[index]


# --------------------------------------------------------------------------- grades of real histories


def test_a_clean_registered_entity_keeps_the_start_score() -> None:
    s = _apply(workload.registered(SUBJECT, date(2019, 4, 1)), workload.commitment(SUBJECT, date(2025, 7, 1)))
    assert grade(s, RULES) == Grade(100, "A", ())


def test_the_dishonest_debtor_reason_reads_as_on_the_public_page() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "（2024）豫10执1号", date(2024, 5, 10)))
    g = grade(s, RULES)
    assert g.reasons == (Reason("list.dishonest_debtor", "列入失信被执行人名单（（2024）豫10执1号）", -40,
                                "（2024）豫10执1号"),)
    assert (g.score, g.grade) == (60, "C")


def test_an_honoured_a_rated_entity_is_clamped_at_100_and_says_so() -> None:
    s = _apply(*workload.honoured_life(SUBJECT))
    g = grade(s, RULES)
    assert [(r.code, r.points, r.ref) for r in g.reasons] == [
        ("tax.level_A", 5, "2025"), ("honour.red_list", 3, None), ("score.clamped", -8, None)]
    assert g.reasons[0].text_zh == "2025年度纳税信用级别为A级"
    assert "108" in g.reasons[-1].text_zh
    assert (g.score, g.grade) == (100, "A")
    _check_invariants(g, RULES)


def test_the_workload_life_before_and_after_its_endings() -> None:
    tag = 7
    starts, endings = workload.life(random.Random(3), SUBJECT, tag)
    s = _apply(*starts)
    g = grade(s, RULES)
    # five active listings (two court, tax, wage, procurement) and three published general penalties
    assert [(r.code, r.points) for r in g.reasons] == [
        ("list.dishonest_debtor", -40), ("list.dishonest_debtor", -40), ("list.major_tax_violation", -40),
        ("list.procurement_ban", -25), ("list.wage_arrears", -30),
        ("penalty.general", -5), ("penalty.general", -5), ("penalty.general", -5),
        ("tax.level_D_implied", -20), ("score.clamped", 110)]
    assert [r.ref for r in g.reasons[:2]] == ["（2024）豫10执00007号", "（2025）豫10执00007号"]
    assert [r.ref for r in g.reasons[5:8]] == ["许市监罚〔2025〕A00007号", "许市监罚〔2025〕B00007号",
                                              "许市监罚〔2026〕C00007号"]
    assert (g.score, g.grade) == (0, "D")
    _check_invariants(g, RULES)

    # endings: penalties repaired / expired / revoked, listings delisted or expired, licence revoked
    s = _apply(*endings, state=s)
    g = grade(s, RULES)
    assert g.reasons == (Reason("list.procurement_ban", "列入政府采购禁止参加名单（许财采罚〔2026〕00007号）", -25,
                                "许财采罚〔2026〕00007号"),)
    assert s.licences["JY14110000007"]["status"] == "revoked"  # weight 0 in v1: no reason
    assert s.tax_ratings == {"2023": "B"}  # weight 0: no reason
    assert (g.score, g.grade) == (75, "B")


def test_only_published_penalties_count() -> None:
    s = _apply(_penalty("P1", date(2025, 3, 3), "general"), _penalty("P2", date(2025, 6, 2), "serious"),
               _penalty("P3", date(2026, 5, 4), "minor"))
    assert [(r.code, r.ref, r.points) for r in grade(s, RULES).reasons] == [
        ("penalty.general", "P1", -5), ("penalty.minor", "P3", -2), ("penalty.serious", "P2", -15)]
    assert grade(s, RULES).reasons[2].text_zh == "行政处罚信息公示期内（严重失信行为，P2）"
    s = _apply(workload.repaired(SUBJECT, "administrative_penalty", "P2", date(2026, 6, 3)),
               workload.penalty_revoked(SUBJECT, "P3", date(2026, 6, 10)), state=s)
    g = grade(s, RULES)
    assert [r.ref for r in g.reasons] == ["P1"] and g.score == 95


def test_the_latest_tax_year_counts_whatever_the_order_of_the_ratings() -> None:
    s = _apply(_penalty("P1", date(2025, 6, 2), "serious"),
               workload.tax_rated(SUBJECT, 2025, "A", date(2026, 4, 15)),
               workload.tax_rated(SUBJECT, 2023, "D", date(2024, 4, 20)))
    g = grade(s, RULES)
    assert [(r.code, r.ref, r.points) for r in g.reasons] == [("penalty.serious", "P1", -15),
                                                              ("tax.level_A", "2025", 5)]
    assert (g.score, g.grade) == (90, "A")
    s = _apply(workload.tax_rated(SUBJECT, 2026, "C", date(2026, 11, 2)), state=s)
    assert grade(s, RULES).reasons[-1] == Reason("tax.level_C", "2026年度纳税信用级别为C级", -10, "2026")


def test_honours_count_up_to_the_cap() -> None:
    honours = [workload.honour(SUBJECT, date(2025, 1, 6) + timedelta(days=30 * i)) for i in range(5)]
    for i, (_, rec) in enumerate(honours):
        rec["document_no"] = f"许政〔2025〕{i + 1}号"
    s = _apply(*honours, _penalty("P1", date(2025, 6, 2), "serious"), _penalty("P2", date(2025, 9, 1), "serious"))
    assert len(s.active_honours()) == 5
    g = grade(s, RULES)
    assert g.reasons[-1] == Reason("honour.red_list", "列入红名单（守信激励）5项，按上限计3项，每项加3分", 9, None)
    assert (g.score, g.grade) == (79, "B")
    _check_invariants(g, RULES)


def test_reasons_are_ordered_by_kind_then_ref_whatever_the_event_order() -> None:
    records = [
        workload.wage_listed(SUBJECT, "W2", date(2025, 2, 3)),
        _penalty("P9", date(2025, 6, 2), "general"),
        workload.debtor_listed(SUBJECT, "C2", date(2025, 1, 6)),
        workload.tax_rated(SUBJECT, 2025, "C", date(2026, 4, 15)),
        _penalty("P1", date(2025, 6, 3), "general"),
        workload.debtor_listed(SUBJECT, "C1", date(2025, 1, 7)),
    ]
    forward, backward = _apply(*records), _apply(*reversed(records))
    assert list(forward.listings) != list(backward.listings)  # the state's dicts differ in order
    g = grade(forward, RULES)
    assert g == grade(backward, RULES)
    assert [(r.code, r.ref) for r in g.reasons] == [
        ("list.dishonest_debtor", "C1"), ("list.dishonest_debtor", "C2"), ("list.wage_arrears", "W2"),
        ("penalty.general", "P1"), ("penalty.general", "P9"), ("tax.level_C", "2025"), ("score.clamped", None)]
    assert g.reasons[-1].points == 30  # 100 - 40 - 40 - 30 - 5 - 5 - 10 = -30, clamped to 0
    _check_invariants(g, RULES)


def test_a_state_that_went_through_json_grades_the_same() -> None:
    starts, _ = workload.life(random.Random(4), SUBJECT, 9)
    s = _apply(*starts)
    assert grade(EntityState.from_json(s.to_json()), RULES) == grade(s, RULES)


def test_revoked_licences_weigh_what_the_file_says(tmp_path: Path) -> None:
    shutil.copy(default_directory() / FILE, tmp_path / FILE)
    _edit(tmp_path, lambda doc: doc.__setitem__("revoked_licence", -3))
    heavier = load_grade(tmp_path)
    s = _apply(workload.licence_granted(SUBJECT, "JY14110000001", date(2023, 3, 1)),
               workload.licence_granted(SUBJECT, "JY14110000002", date(2023, 3, 2)),
               workload.licence_revoked(SUBJECT, "JY14110000001", date(2026, 1, 12)))
    assert grade(s, RULES).reasons == ()
    assert grade(s, heavier).reasons == (Reason("licence.revoked", "行政许可被撤销（许可编号JY14110000001）", -3,
                                                "JY14110000001"),)


def test_a_state_the_rules_cannot_weigh_is_a_value_error() -> None:
    s = _apply(workload.tax_rated(SUBJECT, 2025, "C", date(2026, 4, 15)))
    partial = dataclasses.replace(RULES, tax_levels={"A": 5})
    with pytest.raises(ValueError, match="tax credit level 'C'"):
        grade(s, partial)


# --------------------------------------------------------------------------- property tests

_KINDS = st.sampled_from(["debtor", "debtor_delisted", "tax_listed", "tax_delisted", "wage", "ban", "penalty",
                          "repair", "revoke", "rated", "honour", "licence", "licence_revoked"])
_STEP = st.tuples(_KINDS, st.integers(0, 2), st.integers(0, 1050), st.sampled_from(SEVERITIES),
                  st.sampled_from(TAX_LEVELS), st.integers(12, 36))
_START = date(2024, 1, 2)


def _record(kind: str, n: int, offset: int, severity: str, level: str, months: int) -> tuple[str, dict[str, Any]]:
    on = _START + timedelta(days=offset)
    if kind == "debtor":
        return workload.debtor_listed(SUBJECT, f"（{on.year}）豫10执{n}号", on, ground=1 + n % 6)
    if kind == "debtor_delisted":
        return workload.debtor_delisted(SUBJECT, f"（{on.year - n % 2}）豫10执{n}号", on)
    if kind == "tax_listed":
        return workload.tax_listed(SUBJECT, f"T{n}", on)
    if kind == "tax_delisted":
        return workload.tax_delisted(SUBJECT, f"T{n}", on, paid_on=on - timedelta(days=30))
    if kind == "wage":
        return workload.wage_listed(SUBJECT, f"W{n}", on)
    if kind == "ban":
        return workload.procurement_ban(SUBJECT, f"B{n}", on, months=months)
    if kind == "penalty":
        return _penalty(f"P{n}", on, severity)
    if kind == "repair":
        return workload.repaired(SUBJECT, "administrative_penalty", f"P{n}", on)
    if kind == "revoke":
        return workload.penalty_revoked(SUBJECT, f"P{n}", on)
    if kind == "rated":
        return workload.tax_rated(SUBJECT, on.year - 1, level, on)
    if kind == "honour":
        return workload.honour(SUBJECT, on)
    if kind == "licence":
        return workload.licence_granted(SUBJECT, f"JY1411000000{n}", on)
    return workload.licence_revoked(SUBJECT, f"JY1411000000{n}", on)


def _history(steps: list[tuple[str, int, int, str, str, int]]) -> EntityState:
    """Apply the steps in date order, as life happens; the ones the domain refuses are skipped, as the
    sequencer would refuse them."""
    s = EntityState()
    for step in sorted(steps, key=lambda x: x[2]):
        e = _event(_record(*step))
        try:
            decide(s, e, TODAY, PUBLICATION, CATALOGUE)
        except Rejection:
            continue
        s = evolve(s, e)
    return s


_WEIGHTS = st.fixed_dictionaries({
    "start_score": st.integers(0, 100),
    "black_lists": st.fixed_dictionaries({k: st.integers(-100, 0) for k in sorted(LIST_KINDS)}),
    "penalties": st.fixed_dictionaries({k: st.integers(-100, 0) for k in SEVERITIES}),
    "tax_levels": st.fixed_dictionaries({k: st.integers(-100, 100) for k in TAX_LEVELS}),
    "honour_points": st.integers(0, 100),
    "honour_cap": st.integers(0, 10),
    "revoked_licence": st.integers(-100, 0),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STEP, max_size=25))
def test_reasons_sum_to_score_minus_start_and_score_stays_in_range(steps: list[Any]) -> None:
    s = _history(steps)
    g = grade(s, RULES)
    _check_invariants(g, RULES)
    kinds = [r.code.split(".")[0] for r in g.reasons]
    assert kinds == sorted(kinds, key=["list", "penalty", "licence", "tax", "honour", "score"].index)
    assert len([r for r in g.reasons if r.code.startswith("list.")]) == len(s.active_listings())
    assert grade(EntityState.from_json(s.to_json()), RULES) == g


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STEP, max_size=25), _WEIGHTS)
def test_invariants_hold_for_any_weights_in_the_allowed_ranges(steps: list[Any], weights: dict[str, Any]) -> None:
    r = dataclasses.replace(RULES, **weights)
    _check_invariants(grade(_history(steps), r), r)


# --------------------------------------------------------------------------- invalid files


def _edit(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / FILE
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


@pytest.mark.parametrize(
    ("change", "entry", "reason"),
    [
        (_delete(["black_lists", "wage_arrears"]), "black_lists", "missing key(s) wage_arrears"),
        (_set(["black_lists", "blacklist"], -10), "black_lists", "unknown key(s) blacklist"),
        (_set(["black_lists", "procurement_ban"], 25), "black_lists.procurement_ban", "from -100 to 0"),
        (_set(["black_lists", "procurement_ban"], -2.5), "black_lists.procurement_ban", "whole number"),
        (_set(["penalties", "serious"], True), "penalties.serious", "whole number"),
        (_delete(["penalties", "minor"]), "penalties", "missing key(s) minor"),
        (_set(["tax_credit_levels", "E"], -30), "tax_credit_levels", "unknown key(s) E"),
        (_set(["tax_credit_levels", "A"], 101), "tax_credit_levels.A", "from -100 to 100"),
        (_set(["red_list_honours", "points_each"], -3), "red_list_honours.points_each", "from 0 to 100"),
        (_delete(["red_list_honours", "max_counted"]), "red_list_honours", "missing key(s) max_counted"),
        (_set(["revoked_licence"], 2), "revoked_licence", "from -100 to 0"),
        (_set(["start_score"], 120), "start_score", "from 0 to 100"),
        (_set(["bands", 1, "min_score"], 95), "bands[1].min_score", "must be below 90"),
        (_set(["bands", 2, "grade"], "A"), "bands[2].grade", "listed twice"),
        (_set(["bands", 3, "min_score"], 10), "bands[3].min_score", "must start at 0"),
        (_set(["bands"], []), "bands", "at least one band"),
        (_delete(["bands", 0, "title"]), "bands[0]", "missing key(s) title"),
        (_delete(["notes"]), "file", "missing key(s) notes"),
        (_set(["notes"], " "), "notes", "non-empty string"),
        (_set(["weights"], {}), "file", "unknown key(s) weights"),
        (_set(["legal_sources"], []), "legal_sources", "legal sources"),
        (_set(["name"], "grade"), "name", "does not match"),
        (_set(["version"], 2), "version", "does not match"),
    ],
)
def test_invalid_grade_files_are_refused(tmp_path: Path, change: Callable[[dict[str, Any]], None], entry: str,
                                         reason: str) -> None:
    shutil.copy(default_directory() / FILE, tmp_path / FILE)
    _edit(tmp_path, change)
    with pytest.raises(RulesError) as info:
        load_grade(tmp_path)
    assert info.value.file.endswith(FILE)
    assert info.value.entry == entry
    assert reason in info.value.reason


def test_missing_grade_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="no rules file"):
        load_grade(tmp_path)


def test_the_highest_version_is_loaded(tmp_path: Path) -> None:
    shutil.copy(default_directory() / FILE, tmp_path / FILE)
    doc = json.loads((tmp_path / FILE).read_text(encoding="utf-8"))
    doc["version"], doc["start_score"] = 2, 80
    (tmp_path / "credit_grade.v2.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert (load_grade(tmp_path).version, load_grade(tmp_path).start_score) == (2, 80)
