"""Credit reports against the real stack (Kafka, PostgreSQL, every service: the sequencer judges, the
projector folds, the notary signs heads, the query API issues the report from the views and the log).

Given an organisation with an event of every family, when its report is asked for, then the JSON
verifies offline with the verifier alone (standard library and cryptography, in an empty
directory), every record byte for byte but the steps of objections and repair applications that hold
a telephone number or the subject's reasons (by their leaf hash); each section shows what the portal
shows (penalties and licences inside their window, lists of every status, the grade's reasons,
commitments, repairs, and each objection and repair application step by step: an open objection, an
answered one, a refused and a granted repair application), the families the rules keep off public
display are left out, and no telephone number, contact or reason is in the JSON or the PDF; the same day and state give the same
number, which returns the file as issued, and the PDF says the same. One byte changed anywhere is
rejected with what failed. A natural person's report holds no clear ID number, in the JSON or the
PDF, and verifies by leaf hashes."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pypdfium2
import pytest

from ledger.audit import verify
from ledger.client import submit_as_departments
from ledger.domain.rules import EVENT_TYPES as ALL_EVENT_TYPES
from ops import workload
from ops import workload_objections as wo
from projections.report import document, issue
from tests import helpers

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "reports"
# the families whose records are not on public display for this entity (so not in its report): a
# penalty's and a licence's withdrawal end their display; tax ratings other than A are not published;
# sector feedback is between departments
# every family an entity's own record can hold: a 红黑榜 release's approval is an event of its publisher,
# the credit office, and never of a reported entity
EVENT_TYPES = ALL_EVENT_TYPES - {"ListReleaseApproved"}
OFF_DISPLAY = {"AdministrativeLicenceRevoked", "AdministrativePenaltyRevoked", "TaxCreditRated",
               "PunishmentFeedbackReported"}


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def get(self, path: str, **params: str) -> tuple[int, bytes, dict[str, str]]:
        """GET, asking again while the notary has not yet signed a head covering the entity (503)."""
        for _ in range(12):
            async with self.session.get(self.base + path, params=params) as r:
                body = await r.read()
                if r.status != 503:
                    return r.status, body, dict(r.headers)
            await asyncio.sleep(5)
        raise AssertionError(f"{path}: still 503 after a minute: {body[:300]!r}")


@pytest.fixture(scope="module")
async def api(settings, services):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Api(session, f"http://127.0.0.1:{settings.api_port}")


async def _submit(settings, phases: list[workload.Phase]) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    outcomes = []
    for phase in phases:
        outcomes += await submit_as_departments(settings, phase)
    assert [(o["status"], o["reasons"]) for o in outcomes if o["status"] != "ACCEPTED"] == []
    return outcomes


def _after(outcomes: list[dict[str, Any]]) -> str:
    last = max(outcomes, key=lambda o: o["ledger_offset"])
    return f"{last['ledger_partition']}:{last['ledger_offset']}"


# what the filings hold that no public view shows (ops/workload_objections.py): never in a report
NOT_PUBLIC = ("0374-5551234", "13900000000", "欧阳若溪", "司马长风", "处罚决定书载明的罚款金额与公示金额不一致", "公示期已满仍在公示",
              "已缴清罚款并完成整改", "请核实后三个工作日内反馈", "材料齐全，予以受理")


@pytest.fixture(scope="module")
async def company(settings, api):  # type: ignore[no-untyped-def]
    """An organisation with every event family, and a penalty and a licence still on display; its
    objections and repair applications (wo.request_history: one answered CORRECTED after a forward,
    one UPHELD, a repair granted and one refused) and an objection still open against the penalty on
    display."""
    rng = helpers.rng("credit-report")
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    n, today = rng.randrange(10**5), helpers.today()
    phases = workload.every_family_on_display(rng, subject, n, today)
    recent, licence_no = phases[-2][0][1], phases[-1][0][1]["licence_no"]
    open_objection = wo.objection_filed(subject, wo.event_id(phases[-2][0]), today)
    phases += wo.request_history(subject, str(n), today) + [[open_objection]]
    outcomes = await _submit(settings, phases)
    assert {r["envelope"]["event_type"] for phase in phases for _, r in phase} == EVENT_TYPES
    entity = outcomes[0]["entity_id"]
    status, raw, headers = await api.get(f"/entities/{entity}/report.json", after=_after(outcomes), wait="30")
    assert status == 200, raw[:400]
    return {"entity": entity, "subject": subject, "raw": raw, "headers": headers, "outcomes": outcomes,
            "recent": recent, "licence_no": licence_no, "open": wo.event_id(open_objection)}


def _keys(settings, directory: Path) -> None:  # type: ignore[no-untyped-def]
    """What a reader downloads: the verifier itself and the two public keys."""
    shutil.copy(ROOT / "ledger" / "audit" / "verify.py", directory / "verify.py")
    shutil.copy(settings.keys_dir / "notary" / "notary.pub", directory / "notary.pub")
    shutil.copy(issue.issuer_keys_dir(settings.keys_dir) / "report-issuer.pub", directory / "report-issuer.pub")


def _verify(directory: Path, report: str) -> subprocess.CompletedProcess[str]:
    """The stand-alone verifier, in isolated mode (no project on its path), in the reader's directory."""
    return subprocess.run([sys.executable, "-I", "verify.py", "--report", report, "--public-key", "notary.pub",
                           "--issuer-key", "report-issuer.pub"], cwd=directory, capture_output=True, text=True,
                          timeout=120)


