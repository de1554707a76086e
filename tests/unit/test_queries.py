"""The query API without a database: filters to SQL, parameter checks, identifier look-up, log
masking, and the app's answers to bad requests (in-process, the pool is never touched)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from ledger.domain import identity
from ledger.platform import config
from ledger.platform.clock import Clock
from ledger.platform.web import BadParameter, loggable_path
from ledger.rules import loader
from projections import coverage, queries
from projections.web import api as http
from projections.web.params import Params, identify, parse_after, parse_wait, primary_rejection

PERSON = "411002199801010016"  # a well-formed resident ID number (check character 6)
COMPANY = "91411002MA9XXXXX0C"


def test_a_test_number_is_what_it_claims() -> None:
    assert identity.check_ric(PERSON).id_type == "RIC"


def test_list_filter_builds_parameterised_sql_only() -> None:
    assert queries.ListFilter().where() == ("", [])
    where, params = queries.ListFilter(kind="red", department="xc-credit-office'; drop table x; --",
                                       listed_from=date(2026, 1, 1), listed_to=date(2026, 1, 31)).where()
    assert where == " where list_kind = %s and department = %s and listed_on >= %s and listed_on <= %s"
    assert params == ["red", "xc-credit-office'; drop table x; --", date(2026, 1, 1), date(2026, 1, 31)]


@pytest.mark.parametrize(("late", "clause", "params"), [
    ("true", "late = %s", [True]), ("false", "late = %s", [False]), ("unknown", "late is null", []),
])
def test_publicity_filter_late_is_three_valued(late: str, clause: str, params: list[Any]) -> None:
    assert queries.PublicityFilter(late=late).where() == (" where " + clause, params)


def test_plain_makes_json_values() -> None:
    assert queries.plain({"d": date(2026, 1, 2), "t": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
                          "h": b"\x00\xff", "l": [date(2026, 1, 3)]}) == {
        "d": "2026-01-02", "t": "2026-01-02T03:04:00+00:00", "h": "00ff", "l": ["2026-01-03"]}


def test_coverage_row_share_and_target() -> None:
    assert coverage._coverage_row("enterprise", 10, 9, 3, 0.9) == {
        "category": "enterprise", "registered": 10, "with_records": 9, "share": 0.9, "target": 0.9,
        "meets_target": True, "unregistered_with_records": 3}
    empty = coverage._coverage_row("key_natural_persons", 0, 0, 5, 0.8)
    assert (empty["share"], empty["meets_target"]) == (None, None)
    no_target = coverage._coverage_row("individual", 4, 1, 0, None)
    assert (no_target["share"], no_target["meets_target"]) == (0.25, None)


def test_paging_limits() -> None:
    assert queries._limits(3, 50) == (50, 100)
    for page, size in ((0, 50), (1, 0), (1, 501)):
        with pytest.raises(ValueError):
            queries._limits(page, size)


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("2:1041", (2, 1041)), (" 0 : 7 ", (0, 7))])
def test_after_is_a_ledger_position(value: str | None, expected: Any) -> None:
    assert parse_after(value) == expected


@pytest.mark.parametrize("value", ["", "latest", "1", "-1:3", "4:0", "1:2:3"])
def test_a_bad_after_names_the_parameter(value: str) -> None:
    with pytest.raises(BadParameter) as e:
        parse_after(value)
    assert e.value.name == "after"


@pytest.mark.parametrize("value", ["-1", "31", "nan", "soon"])
def test_a_bad_wait_names_the_parameter(value: str) -> None:
    with pytest.raises(BadParameter) as e:
        parse_wait(value)
    assert e.value.name == "wait"


def test_wait_defaults_to_five_seconds() -> None:
    assert (parse_wait(None), parse_wait("0"), parse_wait("30")) == (5.0, 0.0, 30.0)


def test_params_refuse_unknown_repeated_and_malformed_values() -> None:
    def params(qs: str) -> Params:
        return Params(make_mocked_request("GET", "/lists?" + qs), frozenset({"page", "size", "from", "to"}))

    for qs, name in (("dept=x", "dept"), ("page=1&page=2", "page"), ("from=2026-1-1", "from"),
                     ("size=abc", "size"), ("from=", "from")):
        with pytest.raises(BadParameter) as e:
            p = params(qs)
            p.paging()
            p.period()
        assert e.value.name == name, qs
    assert params("page=2&size=10").paging() == (2, 10)


def test_identify_tells_id_numbers_from_credit_codes() -> None:
    found, refused = identify(f"{PERSON[:6]} {PERSON[6:]}", None)
    assert [k for k, _ in found] == ["RIC"] and refused["USCC"].code == "uscc.resident_id"
    found, refused = identify("91411002MA", None)
    assert found == [] and primary_rejection("91411002MA", refused).code == "uscc.length"
    found, refused = identify("41100219980101", None)
    assert primary_rejection("41100219980101", refused).code == "ric.length"
    _, refused = identify(PERSON[:17] + "1", "RIC")
    assert set(refused) == {"RIC"} and refused["RIC"].code == "ric.checksum"
    assert PERSON not in refused["RIC"].message


def test_log_paths_never_hold_an_id_number() -> None:
    assert loggable_path(f"/entities/{PERSON}") == f"/entities/{identity.mask_ric(PERSON)}"
    assert PERSON not in loggable_path(f"/entities/ric:{PERSON[:6]}-{PERSON[6:]}")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in PERSON)
    assert "19980101" not in loggable_path(f"/x/{full_width}")
    assert loggable_path("/entities/uscc:91411002MA9XXXXX0C/history") == \
        "/entities/uscc:91411002MA9XXXXX0C/history"


class _NoPool:
    def connection(self, *a: Any, **k: Any) -> Any:
        raise AssertionError("a refused request must not reach the database")


async def test_the_app_answers_bad_requests_without_the_database() -> None:
    app = http.make_app(config.load({"LEDGER_ID_PEPPER": "unit-test-pepper-0123456789"}), loader.load(), Clock(),
                        pool=_NoPool())  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/lists", params={"kind": "greylist"})
        body = await r.json()
        assert r.status == 400 and body["parameter"] == "kind" and "greylist" in body["error"]
        r = await client.get("/publicity", params={"after": "x"})
        assert r.status == 400 and (await r.json())["parameter"] == "after"
        r = await client.get("/lookup", params={"id": PERSON[:17] + "1", "type": "RIC"})
        body_text = await r.text()
        assert r.status == 400 and PERSON[:17] not in body_text
        r = await client.get("/nowhere")
        assert r.status == 404 and "/lists" in (await r.json())["routes"]
        r = await client.post("/lists")
        assert r.status == 405
        r = await client.get("/metrics")
        assert r.status == 200 and "ledger_query_api_request_seconds" in await r.text()
