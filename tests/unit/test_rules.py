"""Rules as data: publication periods (docs/domain-notes.md §4), the department matrix, and the loader's checks."""

from __future__ import annotations

import calendar
import dataclasses
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import Rejection, RulesError
from ledger.domain.rulebook import RuleBook
from ledger.domain.rules import (
    EVENT_TYPES,
    OBJECTION_EVENTS,
    REPAIR_APPLICATION_EVENTS,
    ListingTerms,
    ListingWindow,
    Window,
    add_months,
)
from ledger.rules.loader import default_directory, load, load_departments, load_publication_periods
from tests.helpers import copy_rules


@pytest.fixture(scope="module")
def rules() -> RuleBook:
    return load()


# --------------------------------------------------------------------------- month arithmetic


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2023, 8, 31), 6, date(2024, 2, 29)),  # leap February
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 1, 31), 3, date(2024, 4, 30)),
        (date(2024, 12, 15), 1, date(2025, 1, 15)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 5, 17), 0, date(2024, 5, 17)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
    ],
)
def test_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)),
       st.integers(min_value=-600, max_value=600), st.integers(min_value=-600, max_value=600))
def test_add_months_is_exact_month_arithmetic(start: date, a: int, b: int) -> None:
    moved = add_months(start, a)
    assert (moved.year * 12 + moved.month) - (start.year * 12 + start.month) == a
    assert moved.day == min(start.day, calendar.monthrange(moved.year, moved.month)[1])
    if start.day <= 28:
        assert moved.day == start.day
        assert add_months(moved, b) == add_months(start, a + b)


# --------------------------------------------------------------------------- regimes and windows


@pytest.mark.parametrize(
    ("decision", "regime"),
    [
        (date(2019, 7, 1), "ndrc-527-2019"),
        (date(2023, 4, 30), "ndrc-527-2019"),
        (date(2023, 5, 1), "ndrc-order-58-2023"),
        (date(2026, 3, 31), "ndrc-order-58-2023"),
        (date(2026, 4, 1), "ndrc-order-36-2025"),
        (date(2031, 1, 1), "ndrc-order-36-2025"),
    ],
)
def test_regime_is_chosen_by_decision_date(rules: RuleBook, decision: date, regime: str) -> None:
    assert rules.publication.regime_for(decision).id == regime


def test_no_regime_before_2017(rules: RuleBook) -> None:
    # docs/domain-notes.md §14.2: no publication period before the first regime; the record is not refused.
    assert rules.publication.regime_for(date(2016, 12, 31)) is None
    assert rules.publication.regime_for(date(2019, 6, 30)).id == "pre-527-2017"


@pytest.mark.parametrize(
    ("decision", "severity", "window"),
    [
        # 527号 serious: min 6 months, max 3 years.
        ("2023-04-30", "serious", ("2023-04-30", "2023-10-31", "2026-05-01")),
        # Order 58 serious: min 1 year, max 3 years.
        ("2023-05-01", "serious", ("2023-05-01", "2024-05-02", "2026-05-02")),
        # Order 58 general: 3 months end on 30 April (no 31st), 1 year on 31 January.
        ("2024-01-31", "general", ("2024-01-31", "2024-05-01", "2025-02-01")),
        # Order 58 has no minor class: minor is treated as general.
        ("2024-06-15", "minor", ("2024-06-15", "2024-09-16", "2025-06-16")),
        # Order 36 minor: repair as soon as obligations are met, shown at most 3 months.
        ("2026-04-01", "minor", ("2026-04-01", "2026-04-01", "2026-07-02")),
        ("2026-04-01", "serious", ("2026-04-01", "2027-04-02", "2029-04-02")),
    ],
)
def test_penalty_window(rules: RuleBook, decision: str, severity: str, window: tuple[str, str, str]) -> None:
    expected = Window(*(date.fromisoformat(d) for d in window))
    assert rules.publication.penalty_window(date.fromisoformat(decision), severity) == expected


def test_unknown_severity_is_rejected(rules: RuleBook) -> None:
    with pytest.raises(Rejection) as info:
        rules.publication.penalty_window(date(2024, 1, 1), "grave")
    assert info.value.code == "penalty.severity_unknown"