async def test_a_report_for_an_entity_with_every_event_family(settings, api, company, tmp_path) -> None:
    report = json.loads(company["raw"])
    number, body = report["report_number"], report["body"]
    assert company["headers"]["Content-Disposition"] == f'attachment; filename="{number}.json"'
    _keys(settings, tmp_path)
    (tmp_path / f"{number}.json").write_bytes(company["raw"])
    run = _verify(tmp_path, f"{number}.json")
    assert run.returncode == 0, run.stdout + run.stderr
    records = body["records"]
    assert run.stdout.startswith(f"VERIFIED: credit report {number} of {company['subject'].name}")
    # the filings, and the forward and the acceptance with their notes, by their leaf hash; the rest in full
    withheld = [r["event_type"] for r in records if "entry" not in r]
    assert sorted(withheld) == ["ObjectionFiled"] * 3 + ["ObjectionForwarded", "RepairAccepted"] + ["RepairApplied"] * 2
    assert all(r["withheld"] == document.WITHHELD_NOT_PUBLIC for r in records if "entry" not in r)
    assert f"{len(records) - 7} byte for byte" in run.stdout and "7 by their leaf hash only" in run.stdout

    # every family on display is proven by its own ledger entry; the others are left out by rule
    in_report = {r["event_type"] for r in records}
    assert in_report == EVENT_TYPES - OFF_DISPLAY
    by_event = {o["event_id"]: o for o in company["outcomes"]}
    for r in records:
        o = by_event[r["event_id"]]
        assert (r["version"], r["kafka_offset"]) == (o["entity_version"], o["ledger_offset"])
    assert body["ledger"] == {"topic": "credit.events", "partition": company["outcomes"][0]["ledger_partition"],
                              "entity_version": len(company["outcomes"]), "last_change": body["ledger"]["last_change"]}

    sections = {s["key"]: s for s in body["sections"]}
    assert list(sections) == ["registration", "publicity", "black_lists", "red_lists", "commitments", "evaluation",
                              "repairs", "objections"]
    publicity = sections["publicity"]
    assert sorted(r["cells"]["ref"] for r in publicity["rows"]) == sorted([company["recent"]["decision_no"],
                                                                           company["licence_no"]])
    licence_row = next(r for r in publicity["rows"] if r["cells"]["ref"] == company["licence_no"])
    assert len(licence_row["event_ids"]) == 2  # the grant and its change
    # the older penalties and licence, and the penalties of the objection corrected and of the repair granted
    assert "另有 6 条记录已过公示期、已修复或已撤销" in publicity["note"]
    statuses = sorted(r["cells"]["status"].split("（")[0] for r in sections["black_lists"]["rows"])
    assert statuses == ["已到期", "已移出", "已移出", "已移出", "有效"]
    red = {r["cells"]["ref"]: r for r in sections["red_lists"]["rows"]}
    assert red["许政〔2023〕7号"]["cells"]["status"].startswith("已到期")
    assert red["许信办〔2025〕2号"]["cells"]["status"].startswith("已撤销")
    assert len(red["许信办〔2025〕2号"]["event_ids"]) == 3  # awarded, suspended by a black listing, revoked
    assert [r["cells"]["target"] for r in sections["repairs"]["rows"]] == ["行政处罚信息"] * 2
    assert len(sections["commitments"]["rows"]) == len(sections["registration"]["rows"]) == 1
    reasons = [r["cells"]["reason"] for r in sections["evaluation"]["rows"]]
    assert any("政府采购禁止参加名单" in x for x in reasons) and any("行政处罚信息公示期内" in x for x in reasons)
    assert all(r["proven"] for s in ("registration", "publicity", "black_lists", "commitments", "repairs")
               for r in sections[s]["rows"])
    _check_matters(sections["objections"], company, {r["event_id"]: r for r in records})

    # the same day and state: the same report; its number returns the file as issued
    status, again, _ = await api.get(f"/entities/{company['entity']}/report.json")
    assert (status, again) == (200, company["raw"])
    status, kept, _ = await api.get(f"/reports/{number}.json")
    assert (status, kept) == (200, company["raw"])
    status, pdf_bytes, headers = await api.get(f"/entities/{company['entity']}/report.pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf" and pdf_bytes.startswith(b"%PDF")
    status, kept_pdf, _ = await api.get(f"/reports/{number}.pdf")
    assert (status, kept_pdf) == (200, pdf_bytes)
    assert b"/FontFile2" in pdf_bytes
    pdf = pypdfium2.PdfDocument(pdf_bytes)
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf))).replace("\r\n", "")
    for expected in (number, "核验方法", "verify.py --report", company["subject"].name, company["recent"]["decision_no"],
                     "失信名单记录", "信用修复", "附：账本记录与包含证明", "异议与信用修复申请", company["open"],
                     "异议处理中", "已更正", "予以修复"):
        assert expected in text, expected
    assert [x for x in NOT_PUBLIC if x in text or x in company["raw"].decode()] == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf[0].render(scale=1.6).to_pil().save(ARTIFACTS / "test-every-family-p1.png")


