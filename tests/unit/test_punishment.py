"""The joint-punishment catalogue: what the file says (docs/domain-notes.md §5.2) and what the loader refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.errors import RulesError
from ledger.domain.punishment import Catalogue
from ledger.domain.rules import LIST_KINDS
from ledger.rules.loader import load_catalogue, load_departments
from tests.helpers import copy_rules

CATALOGUE = "punishment_catalogue.v2.json"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_every_list_kind_brings_a_measure_and_every_department_exists(catalogue: Catalogue) -> None:
    departments = load_departments().departments
    for kind in LIST_KINDS:
        assert catalogue.for_list(kind, "enterprise") or catalogue.for_list(kind, "individual"), kind
    for measure in catalogue.measures.values():
        assert set(measure.departments) <= set(departments)
        assert measure.legal_basis and measure.name


def test_court_listing_measures_follow_domain_table(catalogue: Catalogue) -> None:
    person = {m.id for m in catalogue.for_list("dishonest_debtor", "individual")}
    company = {m.id for m in catalogue.for_list("dishonest_debtor", "enterprise")}
    assert {"restrict-high-consumption", "restrict-exit", "bar-company-officer", "restrict-financing",
            "bar-government-procurement"} <= person
    # 公司法 art. 178 bars a *person* from office; it is not a measure against a company
    assert "bar-company-officer" not in company
    assert person - company == {"bar-company-officer"}


def test_may_entity_do_action(catalogue: Catalogue) -> None:
    assert [m.id for m in catalogue.applicable(["dishonest_debtor"], "individual", "buy-plane-ticket")] == \
        ["restrict-high-consumption"]
    assert catalogue.applicable([], "individual", "buy-plane-ticket") == ()
    # 保障农民工工资支付条例 art. 48 (catalogue v2): transport and travel, procurement, financing, market access
    assert [m.id for m in catalogue.applicable(["wage_arrears"], "enterprise", "buy-plane-ticket")] == \
        ["restrict-transport-travel"]
    assert [m.id for m in catalogue.applicable(["wage_arrears"], "individual", "bid-government-procurement")] == \
        ["bar-government-procurement"]
    for action, measure in (("obtain-bank-credit", "restrict-financing"), ("market-access", "restrict-market-access"),
                            ("receive-subsidy", "restrict-government-funds"), ("receive-honour", "bar-honours")):
        assert [m.id for m in catalogue.applicable(["wage_arrears"], "enterprise", action)] == [measure], action
    bid = catalogue.applicable(["wage_arrears", "red"], "enterprise", "bid-public-tender")
    assert {(m.id, m.kind) for m in bid} == {("cancel-bidding-eligibility", "punishment"),
                                               ("procurement-preference", "incentive")}


def test_incentives_only_for_the_red_list(catalogue: Catalogue) -> None:
    incentives = [m for m in catalogue.measures.values() if m.kind == "incentive"]
    assert incentives and all(m.list_kinds == {"red"} for m in incentives)
    assert {m.id for m in catalogue.for_list("red", "enterprise")} == {m.id for m in incentives}


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return copy_rules(tmp_path, "departments", "punishment_catalogue")


def _edit(directory: Path, change: Any) -> None:
    path = directory / CATALOGUE
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "entry", "reason"),
    [
        (lambda d: d["measures"][0].update(list_kinds=["blacklist"]), "measures[0].list_kinds[0]",
         "unknown list kind 'blacklist'"),
        (lambda d: d["measures"][0].update(departments=["xc-police"]), "measures[0].departments[0]",
         "unknown department 'xc-police'"),
        (lambda d: d["measures"][0].update(departments=[]), "measures[0].departments", "at least one department"),
        (lambda d: d["measures"][0].update(categories=["company"]), "measures[0].categories[0]",
         "unknown credit database 'company'"),
        (lambda d: d["measures"][1].update(id=d["measures"][0]["id"]), "measures[1].id", "duplicate"),
        (lambda d: d["measures"][0].update(actions=["Buy Ticket"]), "measures[0].actions[0]", "lower-case"),
        (lambda d: d["measures"][0].update(actions=[]), "measures[0].actions", "at least one action"),
        (lambda d: d["measures"][0].update(confidence="X"), "measures[0].confidence", "'X'"),
        (lambda d: d["incentives"][0].update(list_kinds=["dishonest_debtor"]), "incentives[0].list_kinds[0]",
         "unknown list kind"),
        (lambda d: d["measures"][0].pop("legal_basis"), "measures[0]", "legal_basis"),
        (lambda d: d.update(measures=[{**m, "list_kinds": [k for k in m["list_kinds"] if k != "wage_arrears"]}
                                      for m in d["measures"] if m["list_kinds"] != ["wage_arrears"]]),
         "measures", "no measure for list kind(s) wage_arrears"),
    ],
)
def test_invalid_catalogue_is_refused(rules_dir: Path, change: Any, entry: str, reason: str) -> None:
    _edit(rules_dir, change)
    with pytest.raises(RulesError) as info:
        load_catalogue(rules_dir)
    assert info.value.file.endswith(CATALOGUE)
    assert info.value.entry == entry
    assert reason in info.value.reason