def test_repair_follows_the_regime_of_the_decision_date(rules: RuleBook) -> None:
    repair = date(2024, 1, 15)
    # Decided under 527号 (min 6 months): repair in January 2024 is allowed.
    assert rules.publication.repair_allowed("serious", date(2023, 4, 28), repair) is None
    # Decided three days later under Order 58 (min 1 year): too early.
    rejection = rules.publication.repair_allowed("serious", date(2023, 5, 1), repair)
    assert rejection is not None
    assert (rejection.field, rejection.code) == ("repair_date", "repair.before_minimum_period")
    assert "2024-05-02" in rejection.message


def test_repair_on_the_first_allowed_day_only(rules: RuleBook) -> None:
    decided = date(2024, 1, 31)  # general under Order 58: earliest repair 2024-05-01
    assert rules.publication.repair_allowed("general", decided, date(2024, 4, 30)) is not None
    assert rules.publication.repair_allowed("general", decided, date(2024, 5, 1)) is None


@pytest.mark.parametrize(
    ("severity", "decided", "repair", "code"),
    [
        ("general", date(2024, 1, 31), date(2025, 2, 1), "repair.publication_ended"),
        ("general", date(2024, 1, 31), date(2024, 1, 30), "repair.before_decision"),
        ("grave", date(2024, 1, 31), date(2024, 6, 1), "repair.subject_unknown"),
        ("general", date(2016, 1, 31), date(2016, 6, 1), "repair.publication_ended"),
    ],
)
def test_repair_refusals(rules: RuleBook, severity: str, decided: date, repair: date, code: str) -> None:
    rejection = rules.publication.repair_allowed(severity, decided, repair)
    assert rejection is not None and rejection.code == code


def test_minor_penalty_under_order_36_can_be_repaired_at_once(rules: RuleBook) -> None:
    assert rules.publication.repair_allowed("minor", date(2026, 5, 6), date(2026, 5, 6)) is None


# --------------------------------------------------------------------------- lists


def test_dishonest_debtor_periods(rules: RuleBook) -> None:
    pub = rules.publication
    listed = date(2024, 2, 29)
    # Ground 1 (ability but refusal): no fixed period; deleted on performance.
    assert pub.listing_window("dishonest_debtor", listed, ListingTerms(ground=1)) == ListingWindow(
        listed, listed, None)
    # Grounds 2-6: two years.
    assert pub.listing_window("dishonest_debtor", listed, ListingTerms(ground=3)).automatic_end == date(2026, 3, 1)
    # Extended by one year for serious obstruction.
    extended = pub.listing_window("dishonest_debtor", listed, ListingTerms(ground=2, extension_months=12))
    assert extended.automatic_end == date(2027, 3, 1)


@pytest.mark.parametrize(
    ("terms", "code"),
    [
        (ListingTerms(), "list.ground_unknown"),
        (ListingTerms(ground=7), "list.ground_unknown"),
        (ListingTerms(ground=1, extension_months=12), "list.extension_out_of_range"),
        (ListingTerms(ground=2, extension_months=6), "list.extension_out_of_range"),
        (ListingTerms(ground=2, extension_months=48), "list.extension_out_of_range"),
    ],
)
def test_dishonest_debtor_bad_terms(rules: RuleBook, terms: ListingTerms, code: str) -> None:
    with pytest.raises(Rejection) as info:
        rules.publication.listing_window("dishonest_debtor", date(2024, 1, 1), terms)
    assert info.value.code == code


def test_fixed_and_decided_list_periods(rules: RuleBook) -> None:
    pub = rules.publication
    assert pub.listing_window("major_tax_violation", date(2022, 3, 15)) == ListingWindow(
        date(2022, 3, 15), date(2022, 9, 16), date(2025, 3, 16))
    assert pub.listing_window("wage_arrears", date(2023, 1, 10)) == ListingWindow(
        date(2023, 1, 10), date(2023, 1, 10), date(2026, 1, 11))
    assert pub.listing_window("procurement_ban", date(2024, 7, 31), ListingTerms(period_months=18)) == (
        ListingWindow(date(2024, 7, 31), None, date(2026, 2, 1)))
    assert pub.listing_window("serious_dishonesty", date(2022, 1, 10)) == ListingWindow(
        date(2022, 1, 10), date(2023, 1, 11), date(2025, 1, 11))


