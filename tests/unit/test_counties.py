"""The county of an entity from its code (ledger/domain/divisions.py, ledger/rules/divisions.v1.json):
today's codes, the historical codes of today's counties, the city level, 市外; the file's checks; and the
fold writes the county into every row that has one."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from stdnum.cn import ric as stdnum_ric

from ledger.domain.divisions import county_of, division_code, parse_divisions
from ledger.domain.errors import RulesError
from ledger.rules import loader
from ops import workload

BOOK = loader.load()
DIVISIONS = BOOK.divisions


def _ric(address: str, birth: str = "19900101") -> str:
    first17 = address + birth + "123"
    return first17 + stdnum_ric.calc_check_digit(first17 + "0")


@pytest.mark.parametrize(("code", "county"), [
    ("411002", "411002"), ("411003", "411003"), ("411024", "411024"), ("411025", "411025"), ("411081", "411081"),
    ("411082", "411082"), ("411071", "411071"),
    # historical codes belong to today's county
    ("411023", "411003"), ("412624", "411003"), ("411021", "411081"), ("419004", "411081"), ("412622", "411081"),
    ("411022", "411082"), ("412621", "411082"), ("410426", "411025"), ("412627", "411025"), ("412623", "411024"),
    ("412601", "411002"),
    # only the city: the city level
    ("411000", "411000"), ("411001", "411000"), ("412600", "411000"),
    # elsewhere, including the old prefecture's counties that left it, and the province and the nation
    ("410102", "outside"), ("411102", "outside"), ("412626", "outside"), ("410000", "outside"), ("100000", "outside"),
])
def test_a_code_gives_its_county(code: str, county: str) -> None:
    assert DIVISIONS.county(code).id == county
    assert county_of("RIC", _ric(code), DIVISIONS) == county
    assert county_of("USCC", "91" + code + "MA00000000", DIVISIONS) == county


def test_the_division_part_of_each_identifier() -> None:
    assert division_code("USCC", "91411081MA9G5XQX3A") == "411081"
    assert division_code("RIC", "411023199001011234") == "411023"
    assert division_code("USCC", "91") == "" and county_of("USCC", "91", DIVISIONS) == "outside"


def test_the_places_are_the_citys_counties_then_the_city_level_then_outside() -> None:
    names = [c.name for c in DIVISIONS.counties]
    assert names == ["魏都区", "建安区", "鄢陵县", "襄城县", "禹州市", "长葛市", "许昌经济技术开发区", "市本级", "市外"]
    assert [c.kind for c in DIVISIONS.counties][-3:] == ["zone", "city_level", "outside"]
    assert DIVISIONS.city == "许昌市"


def test_every_code_of_the_workload_is_a_county_of_the_city() -> None:
    rng = random.Random(4)
    for subject in workload.subjects(rng, 200, persons_share=0.3):
        assert county_of(subject.id_type, subject.id, DIVISIONS) in {"411002", "411003", "411024", "411025", "411081",
                                                                     "411082"}


def _doc() -> dict[str, Any]:
    return json.loads((loader.default_directory() / "divisions.v1.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("change", "entry", "reason"), [
    (lambda d: d["counties"][1]["former_codes"].append(dict(d["counties"][1]["former_codes"][0], code="411002")),
     "counties[1].former_codes[2].code", "listed twice"),
    (lambda d: d["counties"][0].update(code="41100"), "counties[0].code", "six-digit"),
    (lambda d: d["counties"][0].update(kind="village"), "counties[0].kind", "'village'"),
    (lambda d: d["counties"][0].pop("legal_source"), "counties[0]", "legal_source"),
    (lambda d: d["outside"].update(id="411002"), "outside.id", "must not be a division code"),
    (lambda d: d["city_level"].update(id="411099"), "city_level.id", "city level's own codes"),
])
def test_a_bad_divisions_file_is_refused_naming_the_entry(change: Any, entry: str, reason: str) -> None:
    doc = copy.deepcopy(_doc())
    change(doc)
    with pytest.raises(RulesError) as info:
        parse_divisions(doc, "divisions.v1.json")
    assert info.value.entry == entry and reason in info.value.reason