def _check_matters(section: dict[str, Any], company: dict[str, Any], records: dict[str, Any]) -> None:
    """The objections and repair applications: each matter's steps in order, each done step on its own
    record, the open objection's steps pending."""
    matters: dict[str, list[dict[str, Any]]] = {}
    for row in section["rows"]:
        matters.setdefault(row["cells"]["receipt"], []).append(row)
    assert len(matters) == 5 and sum(1 for r in matters if r.startswith("YY")) == 3
    summary = {receipt: (rows[0]["cells"]["matter"].rsplit("当前状态：", 1)[1], rows[-1]["cells"]["result"],
                         [r["cells"]["step"] for r in rows]) for receipt, rows in matters.items()}
    assert summary[company["open"]] == ("已受理，异议处理中", "", ["受理（异议标注）", "转办信息提供单位", "答复申请人"])
    assert sorted(summary.values()) == sorted([
        ("已受理，异议处理中", "", ["受理（异议标注）", "转办信息提供单位", "答复申请人"]),
        ("已答复", "已更正", ["受理（异议标注）", "转办信息提供单位", "信息提供单位核实反馈", "答复申请人"]),
        ("已答复", "维持原记录", ["受理（异议标注）", "答复申请人"]),
        ("已作出决定", "予以修复", ["提交申请", "受理", "作出修复决定"]),
        ("不予受理", "不予受理", ["提交申请", "不予受理"])])
    for rows in matters.values():
        for row in rows:
            done = row["cells"]["done_on"] != "待办"
            assert len(row["event_ids"]) >= 1 if done else row["event_ids"] == [], row
            assert all(records[e]["event_type"] in EVENT_TYPES for e in row["event_ids"])
            assert set(row["proven"]) >= ({"receipt", "done_on"} if done else set()), row
    granted = next(rows[-1] for rows in matters.values() if rows[-1]["cells"]["result"] == "予以修复")
    assert [records[e]["event_type"] for e in granted["event_ids"]] == ["CreditRepaired", "RepairDecided"]  # by version


def _flip(raw: bytes, at: int) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:]