@pytest.mark.parametrize("months", [None, 6, 48])
def test_procurement_ban_period_must_be_one_to_three_years(rules: RuleBook, months: int | None) -> None:
    with pytest.raises(Rejection) as info:
        rules.publication.listing_window("procurement_ban", date(2024, 1, 1), ListingTerms(period_months=months))
    assert (info.value.field, info.value.code) == ("period_months", "list.period_out_of_range")


def test_unknown_list_kind(rules: RuleBook) -> None:
    with pytest.raises(Rejection) as info:
        rules.publication.listing_window("red_list", date(2024, 1, 1))
    assert info.value.code == "list.kind_unknown"


def test_tax_list_early_stop_after_six_months_and_payment(rules: RuleBook) -> None:
    pub = rules.publication
    listed, paid = date(2024, 3, 15), date(2024, 4, 1)
    too_early = pub.repair_allowed("major_tax_violation", listed, date(2024, 9, 15), corrected_on=paid)
    assert too_early is not None and too_early.code == "repair.before_minimum_period"
    assert pub.repair_allowed("major_tax_violation", listed, date(2024, 9, 16), corrected_on=paid) is None
    unpaid = pub.repair_allowed("major_tax_violation", listed, date(2024, 9, 16))
    assert unpaid is not None and unpaid.code == "repair.correction_required"


def test_wage_arrears_early_removal_six_months_after_correction(rules: RuleBook) -> None:
    pub = rules.publication
    listed, corrected = date(2023, 1, 10), date(2024, 2, 29)
    soon = pub.repair_allowed("wage_arrears", listed, date(2024, 8, 29), corrected_on=corrected)
    assert soon is not None and soon.code == "repair.too_soon_after_correction"
    assert "2024-08-30" in soon.message
    assert pub.repair_allowed("wage_arrears", listed, date(2024, 8, 30), corrected_on=corrected) is None
    later = pub.repair_allowed("wage_arrears", listed, date(2024, 8, 30), corrected_on=date(2024, 9, 1))
    assert later is not None and later.code == "repair.correction_required"


def test_court_list_deleted_on_performance(rules: RuleBook) -> None:
    pub = rules.publication
    terms = ListingTerms(ground=2)
    assert pub.repair_allowed("dishonest_debtor", date(2024, 1, 1), date(2024, 3, 5),
                              corrected_on=date(2024, 3, 1), terms=terms) is None
    expired = pub.repair_allowed("dishonest_debtor", date(2024, 1, 1), date(2026, 1, 2),
                                 corrected_on=date(2024, 3, 1), terms=terms)
    assert expired is not None and expired.code == "repair.publication_ended"
    missing = pub.repair_allowed("dishonest_debtor", date(2024, 1, 1), date(2024, 3, 5),
                                 corrected_on=date(2024, 3, 1))
    assert missing is not None and missing.code == "list.ground_unknown"


def test_procurement_ban_cannot_end_early(rules: RuleBook) -> None:
    rejection = rules.publication.repair_allowed("procurement_ban", date(2024, 1, 1), date(2025, 1, 1),
                                                 corrected_on=date(2024, 2, 1),
                                                 terms=ListingTerms(period_months=24))
    assert rejection is not None and rejection.code == "repair.not_allowed"


# --------------------------------------------------------------------------- departments

