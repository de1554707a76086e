"""Key natural persons, pure (ledger/domain/key_persons.py): a register reports its group's members
(EntityRegistered v2), another register may add its group to a person already registered, and every
refusal names key_person_categories; the rules file names a register department for every group; the
fold writes a person's groups into entities."""

from __future__ import annotations

import copy
import json
import random
from datetime import date
from typing import Any

import pytest

from ledger.domain.decide import decide
from ledger.domain.errors import Rejection, RulesError
from ledger.domain.key_persons import parse_key_persons
from ledger.domain.model import EntityState, evolve
from ledger.records.events import event_of
from ledger.rules import loader
from ops import workload

BOOK = loader.load()
TODAY = date(2026, 11, 27)
PERSON = workload.subjects(random.Random(8), 1, persons_share=1.0)[0]


def _decide(state: EntityState, dept_rec: tuple[str, dict[str, Any]], entity_id: str = "ric:p") -> list[str]:
    dept, rec = dept_rec
    return decide(state, event_of(rec, entity_id=entity_id, department=dept), TODAY, BOOK.publication,
                  BOOK.catalogue, key_persons=BOOK.key_persons, releases=BOOK.releases)


def _apply(state: EntityState, dept_rec: tuple[str, dict[str, Any]]) -> EntityState:
    assert _decide(state, dept_rec) == []
    return evolve(state, event_of(dept_rec[1], entity_id="ric:p", department=dept_rec[0]))


def _refused(state: EntityState, dept_rec: tuple[str, dict[str, Any]], entity_id: str = "ric:p") -> tuple[str, str]:
    with pytest.raises(Rejection) as info:
        _decide(state, dept_rec, entity_id)
    assert info.value.message
    return info.value.field, info.value.code


def _with(dept_rec: tuple[str, dict[str, Any]], department: str | None = None, **fields: Any) -> tuple[str, dict[str, Any]]:
    dept, rec = copy.deepcopy(dept_rec)
    rec.update(fields)
    return department or dept, rec


def test_a_register_reports_its_group_and_another_register_adds_its_own() -> None:
    lawyer = _apply(EntityState(), workload.key_person_registered(PERSON, "lawyer", date(2024, 3, 1)))
    assert lawyer.registered_on == "2024-03-01" and set(lawyer.key_persons) == {"lawyer"}
    assert lawyer.key_persons["lawyer"]["department"] == "xc-justice"
    both = _apply(lawyer, workload.key_person_registered(PERSON, "enterprise_executive", date(2025, 6, 1)))
    assert set(both.key_persons) == {"lawyer", "enterprise_executive"}
    assert both.registered_on == "2024-03-01" and both.counts == {"EntityRegistered": 2}
    assert EntityState.from_json(both.to_json()) == both


def test_what_a_register_may_not_say() -> None:
    reg = workload.key_person_registered(PERSON, "lawyer", date(2024, 3, 1))
    lawyer = _apply(EntityState(), reg)
    assert _refused(lawyer, reg) == ("key_person_categories", "key_person.already_registered")
    assert _refused(EntityState(), _with(reg, "xc-samr")) == ("key_person_categories", "key_person.not_register")
    assert _refused(EntityState(), _with(reg, key_person_categories=["astronaut"])) == \
        ("key_person_categories", "key_person.unknown_category")
    assert _refused(EntityState(), _with(reg, key_person_categories=["lawyer", "lawyer"])) == \
        ("key_person_categories", "key_person.repeated")
    assert _refused(EntityState(), _with(reg, entity_kind="enterprise")) == \
        ("key_person_categories", "key_person.not_a_person")
    assert _refused(EntityState(), reg, entity_id="uscc:91411002MA00000001") == \
        ("key_person_categories", "key_person.not_a_person")
    # a registration that adds no group is a second registration, refused as before
    assert _refused(lawyer, _with(reg, key_person_categories=[])) == ("registered_on", "entity.already_registered")


def test_a_registration_without_groups_needs_no_key_person_rules() -> None:
    dept, rec = workload.registered(workload.subjects(random.Random(2), 1, persons_share=0.0)[0], date(2020, 1, 2))
    assert decide(EntityState(), event_of(rec, entity_id="uscc:x", department=dept), TODAY, BOOK.publication) == []
    dept, rec = workload.key_person_registered(PERSON, "teacher", date(2024, 9, 1))
    with pytest.raises(TypeError, match="key-person rules"):
        decide(EntityState(), event_of(rec, entity_id="ric:p", department=dept), TODAY, BOOK.publication)


def test_every_group_of_98号_has_a_register_that_may_report_it() -> None:
    groups = BOOK.key_persons.categories
    assert len(groups) == 19 and BOOK.key_persons.target == 0.8
    for group in groups.values():
        for department in group.registers:
            assert "EntityRegistered" in BOOK.departments.departments[department].may_emit, (group.id, department)


@pytest.mark.parametrize(("change", "entry", "reason"), [
    (lambda d: d["categories"][0].update(registers=["xc-nowhere"]), "categories[0].registers[0]", "unknown department"),
    (lambda d: d["categories"][0].update(registers=["xc-court"]), "categories[0].registers[0]", "may not emit"),
    (lambda d: d["categories"][0].update(registers=[]), "categories[0].registers", "at least one"),
    (lambda d: d["categories"][1].update(id="civil_servant"), "categories[1].id", "unique"),
    (lambda d: d["target"].update(share=1.5), "target.share", "(0, 1]"),
])
def test_a_bad_key_persons_file_is_refused(change: Any, entry: str, reason: str) -> None:
    doc = json.loads((loader.default_directory() / "key_persons.v1.json").read_text(encoding="utf-8"))
    change(doc)
    with pytest.raises(RulesError) as info:
        parse_key_persons(doc, "key_persons.v1.json", BOOK.departments)
    assert info.value.entry == entry and reason in info.value.reason
