"""Given the running gateway, when schemathesis fuzzes it from its live OpenAPI description (valid
and invalid requests on every operation, with a department's token), then no answer is a 5xx, every
answer conforms to the description (status, content type, body), invalid data is refused with a
4xx, data the description calls valid is never refused as malformed, and nothing invalid reaches
the ledger: every record the run appended to credit.submissions came from a request whose body
the description calls valid, and every ledger entry it appended is an event the fuzzer was told
was ACCEPTED."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from datetime import date, timedelta
from typing import Any

import jsonschema_rs
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from ledger.domain import rules as domain_rules
from ledger.rules import loader
from ops import workload
from schemas import registry
from tests import helpers

MAX_EXAMPLES = 300
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
SCHEMA_CODES = ("schema.", "json.", "event_type.unknown", "batch.size")
# valid RFC 3339 that Avro's date and timestamp cannot hold (year 0000, a leap second, beyond 9999 in
# UTC): the description says so in words, JSON Schema cannot
UNREPRESENTABLE = "schema.unrepresentable"


async def _records_since(s, topic: registry.Topic,  # type: ignore[no-untyped-def]
                         start: dict[int, int]) -> list[tuple[int, int, bytes]]:
    return [(p, o, v) for p, o, _, v in await helpers.read_topic(s, topic) if o >= start.get(p, 0)]


DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9:.]+([Zz]|[+-][0-9:]+)")


def _sane_dates(value: Any, rnd: random.Random) -> Any:
    """Generated dates span years 1-9999 and the ledger refuses future ones: bring every date of a
    valid body into 2020-2025 and every time to now, so that some events are judged on their merits."""
    if isinstance(value, dict):
        for k, v in value.items():
            value[k] = _sane_dates(v, rnd)
    elif isinstance(value, list):
        value[:] = [_sane_dates(v, rnd) for v in value]
    elif isinstance(value, str) and DATE.fullmatch(value):
        return (date(2020, 1, 1) + timedelta(days=rnd.randrange(6 * 365))).isoformat()
    elif isinstance(value, str) and DATE_TIME.fullmatch(value):
        return helpers.CLOCK.now().isoformat()
    return value


class Fuzz:
    """What the fuzzer sent and was told."""

    def __init__(self, base: str, tokens: dict[str, str], doc: dict[str, Any]) -> None:
        self.base, self.tokens = base, tokens
        self.matrix = loader.load_departments()
        self.allowed = {t: sorted(d for d, dep in self.matrix.departments.items() if t in dep.may_emit)
                        for t in domain_rules.EVENT_TYPES}
        comps = {"components": doc["components"]}
        self.valid_one = jsonschema_rs.Draft202012Validator(
            {"$ref": "#/components/schemas/Submission", **comps}, validate_formats=True)
        self.valid_batch = jsonschema_rs.Draft202012Validator(
            {"$ref": "#/components/schemas/SubmissionBatch", **comps}, validate_formats=True)
        self.valid_event_ids: set[str] = set()  # event ids of request bodies the description calls valid
        self.accepted: set[tuple[str, int, int]] = set()  # (event id, ledger partition, offset) answered ACCEPTED
        # ... answered DUPLICATE: hypothesis replays examples (shrinking), so one event id is often sent
        # several times; when the first answer was PENDING, its status URL later tells of the latest
        # request for that id, a DUPLICATE naming the same position
        self.duplicates: set[tuple[str, int, int]] = set()
        self.pending: list[tuple[str, str]] = []  # (department, status URL)
        self.subject_of: dict[str, str] = {}  # event id -> the subject it was first sent with
        self.statuses: dict[str, int] = {}  # requests by operation and HTTP status
        self.outcomes: dict[str, int] = {}  # events answered, by outcome status
        self.session = requests.Session()

    def steer(self, case: Any, rnd: random.Random) -> str:
        department = self._steer(case, rnd)
        if case.operation.method.upper() == "POST":
            for item in case.body if isinstance(case.body, list) else [case.body]:
                self._one_subject_per_event_id(item)
        return department

    def _steer(self, case: Any, rnd: random.Random) -> str:
        """Valid cases go deeper: often the envelope names a department the matrix allows for the event
        type (and that department's token is used), sometimes the subject is a real one."""
        department = "xc-samr"
        if case.meta is None or not case.meta.generation.mode.is_positive or case.operation.method.upper() != "POST":
            return department
        items = case.body if isinstance(case.body, list) else [case.body]
        for i, item in enumerate(items):
            env = item.get("envelope") if isinstance(item, dict) else None
            if not isinstance(env, dict) or env.get("event_type") not in self.allowed:
                continue
            if i == 0 and rnd.random() < 0.8:
                department = rnd.choice(self.allowed[env["event_type"]])
            env["source_department"] = department
            if rnd.random() < 0.6:
                env["subject"] = workload.subjects(rnd, 1)[0].as_avro()
            if rnd.random() < 0.7:
                _sane_dates(item, rnd)
        if isinstance(case.body, list) and rnd.random() < 0.5:  # keep what this department may submit
            kept = [x for x in case.body if isinstance(x, dict) and isinstance(x.get("envelope"), dict)
                    and department in self.allowed.get(x["envelope"].get("event_type"), ())]
            case.body[:] = kept or case.body[:1]
        return department

    def _one_subject_per_event_id(self, item: Any) -> None:
        """Hypothesis replays an event id with other subjects. The sequencer answers such a reuse
        CONFLICT, but the status URL, keyed by event id, tells of the latest request for it only, so
        the fuzzer could not check the first one's answer. The fuzzer gives such a reuse an id of its
        own (tests/integration/test_gateway.py checks the conflict itself)."""
        env = item.get("envelope") if isinstance(item, dict) else None
        if not isinstance(env, dict) or not isinstance(env.get("event_id"), str):
            return
        subject = json.dumps(env.get("subject"), sort_keys=True, ensure_ascii=False, default=str)
        first = self.subject_of.setdefault(env["event_id"], subject)
        if first != subject:
            env["event_id"] += "~" + hashlib.sha256(subject.encode()).hexdigest()[:12]
            self.subject_of.setdefault(env["event_id"], subject)

    def record(self, case: Any, department: str, response: Any) -> None:
        key = f"{case.operation.method.upper()} {case.operation.path} {response.status_code}"
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if case.operation.method.upper() != "POST":
            return
        body = case.body
        validator = self.valid_batch if case.operation.path.endswith(":batch") else self.valid_one
        valid = isinstance(body, (dict, list)) and validator.is_valid(body)
        if valid:
            for item in body if isinstance(body, list) else [body]:
                self.valid_event_ids.add(item["envelope"]["event_id"])
        try:
            answer = json.loads(response.content)
        except ValueError:
            answer = {}
        if not valid:
            assert response.status_code in (400, 401, 403, 413), (case.operation.label, response.status_code,
                                                                  str(answer)[:300])
        elif response.status_code == 400 and isinstance(answer, dict):
            # what the description calls valid is never refused as malformed (identifiers may be)
            codes = [r.get("code", "") for r in answer.get("reasons", [])]
            assert not any(c.startswith(SCHEMA_CODES) and c != UNREPRESENTABLE for c in codes), (
                case.operation.label, answer)
        outcomes = answer.get("outcomes", [answer]) if isinstance(answer, dict) else []
        for o in outcomes:
            if isinstance(o, dict) and isinstance(o.get("status"), str):
                self.outcomes[o["status"]] = self.outcomes.get(o["status"], 0) + 1
            if isinstance(o, dict) and o.get("status") in ("ACCEPTED", "DUPLICATE"):
                self._positioned(o)
            elif isinstance(o, dict) and o.get("status") == "PENDING":
                self.pending.append((department, o["status_url"]))

    def settle(self) -> None:
        """Ask every status URL the fuzzer was given for its outcome."""
        for department, url in self.pending:
            r = self.session.get(self.base + url, params={"timeout": "30"},
                                 headers={"Authorization": f"Bearer {self.tokens[department]}"}, timeout=60)
            assert r.status_code in (200, 422), (url, r.status_code, r.text[:300])
            self.outcomes[r.json()["status"] + " (later)"] = self.outcomes.get(r.json()["status"] + " (later)", 0) + 1
            if r.json()["status"] in ("ACCEPTED", "DUPLICATE"):
                self._positioned(r.json())

    def _positioned(self, o: dict[str, Any]) -> None:
        position = (o["event_id"], o["ledger_partition"], o["ledger_offset"])
        (self.accepted if o["status"] == "ACCEPTED" else self.duplicates).add(position)


def _fuzz(fuzz: Fuzz, schema: Any) -> None:
    operations = [op.ok() for op in schema.get_all_operations()]
    strategy = st.one_of([op.as_strategy(generation_mode=mode) for op in operations
                          for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy, seed=st.integers(0, 2**32))
    def run(case: Any, seed: int) -> None:
        department = fuzz.steer(case, random.Random(seed))
        auth = {"Authorization": f"Bearer {fuzz.tokens[department]}"}
        response = case.call(base_url=fuzz.base, session=fuzz.session, headers=auth, timeout=60)
        fuzz.record(case, department, response)
        case.validate_response(response, checks=CHECKS, headers=auth)

    run()


async def test_schemathesis_finds_no_server_error_and_nothing_invalid_is_appended(settings, services) -> None:
    base = f"http://127.0.0.1:{settings.gateway_port}"
    tokens = {p.stem: p.read_text().strip() for p in settings.keys_dir.glob("*.token")}
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    fuzz = Fuzz(base, tokens, schema.raw_schema)
    start = {"submissions": await helpers.end_offsets(settings, registry.SUBMISSIONS),
             "events": await helpers.end_offsets(settings, registry.EVENTS)}
    started = time.monotonic()
    await asyncio.to_thread(_fuzz, fuzz, schema)
    await asyncio.to_thread(fuzz.settle)
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {sum(fuzz.statuses.values())} requests in {elapsed:.0f} s: {sorted(fuzz.statuses.items())}; "
          f"{len(fuzz.valid_event_ids)} valid event bodies; outcomes {fuzz.outcomes}")
    assert not any(k.endswith(tuple(f" {c}" for c in range(500, 600))) for k in fuzz.statuses)

    submitted = [registry.decode(v)[1]["envelope"]["event_id"]
                 for _, _, v in await _records_since(settings, registry.SUBMISSIONS, start["submissions"])]
    assert set(submitted) <= fuzz.valid_event_ids, "a submission came from a request the description calls invalid"
    # every entry appended during the run is an event the fuzzer was told was ACCEPTED at exactly that
    # position, and vice versa
    appended = [(registry.decode(v, "LedgerEntry")[1]["event_id"], p, o)
                for p, o, v in await _records_since(settings, registry.EVENTS, start["events"])]
    assert len(appended) == len(set(appended))
    assert fuzz.accepted <= set(appended), "an ACCEPTED answer names a position that holds another event"
    told = fuzz.accepted | {d for d in fuzz.duplicates if d[2] >= start["events"][d[1]]}
    assert set(appended) <= told, "an event was appended that no answer told of"