LICENCES_AND_PENALTIES = {
    "AdministrativeLicenceGranted", "AdministrativeLicenceChanged", "AdministrativeLicenceRevoked",
    "AdministrativePenaltyImposed", "AdministrativePenaltyRevoked",
}
EXPECTED_MATRIX = {
    "xc-court": {"DishonestDebtorListed", "DishonestDebtorDelisted"},
    "xc-tax": LICENCES_AND_PENALTIES | {"MajorTaxViolationListed", "MajorTaxViolationDelisted", "TaxCreditRated"},
    "xc-samr": LICENCES_AND_PENALTIES | {"EntityRegistered"},
    "xc-hrss": LICENCES_AND_PENALTIES | {"WageArrearsListed", "WageArrearsDelisted"},
    "xc-finance": LICENCES_AND_PENALTIES | {"ProcurementBanImposed"},
    "xc-eco-env": LICENCES_AND_PENALTIES,
    "xc-credit-office": {"CreditRepaired", "HonourAwarded", "HonourRevoked", "CreditCommitmentMade"},
    "ledger-scheduler": {"ListingExpired", "HonourExpired"},
    "sector-procurement": {"PunishmentFeedbackReported"},
    "sector-bidding": {"PunishmentFeedbackReported"},
    "sector-transport": {"PunishmentFeedbackReported"},
    "sector-exit-entry": {"PunishmentFeedbackReported"},
    "sector-banking": {"PunishmentFeedbackReported"},
    # departments.v2 (issue item 9): the basic courts and every municipal source department
    **{court: {"DishonestDebtorListed", "DishonestDebtorDelisted"} for court in (
        "xc-court-weidu", "xc-court-jianan", "xc-court-yuzhou", "xc-court-changge", "xc-court-yanling",
        "xc-court-xiangcheng")},
    **dict.fromkeys(("xc-housing", "xc-transport", "xc-education", "xc-health", "xc-civil-affairs",
                     "xc-public-security", "xc-emergency", "xc-agriculture", "xc-culture-tourism",
                     "xc-natural-resources", "xc-water", "xc-commerce", "xc-urban-management", "xc-forestry",
                     "xc-justice"), LICENCES_AND_PENALTIES),
    **dict.fromkeys(("xc-medical-insurance", "xc-statistics", "xc-pbc"),
                    {"AdministrativePenaltyImposed", "AdministrativePenaltyRevoked"}),
}
# departments.v5 (issue 20): the credit office approves the 红黑榜 releases; the keepers of a key-person
# register (ledger/rules/key_persons.v1.json) report its members, six of them new to the matrix
EXPECTED_MATRIX["xc-credit-office"] |= {"ListReleaseApproved"}
for _register in ("xc-justice", "xc-finance", "xc-statistics", "xc-tax", "xc-health", "xc-education", "xc-housing",
                  "xc-culture-tourism", "xc-agriculture"):
    EXPECTED_MATRIX[_register] = EXPECTED_MATRIX[_register] | {"EntityRegistered"}
EXPECTED_MATRIX.update(dict.fromkeys(("xc-organisation", "xc-audit", "xc-science", "xc-nfra", "xc-csrc",
                                      "xc-publicity"), {"EntityRegistered"}))
# departments.v4 (issue 19): every emitter files objections and repair applications received at its window
# and answers objections forwarded to it; the credit office runs them; the public file through their intake
for _dept, _types in EXPECTED_MATRIX.items():
    if _dept.startswith("xc-"):
        _types |= {"ObjectionFiled", "ObjectionAnswered", "RepairApplied"}
EXPECTED_MATRIX["xc-credit-office"] |= OBJECTION_EVENTS | REPAIR_APPLICATION_EVENTS
EXPECTED_MATRIX["public"] = {"ObjectionFiled", "RepairApplied"}

# The source departments the city programme names (issue item 9), each by the name it has in Xuchang.
SEED_SOURCES = ["人民法院", "税务局", "市场监督管理局", "人力资源和社会保障局", "财政局", "生态环境局",
                "住房和城乡建设局", "交通运输局", "教育局", "卫生健康委员会", "民政局", "公安局", "应急管理局",
                "农业农村局", "文化广电和旅游局", "自然资源和规划局", "医疗保障局", "水利局", "商务局", "城市管理局",
                "林业局", "统计局", "中国人民银行", "社会信用体系建设领导小组办公室"]


def test_every_source_department_of_the_seed_is_an_emitter(rules: RuleBook) -> None:
    emitters = [d for d in rules.departments.departments.values() if d.kind == "emitter"]
    for source in SEED_SOURCES:
        assert any(source in d.name and d.may_emit and d.legal_source for d in emitters), source
    assert len(emitters) >= 25


