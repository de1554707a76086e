"""The gateway's OpenAPI description is derived from the Avro schemas, and its request decoder
agrees with it: every Avro field of every family is in the description and nothing else is; every
family's JSON (from the demo workload) decodes to exactly the Avro bytes of the original record; and
for any JSON value, valid or mutated, the decoder either returns a record or says which fields are
wrong (never another exception), and its verdict is the JSON Schema validator's verdict."""

from __future__ import annotations

import copy
import json
import random
from datetime import date
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain import rules as domain_rules
from ledger.intake import openapi
from ledger.intake.gateway import checks, docs_page
from ledger.intake.gateway.errors import IntakeRefused
from ledger.rules import loader
from ops import workload, workload_objections
from schemas import registry

DOC = openapi.document()
PEPPER = b"unit-test-pepper-0123456789"
COMPONENTS = DOC["components"]["schemas"]


def _resolve(s: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in s:
        return COMPONENTS[s["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in s:  # the envelope: its $ref and the pinned event type
        return _resolve(next(x for x in s["allOf"] if "$ref" in x))
    return s


def _avro_named(t: Any) -> Any:
    return registry.catalogue().named.get(t, t) if isinstance(t, str) else t


def _record_of(t: Any) -> dict[str, Any] | None:
    """The Avro record a field's type holds (directly, in an array, or as the non-null branch)."""
    t = _avro_named(t)
    if isinstance(t, list):
        inner = [b for b in t if b != "null"]
        return _record_of(inner[0]) if len(inner) == 1 else None
    if isinstance(t, dict) and t.get("type") == "record":
        return t
    if isinstance(t, dict) and t.get("type") == "array":
        return _record_of(t["items"])
    return None


def _json_object_of(s: dict[str, Any]) -> dict[str, Any] | None:
    s = _resolve(s)
    if "anyOf" in s:
        inner = [x for x in s["anyOf"] if x != {"type": "null"}]
        return _json_object_of(inner[0]) if len(inner) == 1 else None
    if s.get("type") == "array":
        return _json_object_of(s["items"])
    return s if s.get("type") == "object" and "properties" in s else None


def _compare(avro: dict[str, Any], js: dict[str, Any], path: str) -> list[str]:
    """Field by field, both ways, recursively: names, required, descriptions, enums, formats."""
    diffs = []
    avro_fields = {f["name"]: f for f in avro["fields"]}
    if list(avro_fields) != list(js["properties"]):
        diffs.append(f"{path}: Avro fields {list(avro_fields)} != JSON properties {list(js['properties'])}")
        return diffs
    required = [n for n, f in avro_fields.items() if "default" not in f and not (
        isinstance(f["type"], list) and "null" in f["type"])]
    if required != js["required"]:
        diffs.append(f"{path}: required {required} != {js['required']}")
    if js.get("additionalProperties") is not False:
        diffs.append(f"{path}: the JSON object must be closed like the Avro record")
    for name, f in avro_fields.items():
        prop = js["properties"][name]
        if f.get("doc") and prop.get("description") != f["doc"]:
            diffs.append(f"{path}{name}: description {prop.get('description')!r} != doc {f['doc']!r}")
        t = _avro_named(f["type"])
        branch = [b for b in t if b != "null"][0] if isinstance(t, list) else t
        branch = _avro_named(branch)
        if isinstance(branch, dict) and branch.get("type") == "enum":
            target = _resolve(prop if "anyOf" not in prop else prop["anyOf"][0])
            if target.get("enum") != branch["symbols"]:
                diffs.append(f"{path}{name}: enum {target.get('enum')} != {branch['symbols']}")
        if isinstance(branch, dict) and branch.get("logicalType") == "date":
            if prop.get("format") != "date":
                diffs.append(f"{path}{name}: a date must be format date")
        sub_avro, sub_js = _record_of(f["type"]), _json_object_of(prop)
        if (sub_avro is None) != (sub_js is None):
            diffs.append(f"{path}{name}: record in one, not in the other")
        elif sub_avro is not None and sub_js is not None:
            diffs += _compare(sub_avro, sub_js, f"{path}{name}.")
    return diffs


def test_every_avro_field_of_every_family_is_described_and_nothing_else() -> None:
    families = openapi.families()
    assert set(families) == domain_rules.EVENT_TYPES
    assert [r["$ref"].rsplit("/", 1)[-1] for r in COMPONENTS["Submission"]["oneOf"]] == families
    for name in families + ["Outcome"]:
        avro = registry.schema_for(name).parsed
        assert _compare(avro, COMPONENTS[name], f"{name}.") == []
    # each family pins its event type
    for name in families:
        env = COMPONENTS[name]["properties"]["envelope"]
        assert {"type": "object", "properties": {"event_type": {"const": name}}} in env["allOf"]


def test_the_national_codes_and_chinese_names_are_kept() -> None:
    penalty = COMPONENTS["AdministrativePenaltyImposed"]["properties"]
    assert penalty["decision_no"]["description"].startswith("CF_WSH 行政处罚决定书文号")
    assert penalty["fine_fen"]["type"] == ["integer", "null"] and penalty["fine_fen"]["format"] == "int64"
    assert penalty["severity"]["$ref"].endswith("/PenaltySeverity")
    licence = COMPONENTS["AdministrativeLicenceGranted"]["properties"]
    assert any("XK_" in (p.get("description") or "") for p in licence.values())
    env = COMPONENTS["EnvelopeV1"]["properties"]
    assert env["valid_from"] == {"type": "string", "format": "date", "description": env["valid_from"]["description"]}
    assert env["recorded_at"]["format"] == "date-time"
    assert "事件编号" in env["event_id"]["description"]
    assert COMPONENTS["HonourAwarded"]["properties"]["list_kind"]["default"] == "red"
    assert "list_kind" not in COMPONENTS["HonourAwarded"]["required"]


def test_document_is_openapi_3_1_with_the_routes() -> None:
    assert DOC["openapi"] == "3.1.0"
    assert set(DOC["paths"]) == {"/v1/events", "/v1/events:batch", "/v1/outcomes/{event_id}", "/health"}
    batch = DOC["paths"]["/v1/events:batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert COMPONENTS[batch["$ref"].rsplit("/", 1)[-1]]["maxItems"] == openapi.MAX_BATCH
    # every $ref resolves
    refs = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if "$ref" in x:
                refs.append(x["$ref"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(DOC)
    assert refs and all(r.rsplit("/", 1)[-1] in COMPONENTS for r in refs)
    page = docs_page.render()
    assert page.startswith('<!DOCTYPE html><html lang="zh-CN">') and "<script" not in page and "http" not in \
        page.replace('href="/openapi.json"', "")
    for name in openapi.families():
        assert f'id="{name}"' in page
    assert "CF_WSH 行政处罚决定书文号" in page and "responsible_persons[].name" in page


# ----------------------------------------------------------------------------- the decoder


def _as_json(record: dict[str, Any]) -> Any:
    return json.loads(json.dumps(record, ensure_ascii=False, default=lambda v: v.isoformat()))


def _every_family() -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(11)
    company, honoured = workload.subjects(rng, 2, persons_share=0.0)
    person = workload.subjects(rng, 1, persons_share=1.0)[0]
    pairs = [p for phase in workload.life(rng, company, 3) for p in phase] + workload.honoured_life(honoured)
    pairs += [p for phase in workload.honour_history(honoured) for p in phase]
    pairs.append(("xc-eco-env", workload.penalty(rng, person, "xc-eco-env", 9, decided=date(2026, 6, 1))))
    pairs += [p for phase in workload_objections.request_history(company, "3", date(2026, 11, 27)) for p in phase]
    pairs.append(workload.key_person_registered(person, "teacher", date(2024, 9, 1)))
    entry = {"colour": "black", "list_kind": "dishonest_debtor", "entity_id": f"uscc:{company.id}",
             "public_id": company.id, "subject_name": company.name, "category": "enterprise", "county": "411002",
             "county_name": "魏都区", "ref": "（2026）豫1002执1号", "reason": "拒不履行", "department": "xc-court",
             "department_name": "许昌市中级人民法院", "listed_on": "2026-05-06", "legal_end": "2028-05-06",
             "listing_event_id": "e1", "entity_version": 4}
    pairs.append(workload.release_approved(1, "2026-05", [entry], date(2026, 6, 2)))
    return pairs


EVERY_FAMILY = _every_family()
VALIDATOR = jsonschema_rs.Draft202012Validator(
    {"$ref": "#/components/schemas/Submission", "components": DOC["components"]}, validate_formats=True)


def test_every_family_in_json_decodes_to_the_same_avro_bytes() -> None:
    assert {r["envelope"]["event_type"] for _, r in EVERY_FAMILY} == domain_rules.EVENT_TYPES
    for _, record in EVERY_FAMILY:
        as_json = _as_json(record)
        assert VALIDATOR.is_valid(as_json), record["envelope"]["event_type"]
        name, decoded = openapi.decode_event(as_json)
        assert name == record["envelope"]["event_type"]
        assert registry.encode(name, decoded) == registry.encode(name, record)


def test_every_problem_is_named_by_its_json_path() -> None:
    _, record = next(p for p in EVERY_FAMILY if p[1]["envelope"]["event_type"] == "WageArrearsListed")
    bad = _as_json(record)
    bad["envelope"]["valid_from"] = "2026-13-01"
    bad["envelope"]["subject"]["id_type"] = "PASSPORT"
    bad["arrears_fen"] = 12.5
    bad["responsible_persons"][0]["role"] = None
    del bad["listed_on"]
    bad["surplus"] = 1
    with pytest.raises(openapi.Invalid) as caught:
        openapi.decode_event(bad)
    got = {(p.field, p.code) for p in caught.value.problems}
    assert got == {("envelope.valid_from", "schema.date"), ("envelope.subject.id_type", "schema.enum"),
                   ("arrears_fen", "schema.type"), ("responsible_persons[0].role", "schema.type"),
                   ("listed_on", "schema.required"), ("surplus", "schema.unknown_field")}
    assert any(p.message.endswith("(not a date (2026-13-01))") for p in caught.value.problems)


def test_gateway_prepare_refuses_with_the_right_status() -> None:
    matrix = loader.load_departments()
    dept, record = next(p for p in EVERY_FAMILY if p[1]["envelope"]["event_type"] == "AdministrativePenaltyImposed")
    ok = _as_json(record)
    assert checks.prepare(matrix, dept, ok, PEPPER)[0] == "AdministrativePenaltyImposed"
    with pytest.raises(IntakeRefused) as caught:  # the court may not impose penalties
        checks.prepare(matrix, "xc-court", {**ok, "envelope": {**ok["envelope"], "source_department": "xc-court"}},
                        PEPPER)
    assert caught.value.status == 403 and caught.value.problems[0][:2] == ("envelope.event_type",
                                                                           "department.not_authorized")
    with pytest.raises(IntakeRefused) as caught:  # the envelope names another department than the token's
        checks.prepare(matrix, "xc-samr", {**ok, "envelope": {**ok["envelope"], "source_department": "xc-tax"}},
                        PEPPER)
    assert caught.value.status == 403 and caught.value.problems[0][:2] == ("envelope.source_department",
                                                                           "department.mismatch")
    bad_id = copy.deepcopy(ok)
    bad_id["envelope"]["subject"]["id"] = "91411002MA4"
    with pytest.raises(IntakeRefused) as caught:
        checks.prepare(matrix, dept, bad_id, PEPPER)
    assert caught.value.status == 400 and caught.value.problems[0][:2] == ("envelope.subject.id", "uscc.length")


# ----------------------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _decoder_accepts(obj: Any) -> bool:
    try:
        openapi.decode_event(obj)
    except openapi.Invalid as exc:
        assert exc.problems and all(isinstance(p, openapi.Problem) and p.field and p.code and p.message
                                    for p in exc.problems)
        assert len(exc.problems) <= openapi.MAX_PROBLEMS
        # what JSON Schema calls valid but the gateway refuses: a blank event id (it keys the outcome),
        # dates and times Avro cannot hold (year 0000, leap seconds)
        if [p.code for p in exc.problems] == ["required"] and exc.problems[0].field == "envelope.event_id":
            return True
        return all(p.code == "schema.unrepresentable" for p in exc.problems)
    return True


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(JSON)
def test_any_json_value_is_decoded_or_refused_cleanly(value: Any) -> None:
    assert _decoder_accepts(value) == VALIDATOR.is_valid(value)
    try:
        checks.prepare(loader.load_departments(), "xc-samr", value, PEPPER)
    except IntakeRefused as exc:
        assert exc.status in (400, 403) and exc.problems


@PROPERTY
@given(st.sampled_from(EVERY_FAMILY), st.data())
def test_a_mutated_event_is_refused_exactly_when_the_schema_says_so(pair: tuple[str, dict[str, Any]],
                                                                    data: st.DataObject) -> None:
    obj = _as_json(pair[1])
    path = data.draw(st.sampled_from(_paths(obj)[1:]))
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    how = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if how == "replace":
        parent[path[-1]] = data.draw(JSON)
    elif how == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=8))] = data.draw(JSON)
    assert _decoder_accepts(obj) == VALIDATOR.is_valid(obj)


@PROPERTY
@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_body_is_parsed_or_refused_as_malformed_json(body: bytes) -> None:
    try:
        openapi.parse_json(body)
    except openapi.Invalid as exc:
        assert exc.problems[0].code == "json.malformed"


def test_deep_nesting_and_non_json_constants_are_malformed_json() -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a": NaN}', b"Infinity", b"\xff\xfe", b""):
        with pytest.raises(openapi.Invalid) as caught:
            openapi.parse_json(body)
        assert caught.value.problems[0].code == "json.malformed"


@pytest.mark.parametrize("field,value,valid", [
    ("recorded_at", "2026-11-27T08:30:00Z", True),
    ("recorded_at", "2026-11-27t08:30:00.123456789+08:00", True),
    ("recorded_at", "2026-11-27T08:30:00", False),  # no offset
    ("recorded_at", "2026-11-27 08:30:00Z", False),
    ("recorded_at", "2026-11-27T08:30Z", False),  # no seconds
    ("recorded_at", "2026-02-30T08:30:00Z", False),
    ("recorded_at", "2026-11-27T24:30:00Z", False),
    ("recorded_at", 1764232200000, False),
    ("valid_from", "2024-02-29", True),
    ("valid_from", "2026-02-29", False),
    ("valid_from", "2026-13-01", False),
    ("valid_from", "20260101", False),
    ("valid_from", "2026-1-01", False),
    ("valid_from", "２０２６-01-01", False),  # full-width digits
])
def test_dates_and_times_are_judged_as_the_schema_says(field: str, value: Any, valid: bool) -> None:
    obj = _as_json(EVERY_FAMILY[0][1])
    obj["envelope"][field] = value
    assert _decoder_accepts(obj) is valid
    assert VALIDATOR.is_valid(obj) is valid


@pytest.mark.parametrize("field,value", [
    ("recorded_at", "0001-01-01T00:00:00+00:01"), ("recorded_at", "9999-12-31T23:59:59-00:01"),
    ("recorded_at", "2026-06-30T23:59:60Z"), ("recorded_at", "0000-03-01T00:00:00Z"), ("valid_from", "0000-02-29"),
])
def test_valid_rfc_3339_that_avro_cannot_hold_is_refused_as_unrepresentable(field: str, value: str) -> None:
    obj = _as_json(EVERY_FAMILY[0][1])
    obj["envelope"][field] = value
    assert VALIDATOR.is_valid(obj)
    with pytest.raises(openapi.Invalid) as caught:
        openapi.decode_event(obj)
    assert [(p.field, p.code) for p in caught.value.problems] == [(f"envelope.{field}", "schema.unrepresentable")]
