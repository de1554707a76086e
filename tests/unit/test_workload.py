"""The demo and test workload (ops/workload.py): properties the tests built on it rely on."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from ops import workload


def test_subjects_are_distinct_even_when_an_identifier_is_drawn_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: Iterator[str] = iter(["110101199003071234", "110101199003071234", "110101199003075678",
                                 "110101199003071234", "110101199003079999"])
    monkeypatch.setattr(workload, "make_ric", lambda rng: next(drawn))
    people = workload.subjects(random.Random(1), 3, persons_share=1.0)
    assert [s.id for s in people] == ["110101199003071234", "110101199003075678", "110101199003079999"]


@pytest.mark.parametrize("seed", range(5))
def test_many_subjects_of_both_kinds_have_distinct_identifiers(seed: int) -> None:
    subjects = workload.subjects(random.Random(seed), 3000, persons_share=0.5)
    assert len({s.id for s in subjects}) == 3000
    assert {s.id_type for s in subjects} == {"RIC", "USCC"}


def test_every_penalty_department_is_a_source_department_of_the_matrix() -> None:
    # Issue item 9: the demo submits penalties from the source departments of departments.v2, each
    # under its own name and a valid authority code, and each allowed by the matrix.
    from ledger.domain.identity import check_uscc
    from ledger.rules import loader

    matrix = loader.load_departments()
    assert len(workload.ALL_PENALTY_DEPARTMENTS) >= 20
    for department, (name, code) in workload.ALL_PENALTY_DEPARTMENTS.items():
        assert matrix.departments[department].name == name
        matrix.authorize(department, "AdministrativePenaltyImposed")
        assert check_uscc(code).category == "government" and not check_uscc(code).warnings
        record = workload.penalty(random.Random(3), workload.subjects(random.Random(3), 1)[0], department, seq=7)
        assert record["authority"] == name and record["decision_no"].startswith(("许", ))
    assert len({code for _, code in workload.ALL_PENALTY_DEPARTMENTS.values()}) == len(workload.ALL_PENALTY_DEPARTMENTS)