def test_the_gateway_may_attest_for_every_emitter_and_for_no_system_or_sector(rules: RuleBook) -> None:
    matrix = rules.departments
    assert set(matrix.intakes) == {"ledger-gateway", "ledger-public-intake"}
    for dept in matrix.departments.values():
        if dept.kind == "emitter":
            matrix.authorize_intake("ledger-gateway", dept.id)
        else:
            with pytest.raises(Rejection) as info:
                matrix.authorize_intake("ledger-gateway", dept.id)
            assert (info.value.field, info.value.code) == ("signer", "intake.not_allowed")
            assert "ledger-gateway" in info.value.message and dept.id in info.value.message
            assert "不得经" in info.value.message
    for intake, department, field, code in (("xc-tax", "xc-samr", "signer", "intake.unknown"),
                                            ("xc-samr", "xc-samr", "signer", "intake.unknown"),
                                            ("ledger-gateway", "xc-nowhere", "source_department", "department.unknown")):
        with pytest.raises(Rejection) as info:
            matrix.authorize_intake(intake, department)
        assert (info.value.field, info.value.code) == (field, code)


def test_the_public_speak_only_through_their_intake_and_only_of_objections_and_repair(rules: RuleBook) -> None:
    matrix = rules.departments
    matrix.authorize_intake("ledger-public-intake", "public")
    assert matrix.departments["public"].may_emit == {"ObjectionFiled", "RepairApplied"}
    for dept in matrix.departments.values():
        if dept.id != "public":
            matrix.authorize_own_signature(dept.id)  # every other department may sign itself
            with pytest.raises(Rejection) as info:
                matrix.authorize_intake("ledger-public-intake", dept.id)
            assert info.value.code == "intake.not_allowed"
    with pytest.raises(Rejection) as info:  # a signature of "the public" itself is no one's
        matrix.authorize_own_signature("public")
    assert (info.value.field, info.value.code) == ("signer", "signer.intake_required")
    with pytest.raises(Rejection) as info:
        matrix.authorize("public", "ObjectionAnswered")
    assert info.value.code == "department.not_authorized"


def test_departments_v4_keeps_v3_and_adds_objections_repairs_and_the_public() -> None:
    v3 = json.loads((default_directory() / "departments.v3.json").read_text())
    v4 = json.loads((default_directory() / "departments.v4.json").read_text())
    added = OBJECTION_EVENTS | REPAIR_APPLICATION_EVENTS
    kept = [{**d, "may_emit": [t for t in d["may_emit"] if t not in added]} for d in v4["departments"]
            if d["id"] != "public"]
    assert [{k: v for k, v in d.items() if k != "legal_source"} for d in kept] == \
        [{k: v for k, v in d.items() if k != "legal_source"} for d in v3["departments"]]
    assert v4["intakes"][:1] == v3["intakes"] and v4["legal_sources"][:len(v3["legal_sources"])] == v3["legal_sources"]


def test_departments_v3_keeps_v2_and_adds_the_intakes_only() -> None:
    v2 = json.loads((default_directory() / "departments.v2.json").read_text())
    v3 = json.loads((default_directory() / "departments.v3.json").read_text())
    assert [{k: v for k, v in d.items() if k != "intakes"} for d in v3["departments"]] == v2["departments"]
    assert v3["legal_sources"][:len(v2["legal_sources"])] == v2["legal_sources"]
    assert load(default_directory()).at("departments", 2).intakes == {}


def test_departments_v5_keeps_v4_and_only_adds() -> None:
    v4 = json.loads((default_directory() / "departments.v4.json").read_text())
    v5 = json.loads((default_directory() / "departments.v5.json").read_text())
    kept = {d["id"]: d for d in v5["departments"]}
    for old in v4["departments"]:
        assert {**kept[old["id"]], "may_emit": None} == {**old, "may_emit": None}, old["id"]
        assert set(old["may_emit"]) <= set(kept[old["id"]]["may_emit"]), old["id"]
    assert v5["legal_sources"][:len(v4["legal_sources"])] == v4["legal_sources"]
    assert v5["intakes"] == v4["intakes"]


def test_departments_v2_keeps_every_v1_department() -> None:
    v1 = json.loads((default_directory() / "departments.v1.json").read_text())
    v2 = json.loads((default_directory() / "departments.v2.json").read_text())
    kept = {d["id"]: d for d in v2["departments"]}
    for old in v1["departments"]:
        new = kept[old["id"]]
        # the same department, with the same powers and perhaps new event types (HonourRevoked, HonourExpired)
        assert {**new, "may_emit": None, "legal_source": None} == {**old, "may_emit": None, "legal_source": None}
        assert set(old["may_emit"]) <= set(new["may_emit"]), old["id"]
    assert v2["legal_sources"][:len(v1["legal_sources"])] == v1["legal_sources"]


