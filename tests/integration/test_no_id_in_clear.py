"""Given the running stack, when departments type resident ID numbers into the credit-code field —
Xuchang numbers of current and historical address codes (411002, 411023, 411021, 411022, 412624),
each of which ALSO passes the credit code's mod-31 check character — through every route (the
gateway, one event and a batch; the Avro client; a CSV file through the importer), then each is
refused with the field named, except an individual business's CSV row whose code column holds the
operator's number, which is filed under the operator as a natural person (docs/domain-notes.md
§1.8); and no public view, query-API answer, portal page, CSV export, import report, credit report
or log line of the stack holds a value shaped like an ID number in clear. Credit codes with a made-up
division (characters 3-8) or a prefix GB 32100 does not allow are refused on every route too. Sources of the
new department matrix (departments.v2) submit with their generated keys and tokens."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ledger.domain import identity
from ops import workload
from tests import helpers

# Each passes both the GB 11643 check and the GB 32100 mod-31 check (tests/unit/test_identity.py).
PLANTED = ["411023199003150016", "41100219850315018X", "412624198003150388", "411021198703151178",
           "411022199103150228"]
OPERATOR = "411023199003150016"  # the individual business's operator, filed as a natural person by the CSV row
ID_SHAPED = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def clear_ids(text: str) -> set[str]:
    """Every value in ``text`` shaped like a resident ID number (real address code of any period,
    real birth date, right check character), and every planted number however it is spaced."""
    found = {m for m in ID_SHAPED.findall(text) if identity.has_id_number_shape(m.upper())}
    squeezed = re.sub(r"[\s\-]", "", text)
    return found | {n for n in PLANTED if n in squeezed or n.lower() in squeezed}


def as_json(record: dict[str, Any]) -> Any:
    return json.loads(json.dumps(record, ensure_ascii=False, default=lambda o: o.isoformat()))


def with_code(record: dict[str, Any], code: str) -> dict[str, Any]:
    record["envelope"]["subject"] = {"id": code, "id_type": "USCC", "name": "许昌瑞祥商贸有限公司"}
    return record


# a real division and prefix, each made wrong once
MADE_UP_DIVISION = workload.make_uscc(helpers.rng("division"), "91", "419900")
MADE_UP_PREFIX = workload.make_uscc(helpers.rng("prefix"), "94", "411002")
BAD_CODES = {**{n: "uscc.resident_id" for n in PLANTED}, MADE_UP_DIVISION: "uscc.division",
             MADE_UP_PREFIX: "uscc.prefix"}


def _csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _csv_row(n: int, kind: str, code: str, name: str) -> dict[str, str]:
    authority, authority_code = workload.ALL_PENALTY_DEPARTMENTS["xc-housing"]
    decided = helpers.today().isoformat()
    return {"CF_XDR_MC": name, "CF_XDR_LB": kind, "CF_XDR_SHXYM": code, "CF_FRDB": "王伟",
            "CF_WSH": f"许建罚〔2026〕{helpers.rng('csv-tag').randrange(10**5, 10**6)}{n}号",
            "CF_WFXW": "未取得施工许可证擅自施工", "CF_SY": "经查，事实清楚。",
            "CF_YJ": "《中华人民共和国建筑法》第六十四条", "CF_CFLB": "罚款", "CF_NR": "罚款5000元",
            "CF_NR_FK": "0.5", "CF_JDRQ": decided, "CF_CFJG": authority, "CF_CFJGDM": authority_code,
            "CF_SJLY": authority, "CF_SJLYDM": authority_code}


@pytest.fixture(scope="module")
async def http(services):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture(scope="module")
async def routes(settings, http):  # type: ignore[no-untyped-def]
    """Every route, each given every bad code; returns what each answered."""
    rng = helpers.rng("no-id-in-clear")
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    token = (settings.keys_dir / "xc-transport.token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    answers: dict[str, list[tuple[str, Any]]] = {"single": [], "batch": [], "client": []}
    texts: list[str] = []
    for code in BAD_CODES:
        record = with_code(workload.penalty(rng, subject, "xc-transport", rng.randrange(10**6)), code)
        async with http.post(f"{gateway}/v1/events", json=as_json(record), headers=auth) as r:
            text = await r.text()
            texts.append(text)
            answers["single"].append((code, (r.status, json.loads(text))))
    batch = [as_json(with_code(workload.penalty(rng, subject, "xc-transport", rng.randrange(10**6)), c))
             for c in BAD_CODES]
    async with http.post(f"{gateway}/v1/events:batch", json=batch, headers=auth) as r:
        text = await r.text()
        texts.append(text)
        answers["batch"].append(("all", (r.status, json.loads(text))))
    async with helpers.client(settings, "xc-court-yuzhou") as court:
        for code in BAD_CODES:
            listed = with_code(workload.debtor_listed(subject, f"（2026）豫1081执{rng.randrange(10**4)}号",
                                                      helpers.today())[1], code)
            listed["envelope"]["source_department"] = "xc-court-yuzhou"
            outcome = await court.submit_and_wait(listed)
            texts.append(json.dumps(outcome, ensure_ascii=False, default=str))
            answers["client"].append((code, outcome))
    # the importer: an individual business carrying its operator's ID number, then every bad code
    # for a company
    rows = [_csv_row(0, "个体工商户", OPERATOR, "许昌市建安区宏达五金商行")]
    rows += [_csv_row(i, "法人及非法人组织", code, "许昌瑞祥商贸有限公司") for i, code in enumerate(BAD_CODES, start=1)]
    path = settings.stack_dir / "no-id-in-clear.csv"
    path.write_bytes(_csv(rows))
    report = settings.stack_dir / "no-id-in-clear.report.csv"
    run = subprocess.run([sys.executable, "-m", "ledger.intake.importer", "--department", "xc-housing",
                          "--no-progress", "--report", str(report), str(path)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    texts += [run.stdout, run.stderr, report.read_text(encoding="utf-8-sig")]
    # wait until the views hold whatever was accepted (read-your-writes through the query API)
    positions = [f"{b['ledger_partition']}:{b['ledger_offset']}" for _, (_, b) in answers["single"]
                 if b.get("ledger_offset") is not None]
    positions += [f"{o['ledger_partition']}:{o['ledger_offset']}" for _, o in answers["client"]
                  if o.get("ledger_offset") is not None]
    with open(report, encoding="utf-8-sig", newline="") as f:
        positions += [row["ledger_position"] for row in csv.DictReader(f) if row["ledger_position"]]
    last: dict[str, int] = {}
    for position in positions:
        partition, offset = position.split(":")
        last[partition] = max(last.get(partition, -1), int(offset))
    for partition, offset in last.items():
        async with http.get(f"http://127.0.0.1:{settings.api_port}/positions",
                            params={"after": f"{partition}:{offset}", "wait": "30"}) as r:
            assert r.status == 200, await r.text()
    return {"answers": answers, "texts": texts, "import": run, "report": report}


async def test_every_route_refuses_an_id_number_in_the_code_field_naming_the_field(routes) -> None:
    for code, (status, body) in routes["answers"]["single"]:
        assert status == 400, body
        assert [(p["field"], p["code"]) for p in body["reasons"]] == [("envelope.subject.id", BAD_CODES[code])]
    (_, (status, body)), = routes["answers"]["batch"]
    assert status == 400 and "nothing was submitted" in body["error"]
    assert sorted((p["index"], p["code"]) for p in body["reasons"]) == list(enumerate(BAD_CODES.values()))
    for code, outcome in routes["answers"]["client"]:
        assert outcome["status"] == "REJECTED"
        assert [(r["field"], r["code"]) for r in outcome["reasons"]] == [("subject.id", BAD_CODES[code])]
    for text in routes["texts"]:
        assert clear_ids(text) == set(), text[:300]


def test_the_importer_files_the_operator_as_a_natural_person_and_refuses_the_rest(routes) -> None:
    with open(routes["report"], encoding="utf-8-sig", newline="") as f:
        report = {int(row["row"]): row for row in csv.DictReader(f)}
    assert routes["import"].returncode == 1, routes["import"].stdout  # some rows refused
    first, *rest = [report[n] for n in sorted(report)]
    assert len(rest) == len(BAD_CODES)
    assert first["status"] in ("ACCEPTED", "FLAGGED"), first
    words = {"uscc.resident_id": "公民身份号码", "uscc.division": "行政区划代码", "uscc.prefix": "GB 32100"}
    for row, expected in zip(rest, BAD_CODES.values(), strict=True):
        assert row["status"] == "REFUSED-BEFORE-SUBMISSION" and "统一社会信用代码" in row["field"], row
        assert words[expected] in row["reason"], row


async def test_nothing_public_holds_an_id_number_in_clear(settings, http, routes) -> None:
    person = identity.entity_key(identity.check_ric(OPERATOR), settings.id_pepper)
    texts: list[str] = []
    # every table of the views the query API and the portal read
    tables = helpers.pg_rows(settings, "SELECT table_schema, table_name FROM information_schema.tables "
                                       "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
    assert tables
    for schema, table in tables:
        texts += [str(row[0]) for row in helpers.pg_rows(settings, f'SELECT t::text FROM "{schema}"."{table}" t')]
        # a bytea column's text is hex: its bytes are read as UTF-8 too (the ledger copy keeps the entries' bytes)
        texts += [bytes(v).decode("utf-8", "replace") for row in helpers.pg_rows(
            settings, f'SELECT * FROM "{schema}"."{table}"') for v in row if isinstance(v, (bytes, memoryview))]
    operator_rows = helpers.pg_rows(settings, "SELECT count(*) FROM views.entities WHERE entity_id = %s", (person,))
    assert operator_rows == [(1,)], "the individual business's operator is filed as a natural person"
    api = f"http://127.0.0.1:{settings.api_port}"
    portal = f"http://127.0.0.1:{settings.portal_port}"
    gets = [(api, f"/entities/{person}", {}), (api, f"/entities/{person}/history", {}),
            (api, "/lists", {}), (api, "/lists", {"format": "csv"}), (api, "/publicity", {}),
            (api, "/publicity", {"entity": person}), (api, "/publicity/lateness", {}), (api, "/coverage", {}),
            (api, "/reports/measures", {}), (api, "/reports/measures", {"format": "csv"}), (api, "/metrics", {}),
            (portal, "/", {}), (portal, f"/entity/{person}", {}), (portal, "/lists", {}),
            (portal, "/publication", {}), (portal, "/publication.csv", {}), (portal, "/dashboard", {}),
            (portal, "/metrics", {})]
    for number in PLANTED:
        gets += [(api, "/lookup", {"id": number}), (api, "/trigger", {"entity": number, "action": "x"}),
                 (portal, "/search", {"q": number}), (portal, "/search", {"q": f"{number[:6]} {number[6:]}"})]
    for base, path, params in gets:
        async with http.get(base + path, params=params or None) as r:
            body = await r.text(encoding="utf-8")
            assert r.status < 500, (path, params, body[:300])
            texts.append(body)
    # the operator's credit report (asked again while the notary's head does not cover its records yet)
    for _ in range(24):
        async with http.get(f"{api}/entities/{person}/report.json") as r:
            if r.status != 503:
                assert r.status == 200, await r.text()
                texts.append(await r.text(encoding="utf-8"))
                break
        await asyncio.sleep(5)
    else:
        raise AssertionError("no credit report of the operator within two minutes")
    async with http.get(api + "/lookup", params={"id": OPERATOR}) as r:
        profile = await r.json()
        assert (r.status, profile["entity_id"], profile["id_type"]) == (200, person, "RIC"), profile
        assert profile["public_id"] == identity.mask_ric(OPERATOR)
    # every log line the stack's services wrote
    logs = sorted(Path(settings.stack_dir, "logs").glob("*.log"))
    assert logs
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in logs]
    leaks = {n for text in texts + routes["texts"] for n in clear_ids(text)}
    assert leaks == set(), f"ID numbers in clear: {sorted(identity.mask_ric(n) for n in leaks)}"


async def test_new_source_departments_submit_with_generated_keys_and_tokens(settings, http) -> None:
    rng = helpers.rng("new-departments")
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    for department in ("xc-health", "xc-medical-insurance", "xc-pbc", "xc-emergency"):
        record = workload.penalty(rng, subject, department, rng.randrange(10**6))
        token = (settings.keys_dir / f"{department}.token").read_text().strip()
        async with http.post(f"{gateway}/v1/events", json=as_json(record), params={"timeout": "20"},
                             headers={"Authorization": f"Bearer {token}"}) as r:
            body = await r.json()
            assert (r.status, body["status"]) == (200, "ACCEPTED"), body
    # the matrix still holds: a basic court may list debtors, not impose penalties
    async with helpers.client(settings, "xc-court-changge") as court:
        wrong = workload.penalty(rng, subject, "xc-samr", rng.randrange(10**6))
        wrong["envelope"]["source_department"] = "xc-court-changge"
        outcome = await court.submit_and_wait(wrong)
        assert (outcome["status"], outcome["reasons"][0]["code"]) == ("REJECTED", "department.not_authorized")