async def test_one_byte_changed_is_rejected_by_the_verifier(settings, company, tmp_path) -> None:
    raw = company["raw"]
    report = json.loads(raw)
    body = report["body"]
    _keys(settings, tmp_path)

    def at(text: str, start: int = 0) -> int:
        found = raw.find(text.encode(), start)
        assert found >= 0, text
        return found

    record = body["records"][1]
    reason = body["sections"][2]["rows"][0]["cells"]["reason"]
    objections = next(s for s in body["sections"] if s["key"] == "objections")
    step = next(r for r in objections["rows"] if r["cells"]["step"] == "答复申请人" and r["event_ids"])
    answer = next(r for r in body["records"] if r["event_id"] == step["event_ids"][0])
    places = {
        "a cell's text": (at(json.dumps(reason, ensure_ascii=False)) + 1, "does not match the report's content"),
        "a step's date": (at(f'"done_on":"{step["cells"]["done_on"]}"', at('"key":"objections"')) + 14,
                          "does not match the report's content"),
        "an objection's answer": (at(answer["entry"]) + 60, "does not match the report's content"),
        "a record's bytes": (at(record["entry"]) + 40, "does not match the report's content"),
        "an inclusion proof": (at(record["inclusion_proof"][0]) + 1, "does not match the report's content"),
        "the report number": (at(report["report_number"]) + 20, "does not match the report's content"),
        "the issuer's signature": (at(report["issuer_signature"]["signature"]) + 5,
                                   "does not verify under the issuer's public key"),
        "the JSON's punctuation": (at('"body":') + 7, "not a JSON report"),
        "a key's name": (at('"issuer_signature"') + 2, "a report has exactly the fields"),
    }
    for name, (offset, reason) in places.items():
        (tmp_path / "changed.json").write_bytes(_flip(raw, offset))
        run = _verify(tmp_path, "changed.json")
        assert run.returncode == 1 and run.stdout.startswith("REJECTED: "), (name, run.stdout, run.stderr)
        assert reason in run.stdout, (name, run.stdout)
    (tmp_path / "spaced.json").write_bytes(raw.replace(b'{"body"', b'{ "body"', 1))
    assert "canonical form at byte 1" in _verify(tmp_path, "spaced.json").stdout
    notary_key = (settings.keys_dir / "notary" / "notary.pub").read_text().strip()
    issuer_key = issue.issuer_public_key(settings.keys_dir) or ""
    verify.verify_report(raw, notary_key, issuer_key)
    for offset in range(0, len(raw), max(1, len(raw) // 500)):  # some 500 places across the whole file
        with pytest.raises(verify.VerificationFailed):
            verify.verify_report(_flip(raw, offset), notary_key, issuer_key)


async def test_a_natural_person_s_report_holds_no_clear_id_number(settings, api, tmp_path) -> None:
    rng = random.Random(helpers.rng("person-report").random())
    person = workload.subjects(rng, 1, persons_share=1.0)[0]
    today = helpers.today()
    events = [workload.penalty(rng, person, "xc-samr", rng.randrange(10**6), decided=today - timedelta(days=2)),
              workload.debtor_listed(person, f"（{today.year}）豫10执{rng.randrange(10**5)}号", today - timedelta(days=1))]
    outcomes = await _submit(settings, [[("xc-samr", events[0]), events[1]]])
    entity = outcomes[0]["entity_id"]
    assert entity.startswith("ric:")
    status, raw, _ = await api.get(f"/entities/{entity}/report.json", after=_after(outcomes), wait="30")
    assert status == 200, raw[:300]
    status, pdf_bytes, _ = await api.get(f"/entities/{entity}/report.pdf")
    assert status == 200
    pdf = pypdfium2.PdfDocument(pdf_bytes)
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    birth = person.id[6:14]
    for where, content in (("json", raw.decode()), ("pdf text", text), ("pdf bytes", pdf_bytes.decode("latin-1"))):
        assert person.id not in content and birth not in content, where
    assert (person.id[:6] + "********" + person.id[14:]) in raw.decode()
    body = json.loads(raw)["body"]
    assert body["records"] and all("entry" not in r and r["withheld"] == document.WITHHELD_PERSON
                                   for r in body["records"])
    _keys(settings, tmp_path)
    (tmp_path / "person.json").write_bytes(raw)
    run = _verify(tmp_path, "person.json")
    assert run.returncode == 0 and f"{len(body['records'])} by their leaf hash only" in run.stdout, run.stdout
    log = (settings.stack_dir / "logs" / "query-api.log").read_text(encoding="utf-8", errors="replace")
    assert person.id not in log and entity in log


async def test_errors_name_the_problem(api) -> None:
    status, raw, _ = await api.get("/entities/uscc:91411002MA00000000/report.json")
    assert status == 404 and "unknown entity" in json.loads(raw)["error"]
    status, raw, _ = await api.get("/entities/411002199001010012/report.pdf")
    assert status == 400 and json.loads(raw)["parameter"] == "entity_id"
    assert "411002199001010012" not in raw.decode()
    status, raw, _ = await api.get("/reports/XCCR-20261204-0000000000000000.json")
    assert status == 404 and "XCCR-20261204-0000000000000000" in json.loads(raw)["error"]
    status, raw, _ = await api.get("/reports/XCCR-1.pdf")
    assert status == 400 and json.loads(raw)["parameter"] == "number"
    status, raw, _ = await api.get("/reports/issuer-key")
    assert status == 200 and json.loads(raw)["key_id"] == verify.key_id(json.loads(raw)["public_key"])