def test_matrix_is_exactly_as_specified(rules: RuleBook) -> None:
    matrix = {dep.id: set(dep.may_emit) for dep in rules.departments.departments.values()}
    assert matrix == EXPECTED_MATRIX
    assert len(EVENT_TYPES) == 29
    assert set().union(*EXPECTED_MATRIX.values()) == EVENT_TYPES


@pytest.mark.parametrize(("department", "event_type"),
                         [(d, e) for d, types in EXPECTED_MATRIX.items() for e in sorted(types)])
def test_authorized_pairs_pass(rules: RuleBook, department: str, event_type: str) -> None:
    rules.departments.authorize(department, event_type)  # raises Rejection if refused


def test_unauthorized_department_is_rejected(rules: RuleBook) -> None:
    with pytest.raises(Rejection) as info:
        rules.departments.authorize("xc-finance", "DishonestDebtorListed")
    assert (info.value.field, info.value.code) == ("source_department", "department.not_authorized")
    assert "许昌市财政局" in info.value.message


@pytest.mark.parametrize(
    ("department", "event_type", "field", "code"),
    [
        ("ledger-scheduler", "CreditRepaired", "source_department", "department.not_authorized"),
        ("sector-procurement", "ProcurementBanImposed", "source_department", "department.not_authorized"),
        ("xc-court", "AdministrativePenaltyImposed", "source_department", "department.not_authorized"),
        ("xc-eco-env", "EntityRegistered", "source_department", "department.not_authorized"),
        ("xc-police", "AdministrativePenaltyImposed", "source_department", "department.unknown"),
        ("xc-court", "DebtorListed", "event_type", "event_type.unknown"),
    ],
)
def test_authorize_refusals(rules: RuleBook, department: str, event_type: str, field: str, code: str) -> None:
    with pytest.raises(Rejection) as info:
        rules.departments.authorize(department, event_type)
    assert (info.value.field, info.value.code) == (field, code)


# --------------------------------------------------------------------------- loading and validation


