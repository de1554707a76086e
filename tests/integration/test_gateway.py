"""Given the running stack with the submission gateway, when departments submit credit events over
HTTP/JSON with their bearer tokens, then every family is accepted at the ledger position the ledger
shows; a resubmission is a duplicate; the sequencer's rejections name the field; unknown callers
get 401 and forbidden submissions 403, with nothing submitted; invalid bodies are 400 naming each
field; a batch is all or nothing; without an outcome in time the answer is 202 with a status URL
that gives the outcome later; the OpenAPI description and its docs page are served; and the
gateway's log holds no token and no ID number."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import subprocess
import sys
import uuid
from datetime import date
from typing import Any

import aiohttp
import pytest

from ledger.domain import identity
from ledger.domain.rules import EVENT_TYPES
from ledger.intake import openapi
from ledger.platform import config, signing
from ledger.records import submissions
from ledger.rules import loader
from ops import workload, workload_objections
from schemas import registry
from tests import helpers, release_world


def as_json(record: dict[str, Any]) -> dict[str, Any]:
    """A workload record as a department would send it: dates and times as ISO strings."""
    return json.loads(json.dumps(record, ensure_ascii=False, default=lambda v: v.isoformat()))


class Gateway:
    def __init__(self, session: aiohttp.ClientSession, base: str, tokens: dict[str, str]) -> None:
        self.session, self.base, self.tokens = session, base, tokens

    async def call(self, method: str, path: str, department: str | None = None, body: Any = None,
                   raw: bytes | None = None, headers: dict[str, str] | None = None,
                   **params: Any) -> tuple[int, Any, Any]:
        h = dict(headers or {})
        if department is not None:
            h["Authorization"] = f"Bearer {self.tokens[department]}"
        data = raw if raw is not None else (json.dumps(body, ensure_ascii=False).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base + path, data=data, headers=h,
                                        params={k: str(v) for k, v in params.items()} or None) as r:
            text = await r.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return r.status, parsed, r.headers

    async def submit(self, department: str, record: dict[str, Any], **params: Any) -> tuple[int, Any, Any]:
        return await self.call("POST", "/v1/events", department, as_json(record), **params)


@pytest.fixture(scope="module")
async def gw(settings, services):  # type: ignore[no-untyped-def]
    tokens = {p.stem: p.read_text().strip() for p in settings.keys_dir.glob("*.token")}
    assert {"xc-samr", "xc-court", "xc-tax"} <= set(tokens)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Gateway(session, f"http://127.0.0.1:{settings.gateway_port}", tokens)


async def submitted_keys(settings) -> set[bytes]:  # type: ignore[no-untyped-def]
    """The key of every record on credit.submissions."""
    return {k for _, _, k, _ in await helpers.read_topic(settings, registry.SUBMISSIONS)}


def key_of(subject: workload.Subject) -> bytes:
    return submissions.submission_key(subject.id_type, subject.id)


def entity_of(settings, subject: workload.Subject) -> str:  # type: ignore[no-untyped-def]
    check = identity.check_uscc if subject.id_type == "USCC" else identity.check_ric
    return identity.entity_key(check(subject.id), settings.id_pepper)


async def assert_nothing_submitted(settings, *subjects: workload.Subject) -> None:  # type: ignore[no-untyped-def]
    keys = await submitted_keys(settings)
    assert [s.name for s in subjects if key_of(s) in keys] == []
    assert await helpers.ledger_entries(settings, {entity_of(settings, s) for s in subjects}) == {}


# ----------------------------------------------------------------------------- accepted, duplicate, rejected

SELF_SIGNING = {d for d, dept in loader.load_departments().departments.items() if "ledger-gateway" not in dept.intakes}
PERSON_IDS: list[str] = []  # clear ID numbers sent in this module: the gateway's log must hold none


async def test_every_family_over_http_is_accepted_at_its_ledger_position(settings, gw) -> None:
    rng = helpers.rng("gateway-families")
    company, honoured, objected = workload.subjects(rng, 3, persons_share=0.0)
    person = workload.subjects(rng, 1, persons_share=1.0)[0]
    PERSON_IDS.append(person.id)
    life = workload.life(rng, company, rng.randrange(10_000, 99_999))
    honours = workload.honour_history(honoured)
    requests = workload_objections.request_history(objected, str(rng.randrange(10**5)), helpers.today())
    pairs = life[0] + workload.honoured_life(honoured) + honours[0] + \
        [("xc-eco-env", workload.penalty(rng, person, "xc-eco-env", rng.randrange(10**6, 10**7)))] + life[1] + honours[1] \
        + [p for phase in requests for p in phase]
    pairs.append(await release_world.next_release(settings, company, 44))  # the credit office over HTTP too
    assert {r["envelope"]["event_type"] for _, r in pairs} == EVENT_TYPES
    outcomes = []
    for dept, record in pairs:
        status, body, _ = await gw.submit(dept, record)
        if dept in SELF_SIGNING:  # the scheduler and the sector systems sign their own submissions
            assert (status, body["reasons"][0]["code"]) == (403, "intake.not_allowed"), body
            async with helpers.client(settings, dept) as c:
                assert (await c.submit_and_wait(record))["status"] == "ACCEPTED"
            continue
        assert (status, body.get("status")) == (200, "ACCEPTED"), (record["envelope"]["event_type"], body)
        assert body["event_id"] == record["envelope"]["event_id"] and body["reasons"] == []
        outcomes.append(body)
    person_entity = entity_of(settings, person)
    office = "uscc:" + loader.load().releases.publisher_id
    assert {o["entity_id"] for o in outcomes} == {"uscc:" + company.id, "uscc:" + honoured.id, "uscc:" + objected.id,
                                                  person_entity, office}
    entries = await helpers.ledger_entries(settings, {o["entity_id"] for o in outcomes})
    ours = {r["envelope"]["event_id"] for _, r in pairs}  # the publisher's entity holds other releases too
    by_event = {e["event_id"]: e for es in entries.values() for e in es if e["event_id"] in ours}
    assert len(by_event) == len(pairs)
    for o in outcomes:
        e = by_event[o["event_id"]]
        assert (o["entity_version"], o["ledger_partition"], o["ledger_offset"]) == (
            e["entity_version"], e["_partition"], e["_offset"])
        assert e["department"] == next(d for d, r in pairs if r["envelope"]["event_id"] == o["event_id"])
        assert e["signer"] == "ledger-gateway" and e["client_signature"] == b""  # attested by the gateway's key
    assert {e["signer"] for e in by_event.values() if e["department"] in SELF_SIGNING} == {""}
    # the signed submission bytes are the Avro encoding of the JSON that was posted
    for dept, record in pairs:
        e = by_event[record["envelope"]["event_id"]]
        assert registry.decode(e["submission"])[1]["envelope"]["source_department"] == dept


async def test_a_resubmission_is_a_duplicate_with_the_original_position(settings, gw) -> None:
    subject = workload.subjects(helpers.rng("gateway-dup"), 1, persons_share=0.0)[0]
    dept, record = workload.registered(subject, date(2021, 3, 4))
    first = await gw.submit(dept, record)
    again = await gw.submit(dept, record)
    assert (first[0], first[1]["status"], again[0], again[1]["status"]) == (200, "ACCEPTED", 200, "DUPLICATE")
    keys = ("entity_id", "entity_version", "ledger_partition", "ledger_offset")
    assert [again[1][k] for k in keys] == [first[1][k] for k in keys]
    changed = copy.deepcopy(record)
    changed["address"] = "河南省许昌市建安区"
    conflict = await gw.submit(dept, changed)
    assert (conflict[0], conflict[1]["status"]) == (422, "CONFLICT")
    assert len((await helpers.ledger_entries(settings, {first[1]["entity_id"]}))[first[1]["entity_id"]]) == 1


async def test_one_event_id_for_two_subjects_answers_each_request_about_its_own_subject(settings, gw) -> None:
    rng = helpers.rng("gateway-reuse")
    a = workload.subjects(rng, 1, persons_share=0.0)[0]
    b = next(s for s in workload.subjects(rng, 50, persons_share=0.0)
             if submissions.partition_of(key_of(s)) != submissions.partition_of(key_of(a)))
    _, rec_a = workload.registered(a, date(2021, 6, 1))
    _, rec_b = workload.registered(b, date(2021, 6, 1))
    rec_b["envelope"]["event_id"] = rec_a["envelope"]["event_id"]  # judged in two partitions
    (sa, oa, _), (sb, ob, _) = await asyncio.gather(gw.submit("xc-samr", rec_a), gw.submit("xc-samr", rec_b))
    # whichever the sequencer judged first holds the id; the other is a conflict, answered about its own
    # subject, and appends nothing
    assert (oa["entity_id"], ob["entity_id"]) == ("uscc:" + a.id, "uscc:" + b.id)
    assert sorted([oa["status"], ob["status"]]) == ["ACCEPTED", "CONFLICT"], (oa, ob)
    assert sorted([sa, sb]) == [200, 422]
    won, lost = (oa, ob) if oa["status"] == "ACCEPTED" else (ob, oa)
    assert (lost["reasons"][0]["field"], lost["reasons"][0]["code"]) == ("event_id", "event_id.conflict")
    assert f"{won['ledger_partition']}:{won['ledger_offset']}" in lost["reasons"][0]["message"] or \
        "this batch" in lost["reasons"][0]["message"]
    assert lost["entity_version"] is None and lost["ledger_partition"] is None
    entries = await helpers.ledger_entries(settings, {won["entity_id"], lost["entity_id"]})
    assert [e["event_id"] for e in entries.get(won["entity_id"], [])] == [won["event_id"]]
    assert entries.get(lost["entity_id"], []) == []
    # and the same again later, with the first one committed long ago: still a conflict
    status, again, _ = await gw.submit("xc-samr", rec_b if lost is ob else rec_a)
    assert (status, again["status"], again["entity_id"]) == (422, "CONFLICT", lost["entity_id"]), again


async def test_a_rejection_by_the_sequencer_names_the_field_and_appends_nothing(settings, gw) -> None:
    clean = workload.subjects(helpers.rng("gateway-reject"), 1, persons_share=0.0)[0]
    status, body, _ = await gw.submit(*workload.debtor_delisted(clean, "（2026）豫10执4242号", date(2026, 11, 2)))
    assert status == 422 and body["status"] == "REJECTED"
    assert [(r["field"], r["code"]) for r in body["reasons"]] == [("case_no", "list.not_listed")]
    assert body["entity_version"] is None and body["ledger_offset"] is None
    assert await helpers.ledger_entries(settings, {entity_of(settings, clean)}) == {}


# ----------------------------------------------------------------------------- 401, 403: nothing submitted


async def test_unknown_callers_get_401_and_nothing_is_submitted(settings, gw) -> None:
    subject = workload.subjects(helpers.rng("gateway-401"), 1, persons_share=0.0)[0]
    _, record = workload.registered(subject, date(2022, 5, 6))
    for headers, code in [({}, "auth.missing"), ({"Authorization": "Bearer not-a-token"}, "auth.unknown"),
                          ({"Authorization": f"Basic {gw.tokens['xc-samr']}"}, "auth.unknown"),
                          ({"Authorization": "Bearer " + gw.tokens["xc-samr"][:-1]}, "auth.unknown")]:
        for path, body in (("/v1/events", as_json(record)), ("/v1/events:batch", [as_json(record)])):
            status, answer, h = await gw.call("POST", path, body=body, headers=headers)
            assert (status, answer["code"]) == (401, code), (path, headers.keys())
            assert h["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = await gw.call("GET", "/v1/outcomes/" + record["envelope"]["event_id"])
    assert status == 401
    await assert_nothing_submitted(settings, subject)


async def test_forbidden_submissions_get_403_naming_the_field_and_nothing_is_submitted(settings, gw) -> None:
    rng = helpers.rng("gateway-403")
    a, b = workload.subjects(rng, 2, persons_share=0.0)
    penalty = workload.penalty(rng, a, "xc-samr", 4711)
    penalty["envelope"]["source_department"] = "xc-court"  # the court names itself, but may not impose penalties
    status, body, _ = await gw.submit("xc-court", penalty)
    assert status == 403
    assert [(r["field"], r["code"]) for r in body["reasons"]] == [("envelope.event_type", "department.not_authorized")]
    _, registration = workload.registered(b, date(2020, 2, 2))
    registration["envelope"]["source_department"] = "xc-tax"  # speaking for another department
    status, body, _ = await gw.submit("xc-samr", registration)
    assert status == 403
    assert [(r["field"], r["code"]) for r in body["reasons"]] == [("envelope.source_department",
                                                                   "department.mismatch")]
    await assert_nothing_submitted(settings, a, b)


# ----------------------------------------------------------------------------- 400 naming the field


async def test_malformed_and_invalid_bodies_are_400_naming_the_field(settings, gw) -> None:
    rng = helpers.rng("gateway-400")
    subjects = workload.subjects(rng, 9, persons_share=0.0)
    person = workload.subjects(rng, 1, persons_share=1.0)[0]
    PERSON_IDS.append(person.id)

    status, body, _ = await gw.call("POST", "/v1/events", "xc-samr", raw=b'{"envelope": {not json')
    assert status == 400 and body["reasons"][0]["code"] == "json.malformed"

    def bad(subject: workload.Subject, mutate: Any) -> dict[str, Any]:
        record = as_json(workload.penalty(rng, subject, "xc-samr", rng.randrange(10**6)))
        mutate(record)
        return record

    cases = [
        (bad(subjects[0], lambda r: r["envelope"].update(valid_from="2026-13-01")),
         [("envelope.valid_from", "schema.date")]),
        (bad(subjects[1], lambda r: r.pop("decision_no")), [("decision_no", "schema.required")]),
        (bad(subjects[2], lambda r: r.update(fine_fen="500元", surplus=True)),
         [("surplus", "schema.unknown_field"), ("fine_fen", "schema.type")]),
        (bad(subjects[3], lambda r: r["envelope"]["subject"].update(id="91411002MA4")),
         [("envelope.subject.id", "uscc.length")]),
        (bad(subjects[4], lambda r: r.update(severity="severe")), [("severity", "schema.enum")]),
        (bad(subjects[5], lambda r: r["envelope"].update(event_type="PenaltyImposed")),
         [("envelope.event_type", "event_type.unknown")]),
        (bad(person, lambda r: r["envelope"]["subject"].update(id=person.id[:-1] + ("0" if person.id[-1] != "0"
                                                                                    else "1"))),
         [("envelope.subject.id", "ric.checksum")]),
        # an event id travels in status URLs, headers, logs and CSV files: visible characters only
        (bad(subjects[6], lambda r: r["envelope"].update(event_id="\u00c1\nH~7b1e32bcfa74")),
         [("envelope.event_id", "event_id.character")]),
        (bad(subjects[7], lambda r: r["envelope"].update(event_id="id\u200b" + str(uuid.uuid4()))),
         [("envelope.event_id", "event_id.character")]),
        (bad(subjects[8], lambda r: r["envelope"].update(event_id="x" * 129)),
         [("envelope.event_id", "event_id.too_long")]),
    ]
    for record, expected in cases:
        status, body, _ = await gw.call("POST", "/v1/events", "xc-samr", record)
        assert status == 400, body
        assert [(r["field"], r["code"]) for r in body["reasons"]] == expected
        assert all(r["message"] for r in body["reasons"])
    status, body, _ = await gw.call("POST", "/v1/events", "xc-samr", cases[0][0])
    assert body["reasons"][0]["message"].endswith("(not a date (2026-13-01))")
    assert body["error"].startswith("envelope.valid_from: ")
    assert person.id not in json.dumps(body, ensure_ascii=False)
    for params in ({"timeout": "soon"}, {"timeout": "31"}, {"timeout": "nan"}, {"wait": "1"}):
        status, body, _ = await gw.call("POST", "/v1/events", "xc-samr", cases[0][0], **params)
        assert (status, body["code"], body["parameter"]) == (400, "parameter", next(iter(params)))
    await assert_nothing_submitted(settings, *subjects, person)


# ----------------------------------------------------------------------------- the batch


async def test_a_batch_is_all_or_nothing(settings, gw) -> None:
    rng = helpers.rng("gateway-batch")
    subjects = workload.subjects(rng, 4, persons_share=0.0)
    good = [as_json(workload.penalty(rng, s, "xc-samr", rng.randrange(10**6))) for s in subjects[:3]]
    invalid = as_json(workload.penalty(rng, subjects[3], "xc-samr", rng.randrange(10**6)))
    invalid["envelope"]["valid_from"] = "2026-02-30"
    status, body, _ = await gw.call("POST", "/v1/events:batch", "xc-samr", good + [invalid])
    assert status == 400
    assert [(r["index"], r["field"], r["code"]) for r in body["reasons"]] == [(3, "envelope.valid_from", "schema.date")]
    forbidden = as_json(workload.registered(subjects[3], date(2020, 1, 1))[1])
    forbidden["envelope"]["source_department"] = "xc-tax"
    status, body, _ = await gw.call("POST", "/v1/events:batch", "xc-samr", [forbidden] + good)
    assert status == 403 and [(r["index"], r["code"]) for r in body["reasons"]] == [(0, "department.mismatch")]
    status, body, _ = await gw.call("POST", "/v1/events:batch", "xc-samr", good + [good[0]])
    assert status == 400 and [(r["index"], r["code"]) for r in body["reasons"]] == [(3, "batch.repeated_event_id")]
    for empty in ([], {"events": good}):
        status, body, _ = await gw.call("POST", "/v1/events:batch", "xc-samr", empty)
        assert status == 400 and [(r["field"], r["code"]) for r in body["reasons"]] == [("(body)", "batch.size")]
    await assert_nothing_submitted(settings, *subjects)

    status, body, _ = await gw.call("POST", "/v1/events:batch", "xc-samr", good)
    assert status == 200 and body["counts"] == {"ACCEPTED": 3}
    assert [o["event_id"] for o in body["outcomes"]] == [r["envelope"]["event_id"] for r in good]
    entries = await helpers.ledger_entries(settings, {o["entity_id"] for o in body["outcomes"]})
    by_event = {e["event_id"]: e for es in entries.values() for e in es}
    for o in body["outcomes"]:
        e = by_event[o["event_id"]]
        assert (o["entity_version"], o["ledger_partition"], o["ledger_offset"]) == (1, e["_partition"], e["_offset"])
    # each event is judged on its own: a resubmitted batch with one new rejected event
    clean = workload.subjects(rng, 1, persons_share=0.0)[0]
    wrong = as_json(workload.penalty_revoked(clean, "许市监罚〔2026〕1号", date(2026, 11, 2))[1])
    status, body, _ = await gw.call("POST", "/v1/events:batch", "xc-samr", good + [wrong])
    assert status == 200 and body["counts"] == {"DUPLICATE": 3, "REJECTED": 1}
    assert body["outcomes"][3]["reasons"][0]["field"] == "penalty_decision_no"


# ----------------------------------------------------------------------------- 202 and the status URL


async def test_without_an_outcome_in_time_the_answer_is_202_and_the_status_url_gives_it_later(
        settings, gw, services) -> None:
    rng = helpers.rng("gateway-202")
    one, two, three = workload.subjects(rng, 3, persons_share=0.0)
    _, record = workload.registered(one, date(2023, 1, 9))
    batch = [as_json(workload.registered(s, date(2023, 1, 10))[1]) for s in (two, three)]
    # event ids that a URL path could lose or fail to route (the fuzzer found the braces): a dot
    # segment, a slash, braces, and Chinese text
    batch[0]["envelope"]["event_id"] = f"{{{rng.randrange(10**6)}}}/.."
    batch[1]["envelope"]["event_id"] = f"许市监登〔2023〕{rng.randrange(10**6)}号"
    sequencer = services["sequencer"]
    await asyncio.to_thread(sequencer.stop)
    try:
        status, body, headers = await gw.submit("xc-samr", record, timeout=1)
        assert status == 202 and body["status"] == "PENDING"
        url = body["status_url"]
        assert url == "/v1/outcomes/" + record["envelope"]["event_id"] and headers["Location"] == url
        status, body, _ = await gw.call("GET", url, "xc-samr")
        assert (status, body["status"]) == (202, "PENDING")
        status, body, _ = await gw.call("POST", "/v1/events:batch", "xc-samr", batch, timeout=0)
        assert status == 202 and body["counts"] == {"PENDING": 2}
        batch_urls = [o["status_url"] for o in body["outcomes"]]
        # another department does not see it
        status, _, _ = await gw.call("GET", url, "xc-tax")
        assert status == 404
    finally:
        await asyncio.to_thread(sequencer.start)
    status, body, _ = await gw.call("GET", url, "xc-samr", timeout=30)
    assert (status, body["status"], body["entity_id"]) == (200, "ACCEPTED", "uscc:" + one.id)
    for u, sent in zip(batch_urls, batch, strict=True):
        status, body, _ = await gw.call("GET", u, "xc-samr", timeout=30)
        assert (status, body["status"], body["event_id"]) == (200, "ACCEPTED", sent["envelope"]["event_id"])
    entries = await helpers.ledger_entries(settings, {"uscc:" + s.id for s in (one, two, three)})
    assert sorted(len(es) for es in entries.values()) == [1, 1, 1]
    status, body, _ = await gw.call("GET", "/v1/outcomes/" + str(uuid.uuid4()), "xc-samr")
    assert (status, body["code"]) == (404, "outcome.unknown")


async def test_another_department_reusing_an_event_id_neither_hides_nor_reads_the_first_outcome(
        settings, gw) -> None:
    rng = helpers.rng("gateway-two-departments")
    firm = workload.subjects(rng, 1, persons_share=0.0)[0]
    _, mine = workload.registered(firm, date(2023, 1, 9))
    _, theirs = workload.tax_rated(firm, 2024, "A", date(2025, 4, 1))
    theirs["envelope"]["event_id"] = mine["envelope"]["event_id"]  # same id, another department's event
    status, body, _ = await gw.submit("xc-samr", mine, timeout=30)
    assert (status, body["status"]) == (200, "ACCEPTED")
    url = body["status_url"] if "status_url" in body else "/v1/outcomes/" + mine["envelope"]["event_id"]
    status, other, _ = await gw.submit("xc-tax", theirs, timeout=30)
    assert (status, other["status"]) == (422, "CONFLICT")
    # each department reads what it was told, nothing of the other's
    status, body, _ = await gw.call("GET", url, "xc-samr")
    assert (status, body["status"]) == (200, "ACCEPTED")
    status, body, _ = await gw.call("GET", url, "xc-tax")
    assert (status, body["status"]) == (422, "CONFLICT")
    status, body, _ = await gw.call("GET", url, "xc-court")
    assert (status, body["code"]) == (404, "outcome.unknown")


# ----------------------------------------------------------------------------- description, docs, health


async def test_the_openapi_description_and_its_docs_page_are_served(settings, gw) -> None:
    status, doc, headers = await gw.call("GET", "/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert doc == openapi.document()
    assert set(doc["components"]["schemas"]) >= EVENT_TYPES | {"Submission", "Outcome", "EnvelopeV1"}
    status, page, headers = await gw.call("GET", "/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page and "<script" not in page
    for name in EVENT_TYPES:
        assert f'id="{name}"' in page
    assert "CF_WSH 行政处罚决定书文号" in page
    status, health, _ = await gw.call("GET", "/health")
    assert (status, health["status"]) == (200, "ok")
    status, metrics, _ = await gw.call("GET", "/metrics")
    assert status == 200 and 'ledger_gateway_requests_total{route="/v1/events",status="200"}' in metrics
    assert 'ledger_gateway_outcomes_total{status="ACCEPTED"}' in metrics
    status, body, _ = await gw.call("GET", "/v2/nothing")
    assert (status, body["code"]) == (404, "route.unknown")


async def test_the_gateway_log_holds_no_token_and_no_id_number(settings, gw) -> None:
    text = (settings.stack_dir / "logs" / "gateway.log").read_text(encoding="utf-8")
    assert '"event": "request"' in text
    assert PERSON_IDS and [p for p in PERSON_IDS if p in text] == []
    assert [d for d, t in gw.tokens.items() if t in text] == []


# ----------------------------------------------------------------------------- who signs

async def test_an_attestation_for_a_department_the_matrix_does_not_allow_is_refused_by_gateway_and_sequencer(
        settings, gw) -> None:
    rng = helpers.rng("gateway-intake")
    company = workload.subjects(rng, 1, persons_share=0.0)[0]
    _, feedback = workload.feedback(company, "evt-" + str(uuid.uuid4()), helpers.today())
    feedback["envelope"]["source_department"] = "sector-procurement"
    # the gateway refuses the sector system's token before submitting anything
    status, body, _ = await gw.submit("sector-procurement", feedback)
    assert (status, body["reasons"][0]["field"], body["reasons"][0]["code"]) == (403, "Authorization",
                                                                                 "intake.not_allowed"), body
    assert "不得经" in body["error"] and "may not submit through the intake ledger-gateway" in body["error"]
    await assert_nothing_submitted(settings, company)
    # whoever holds the gateway's key and writes straight to credit.submissions gets no further
    key, value = submissions.encode(feedback)
    [headers] = submissions.sign_batch([feedback], [value], "sector-procurement",
                                       signing.private_key(settings.keys_dir, "ledger-gateway"), signer="ledger-gateway")
    async with helpers.client(settings, "xc-samr") as c:
        await c.producer.send_and_wait(registry.SUBMISSIONS.name, key=key, value=value, headers=headers)
        outcome = await c.outcome(feedback["envelope"]["event_id"], timeout=30)
    assert outcome["status"] == "REJECTED"
    assert [(r["field"], r["code"]) for r in outcome["reasons"]] == [("signer", "intake.not_allowed")]
    assert await helpers.ledger_entries(settings, {entity_of(settings, company)}) == {}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=180, cwd=config.ROOT)


async def test_a_clients_own_signature_is_kept_and_verifies_offline_and_a_bad_one_is_refused(
        settings, gw, tmp_path) -> None:
    rng = helpers.rng("gateway-client-signature")
    company, other = workload.subjects(rng, 2, persons_share=0.0)
    body = json.dumps(as_json(workload.penalty(rng, company, "xc-samr", rng.randrange(10**6, 10**7))),
                      ensure_ascii=False, indent=1).encode()  # any bytes of JSON: the exact body is signed
    samr_key = signing.private_key(settings.keys_dir, "xc-samr")
    signature = base64.b64encode(signing.sign(samr_key, body)).decode()
    # refused, nothing submitted: another department's signature, a malformed header, any batch
    wrong = base64.b64encode(signing.sign(signing.private_key(settings.keys_dir, "xc-tax"), body)).decode()
    for header, code in ((wrong, "client_signature.invalid"), ("%%%", "client_signature.malformed"),
                         (signature[:-8], "client_signature.malformed")):
        status, answer, _ = await gw.call("POST", "/v1/events", "xc-samr", raw=body,
                                          headers={"X-Content-Signature": header})
        assert (status, answer["reasons"][0]["field"], answer["reasons"][0]["code"]) == (
            400, "X-Content-Signature", code), answer
        assert "X-Content-Signature" in answer["error"]
    batch = [as_json(workload.penalty(rng, other, "xc-samr", rng.randrange(10**6, 10**7)))]
    status, answer, _ = await gw.call("POST", "/v1/events:batch", "xc-samr", batch,
                                      headers={"X-Content-Signature": signature})
    assert (status, answer["reasons"][0]["code"]) == (400, "client_signature.batch")
    assert "direct Avro client" in answer["error"] and "逐条签名" in answer["error"]
    await assert_nothing_submitted(settings, company, other)

    status, answer, _ = await gw.call("POST", "/v1/events", "xc-samr", raw=body,
                                      headers={"X-Content-Signature": signature})
    assert (status, answer["status"]) == (200, "ACCEPTED"), answer
    entity = answer["entity_id"]
    [entry] = (await helpers.ledger_entries(settings, {entity}))[entity]
    assert (entry["signer"], entry["client_body"]) == ("ledger-gateway", body)
    assert entry["client_signature"] == base64.b64decode(signature)

    # the auditor's offline check, with the gateway's and the department's public keys only
    await helpers.projected(settings)
    bundle, pub = tmp_path / "bundle.json", tmp_path / "notary.pub"
    assert run("projections.audit.auditor", "public-key", "--out", str(pub)).returncode == 0
    r = run("projections.audit.auditor", "export-bundle", entity, "--out", str(bundle), "--wait", "90")
    assert r.returncode == 0, r.stderr
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("ledger-gateway", "xc-samr"):
        (keys / f"{name}.pub").write_text((settings.keys_dir / f"{name}.pub").read_text())
    r = run("ledger.audit.verify", str(bundle), "--public-key", str(pub), "--department-keys", str(keys))
    assert r.returncode == 0 and "VERIFIED: 1 events" in r.stdout, r.stdout + r.stderr
    # with another department's key under xc-samr's name, the client's signature no longer holds
    (keys / "xc-samr.pub").write_text((settings.keys_dir / "xc-tax.pub").read_text())
    r = run("ledger.audit.verify", str(bundle), "--public-key", str(pub), "--department-keys", str(keys))
    assert r.returncode == 1 and "client" in r.stdout + r.stderr, r.stdout + r.stderr