def test_loaded_objects_are_frozen(rules: RuleBook) -> None:
    assert rules.publication.version == 2 and rules.departments.version >= 2
    assert rules.publication.legal_sources and rules.departments.legal_sources
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.publication.regimes[0].in_force_from = date(2000, 1, 1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        rules.departments.departments["xc-court"] = None  # type: ignore[index]


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return copy_rules(tmp_path, "publication_periods", "departments")


def edit(directory: Path, file: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / file
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


PERIODS = "publication_periods.v1.json"
DEPARTMENTS = "departments.v5.json"
# the tax bureau's place in that file: the only department that may emit TaxCreditRated
TAX = [d["id"] for d in json.loads((default_directory() / DEPARTMENTS).read_text(encoding="utf-8"))["departments"]].index("xc-tax")


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
    ("file", "change", "entry", "reason"),
    [
        (PERIODS, _set(["penalty_regimes", 1, "severities", "serious", "min_months"], 48),
         "penalty_regimes[1].severities.serious", "must be <="),
        (PERIODS, _set(["penalty_regimes", 0, "in_force_from"], "2019-02-30"),
         "penalty_regimes[0].in_force_from", "not a calendar date"),
        (PERIODS, _set(["penalty_regimes", 0, "in_force_from"], "2019/07/01"),
         "penalty_regimes[0].in_force_from", "YYYY-MM-DD"),
        (PERIODS, _set(["penalty_regimes", 1, "in_force_from"], "2023-04-01"),
         "penalty_regimes[1]", "non-overlapping"),
        (PERIODS, _set(["penalty_regimes", 2, "in_force_until"], "2030-12-31"),
         "penalty_regimes[2]", "open-ended"),
        (PERIODS, lambda doc: doc["penalty_regimes"].reverse(), "penalty_regimes[1]", "ordered"),
        (PERIODS, _set(["penalty_regimes", 0, "severities", "minor", "treat_as"], "grave"),
         "penalty_regimes[0].severities.minor.treat_as", "'grave'"),
        (PERIODS, _set(["penalty_regimes", 0, "severities", "general", "min_month"], 3),
         "penalty_regimes[0].severities.general", "unknown key(s) min_month"),
        (PERIODS, _set(["penalty_regimes", 0, "severities", "general", "max_months"], "12"),
         "penalty_regimes[0].severities.general.max_months", "whole number"),
        (PERIODS, _set(["list_kinds", "blacklist"], {}), "list_kinds", "unknown list kind(s) blacklist"),
        (PERIODS, _delete(["list_kinds", "wage_arrears"]), "list_kinds", "missing list kind(s) wage_arrears"),
        (PERIODS, _set(["list_kinds", "procurement_ban", "period", "min_months"], 40),
         "list_kinds.procurement_ban.period", "must be <="),
        (PERIODS, _set(["list_kinds", "wage_arrears", "period", "rule"], "forever"),
         "list_kinds.wage_arrears.period.rule", "'forever'"),
        (PERIODS, _set(["legal_sources"], []), "legal_sources", "legal sources"),
        (PERIODS, _delete(["legal_sources"]), "file", "legal_sources"),
        (PERIODS, _set(["name"], "periods"), "name", "does not match"),
        (PERIODS, _set(["version"], 2), "version", "does not match"),
        (DEPARTMENTS, _set(["departments", 0, "may_emit", 0], "DebtorListed"),
         "departments[0].may_emit[0]", "unknown event type 'DebtorListed'"),
        (DEPARTMENTS, _set(["departments", 1, "id"], "xc-court"), "departments[1].id", "duplicate"),
        (DEPARTMENTS, _set(["departments", 0, "id"], "XC Court"), "departments[0].id", "lower-case"),
        (DEPARTMENTS, _set(["departments", 0, "kind"], "court"), "departments[0].kind", "'court'"),
        (DEPARTMENTS, _delete(["departments", 0, "legal_source"]), "departments[0]", "legal_source"),
        (DEPARTMENTS, _set(["departments", TAX, "may_emit"], ["AdministrativeLicenceGranted"]),
         "departments", "TaxCreditRated"),
        (DEPARTMENTS, _set(["departments", 0, "intakes"], ["ledger-gatway"]),
         "departments[0].intakes[0]", "unknown intake 'ledger-gatway'"),
        (DEPARTMENTS, _set(["departments", 0, "id"], "ledger-gateway"), "departments[0].id", "is an intake"),
        (DEPARTMENTS, _delete(["intakes", 0, "legal_source"]), "intakes[0]", "legal_source"),
        (DEPARTMENTS, _set(["intakes", 0, "id"], "Gateway"), "intakes[0].id", "lower-case"),
    ],
)
def test_invalid_rules_files_are_refused(rules_dir: Path, file: str, change: Callable[[dict[str, Any]], None],
                                         entry: str, reason: str) -> None:
    edit(rules_dir, file, change)
    with pytest.raises(RulesError) as info:
        load(rules_dir)
    assert info.value.file.endswith(file)
    assert info.value.entry == entry
    assert reason in info.value.reason
    assert file in str(info.value)


def test_invalid_json_is_refused(rules_dir: Path) -> None:
    (rules_dir / DEPARTMENTS).write_text("{not json", encoding="utf-8")
    with pytest.raises(RulesError, match="cannot be read as JSON"):
        load_departments(rules_dir)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="no rules file"):
        load_publication_periods(tmp_path)


def test_highest_version_is_loaded(rules_dir: Path) -> None:
    doc = json.loads((rules_dir / DEPARTMENTS).read_text(encoding="utf-8"))
    doc["version"] = 6
    doc["departments"][0]["may_emit"] = ["DishonestDebtorListed"]
    doc["departments"].append({"id": "xc-court-2", "name": "鄢陵县人民法院", "kind": "emitter",
                               "legal_source": "法释〔2017〕7号", "may_emit": ["DishonestDebtorDelisted"]})
    (rules_dir / "departments.v6.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    matrix = load_departments(rules_dir)
    assert matrix.version == 6
    assert matrix.departments["xc-court"].may_emit == frozenset({"DishonestDebtorListed"})
