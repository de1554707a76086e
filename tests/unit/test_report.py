"""Credit reports built in memory from real records (workload events encoded with the project's
Avro schemas, sealed into the hash chain as the sequencer seals them, notarised in an RFC 9162 tree
with a signed head): an honest report verifies offline; one byte changed anywhere in the file is
rejected; a report re-signed by the issuer after its rows were changed is rejected by what its
records say; a natural person's records go without their bytes and with the ID number masked; the
verifier's stand-alone Avro reader decodes every sample as fastavro does; the PDF embeds its font
and holds the number, the QR payload and the line on how to verify it."""

from __future__ import annotations

import base64
import io
import json
import random
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fastavro
import pypdfium2
import pytest

from ledger.audit import merkle, notary, verify
from ledger.audit.verify import VerificationFailed, verify_report
from ledger.platform import signing
from ledger.records import chain
from ledger.rules import loader
from ops import workload
from ops import workload_objections as wo
from projections.report import document, pdf, sections
from projections.report.document import Row, Section
from schemas import registry, subjects

NOTARY_PRIV, NOTARY_PUB = signing.new_keypair()
ISSUER = document.Issuer(*signing.new_keypair())
SAMPLES = Path(__file__).resolve().parent / "schema_samples"
COMPANY = workload.Subject("91411002MA9GX7LD1A", "USCC", "许昌瑞祥食品有限公司")
PERSON = workload.Subject("411002199001010012", "RIC", "张伟")
PERSON_ENTITY = "ric:" + "ab" * 16


def _entry(entity: str, version: int, prev: bytes, record: dict[str, Any], department: str) -> bytes:
    name = record["envelope"]["event_type"]
    e = {"entity_id": entity, "entity_version": version, "event_id": record["envelope"]["event_id"],
         "event_type": name, "category": "enterprise", "department": department,
         "sequenced_at": datetime(2026, 11, 2, 8, 0, version, tzinfo=UTC), "submission_partition": 0,
         "submission_offset": version, "warnings": [], "submission": registry.encode(name, record),
         "signature": b"\x01" * 64, "prev_hash": prev, "hash": b""}
    return chain.seal(e)


class World:
    """One partition: a company's and a person's entries among other entities', notarised and signed."""

    def __init__(self, events: list[tuple[str, dict[str, Any]]], person_events: list[tuple[str, dict[str, Any]]]) -> None:
        self.records: list[tuple[int, bytes, str]] = []
        prev = {"uscc:" + COMPANY.id: chain.GENESIS, PERSON_ENTITY: chain.GENESIS}
        version = dict.fromkeys(prev, 0)
        filler = workload.subjects(random.Random(7), 1, persons_share=0.0)[0]
        queue = [("uscc:" + COMPANY.id, d, r) for d, r in events] + [(PERSON_ENTITY, d, r) for d, r in person_events]
        for i, (entity, department, rec) in enumerate(queue):
            version[entity] += 1
            raw = _entry(entity, version[entity], prev[entity], rec, department)
            prev[entity] = verify.parse_ledger_entry(raw)["hash"]
            self.records.append((3 * i, raw, entity))
            other = _entry("uscc:" + filler.id, i + 1, prev.get("filler", chain.GENESIS),
                           workload.registered(filler, date(2020, 1, 2))[1], "xc-samr")
            prev["filler"] = verify.parse_ledger_entry(other)["hash"]
            self.records.append((3 * i + 1, other, "filler"))
        self.leaves = [merkle.leaf_hash(r) for _, r, _ in self.records]
        size = len(self.leaves)
        self.head = notary.Signer(NOTARY_PRIV, NOTARY_PUB).head(2, size, merkle.mth(self.leaves),
                                                               self.records[-1][0], 1_795_000_000_000)

    def proof(self, index: int) -> list[bytes]:
        return merkle.inclusion_path(index, len(self.leaves), lambda s, n: merkle.mth(self.leaves[s:s + n]))

    def report(self, entity: str, sections_of: Any, person: bool = False) -> document.Issued:
        schemas: dict[str, str] = {}
        records = []
        for index, (offset, raw, e) in enumerate(self.records):
            if e != entity:
                continue
            sid = registry.schema_id_of(verify.parse_ledger_entry(raw)["submission"])
            schemas[str(sid)] = subjects.schema_text(sid)
            records.append(document.proven_record(raw, offset=offset, leaf_index=index, proof=self.proof(index),
                                                  schemas=schemas, person=person,
                                                  public_id="411002********0012" if person else COMPANY.id))
        subject = ({"entity_id": entity, "name": PERSON.name, "public_id": "411002********0012", "id_type": "RIC",
                    "category": "individual", "category_title": "自然人"} if person else
                   {"entity_id": entity, "name": COMPANY.name, "public_id": COMPANY.id, "id_type": "USCC",
                    "category": "enterprise", "category_title": "企业"})
        body = document.body(issued_on=date(2026, 12, 4), subject=subject, head=self.head.to_json(),
                             sections=sections_of(records), records=records, schemas=schemas, issuer=ISSUER,
                             departments={"xc-samr": "许昌市市场监督管理局", "xc-court": "许昌市中级人民法院"},
                             ledger={"topic": "credit.events", "partition": 2, "entity_version": len(records),
                                     "last_change": records[-1].sequenced_at})
        return document.issue(body, ISSUER)


def company_events() -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(11)
    return [workload.registered(COMPANY, date(2019, 4, 1)),
            workload.workload_penalty(rng, COMPANY, "xc-samr", "许市监罚〔2026〕C00017号", date(2026, 9, 1), "general"),
            workload.debtor_listed(COMPANY, "（2026）豫10执00017号", date(2026, 5, 10))]


def company_sections(records: list[document.Record]) -> list[Section]:
    reg, pen, debt = records
    return [
        Section("registration", "基本登记信息", (("authority", "登记机关"), ("registered_on", "登记日期")),
                (Row({"authority": reg.facts["registration_authority"], "registered_on": "2019-04-01"}, (reg.event_id,),
                     {"authority": (reg.event_id, "registration_authority"),
                      "registered_on": (reg.event_id, "registered_on")}),), "无"),
        Section("publicity", "行政许可和行政处罚（双公示）", (("ref", "文号"), ("content", "内容")),
                (Row({"ref": "许市监罚〔2026〕C00017号", "content": pen.facts["content"]}, (pen.event_id,),
                     {"ref": (pen.event_id, "decision_no")}),), "无"),
        Section("black_lists", "失信名单记录（含已移出）", (("ref", "案号"), ("listed_on", "列入日期")),
                (Row({"ref": "（2026）豫10执00017号", "listed_on": "2026-05-10"}, (debt.event_id,),
                     {"ref": (debt.event_id, "case_no"), "listed_on": (debt.event_id, "listed_on")}),), "无"),
        Section("repairs", "信用修复", (("repair_no", "修复决定文号"),), (), "无信用修复记录。"),
    ]


@pytest.fixture(scope="module")
def world() -> World:
    rng = random.Random(5)
    person = [workload.penalty(rng, PERSON, "xc-samr", 41, decided=date(2026, 10, 9))]
    return World(company_events(), [("xc-samr", person[0])])


@pytest.fixture(scope="module")
def issued(world: World) -> document.Issued:
    return world.report("uscc:" + COMPANY.id, company_sections)


def test_an_honest_report_verifies_offline(issued: document.Issued) -> None:
    v = verify_report(issued.document, NOTARY_PUB, ISSUER.public_key)
    assert (v.number, v.records, v.withheld, v.rows) == (issued.number, 3, 0, 3)
    assert re.fullmatch(r"XCCR-20261204-[0-9A-F]{16}", issued.number)
    assert issued.number.endswith(issued.digest.hex()[:16].upper())
    report = json.loads(issued.document)
    assert verify.canonical_json(report) == issued.document
    # the same body gives the same number and the same bytes (Ed25519 signatures are deterministic)
    assert document.issue(report["body"], ISSUER) == issued


def test_every_single_byte_changed_is_rejected() -> None:
    """Each byte of a whole report file (one record, so that the sweep stays short), changed in turn."""
    small = World(company_events()[:1], []).report("uscc:" + COMPANY.id, lambda rs: [Section(
        "registration", "基本登记信息", (("authority", "登记机关"),),
        (Row({"authority": rs[0].facts["registration_authority"]}, (rs[0].event_id,),
             {"authority": (rs[0].event_id, "registration_authority")}),), "无")])
    raw = small.document
    verify_report(raw, NOTARY_PUB, ISSUER.public_key)
    passed = []
    for i in range(len(raw)):
        changed = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1:]
        try:
            verify_report(changed, NOTARY_PUB, ISSUER.public_key)
        except VerificationFailed:
            continue
        passed.append(i)
    assert passed == [], f"bytes whose change went unnoticed: {passed[:10]}"


def _resigned(issued: document.Issued, change: Any) -> bytes:
    """The report with its body changed by `change`, numbered and signed again with the issuer's own key:
    what an issuer (or a thief of its key) could make; the records must still catch it."""
    report = json.loads(issued.document)
    change(report["body"])
    return document.issue(report["body"], ISSUER).document


@pytest.mark.parametrize(("what", "change", "reason"), [
    ("a proven cell", lambda b: b["sections"][2]["rows"][0]["cells"].__setitem__("ref", "（2026）豫10执99999号"),
     "its ref '（2026）豫10执99999号' is not what event"),
    ("a record's facts", lambda b: b["records"][1]["facts"].__setitem__("fine_fen", 1),
     "facts are not what its submission bytes say"),
    ("a row naming an unproven event", lambda b: b["sections"][1]["rows"][0]["event_ids"].append("made-up"),
     "names event made-up, which is not among"),
    ("a record's bytes", lambda b: b["records"][0].__setitem__(
        "entry", base64.b64encode(base64.b64decode(b["records"][0]["entry"])[:-1] + b"\x00").decode()),
     "does not lead to the signed root"),
    ("another entity's subject", lambda b: b["subject"].__setitem__("entity_id", "uscc:91411002MA9GX7LD2B"),
     "entity_id is 'uscc:91411002MA9GX7LD1A'"),
    ("a record dropped and the versions kept", lambda b: b["records"].__setitem__(0, b["records"][1]),
     "versions and leaf indexes must increase"),
    ("the tree head", lambda b: b["tree_head"].__setitem__("tree_size", b["tree_head"]["tree_size"] + 1),
     "signature does not verify under the notary's public key"),
])
def test_a_report_signed_again_after_a_change_is_rejected(issued: document.Issued, what: str, change: Any,
                                                          reason: str) -> None:
    with pytest.raises(VerificationFailed, match=re.escape(reason)):
        verify_report(_resigned(issued, change), NOTARY_PUB, ISSUER.public_key)


def test_the_first_failure_is_named(issued: document.Issued) -> None:
    raw = issued.document
    cases = {
        "reformatted": (json.dumps(json.loads(raw), ensure_ascii=False, indent=1).encode(), "canonical form at byte 1"),
        "renumbered": (raw.replace(issued.number.encode(),
                                   (issued.number[:-1] + ("1" if issued.number.endswith("0") else "0")).encode()),
                       "does not match the report's content"),
        "other issuer": (raw, "made with key"),
        "other notary": (raw, "signed with key"),
        "not json": (raw[:-20], "not a JSON report"),
    }
    keys = {"other issuer": (NOTARY_PUB, signing.new_keypair()[1]), "other notary": (signing.new_keypair()[1],
                                                                                     ISSUER.public_key)}
    for name, (data, reason) in cases.items():
        notary_key, issuer_key = keys.get(name, (NOTARY_PUB, ISSUER.public_key))
        with pytest.raises(VerificationFailed, match=re.escape(reason)):
            verify_report(data, notary_key, issuer_key)


def test_a_natural_person_s_records_go_without_bytes_and_masked(world: World) -> None:
    issued = world.report(PERSON_ENTITY, lambda rs: [Section(
        "publicity", "行政许可和行政处罚（双公示）", (("ref", "文号"),),
        (Row({"ref": rs[0].facts["decision_no"]}, (rs[0].event_id,), {"ref": (rs[0].event_id, "decision_no")}),),
        "无")], person=True)
    text = issued.document.decode()
    assert PERSON.id not in text and "19900101" not in text
    v = verify_report(issued.document, NOTARY_PUB, ISSUER.public_key)
    assert (v.records, v.withheld) == (1, 1)
    rec = json.loads(text)["body"]["records"][0]
    assert "entry" not in rec and rec["withheld"] == document.WITHHELD_PERSON
    assert rec["facts"]["envelope"]["subject"]["id"] == "411002********0012"
    assert rec["leaf_hash"] == world.leaves[rec["leaf_index"]].hex()


def test_an_organisation_s_entry_with_an_id_number_in_its_text_is_withheld() -> None:
    rec = workload.penalty(random.Random(3), COMPANY, "xc-samr", 9, decided=date(2026, 10, 9))
    rec["facts"] = f"经查，当事人雇员（身份证号 {PERSON.id}）销售过期食品。"
    raw = _entry("uscc:" + COMPANY.id, 1, chain.GENESIS, rec, "xc-samr")
    schemas = {"101": subjects.schema_text(101)}
    r = document.proven_record(raw, offset=0, leaf_index=0, proof=[], schemas=schemas, person=False,
                               public_id=COMPANY.id)
    assert r.entry is None and r.withheld == document.WITHHELD_ID_SHAPED
    assert PERSON.id not in json.dumps(r.to_json(), ensure_ascii=False)
    assert r.facts["facts"] == "经查，当事人雇员（身份证号 411002********0012）销售过期食品。"


def _json_form(value: Any) -> Any:
    """fastavro's decoded value in the verifier's JSON form (dates ISO, times in ms, bytes hex)."""
    if isinstance(value, dict):
        return {k: _json_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_form(v) for v in value]
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def test_the_verifier_decodes_every_sample_as_fastavro_does() -> None:
    """Every event family's samples (the records a ledger entry carries as its submission)."""
    checked = 0
    for path in sorted(SAMPLES.glob("*.jsonl")):
        name, version = path.stem.split(".v")
        if name not in subjects.families():
            continue
        schema_id = next(s.id for s in registry.catalogue().by_id.values()
                         if s.name == name and s.version == int(version))
        schemas = {str(schema_id): subjects.schema_text(schema_id)}
        for line in path.read_text(encoding="utf-8").splitlines():
            data = registry.encode(name, registry.from_json(name, json.loads(line)), version=int(version))
            sid, decoded = verify.decode_submission(data, schemas)
            writer = registry.catalogue().by_id[sid]  # fastavro with the writer's schema, as the project reads
            expected = fastavro.schemaless_reader(io.BytesIO(data[5:]), writer.parsed, None)
            assert (sid, decoded) == (schema_id, _json_form(expected)), path.name
            checked += 1
    assert checked >= 20


def test_the_pdf_embeds_its_font_and_says_how_to_verify(issued: document.Issued, tmp_path: Path) -> None:
    report = json.loads(issued.document)
    data = pdf.render(report)
    assert data.startswith(b"%PDF") and b"/FontFile2" in data and pdf.FONT.encode() in data
    assert pdf.render(report) == data  # the same report, the same PDF
    page = pypdfium2.PdfDocument(data)[0]
    text = page.get_textpage().get_text_range()
    for expected in (issued.number, "公共信用信息报告", "核验方法", "verify.py", COMPANY.name, "许市监罚〔2026〕C00017号"):
        assert expected in text.replace("\r\n", "").replace("\n", ""), expected
    payload = document.qr_payload(report)
    assert payload.startswith(issued.number + "\n") and report["body"]["tree_head"]["root"] in payload


# ----------------------------------------------------------------------------- objections and repair applications

PENALTY = workload.workload_penalty(random.Random(21), COMPANY, "xc-samr", "许市监罚〔2026〕C00021号", date(2026, 9, 1),
                                    "general")
FILED = wo.objection_filed(COMPANY, wo.event_id(PENALTY), date(2026, 11, 2))
FORWARDED = wo.objection_forwarded(COMPANY, wo.event_id(FILED), "xc-samr", date(2026, 11, 3))
ANSWERED = wo.objection_answered(COMPANY, wo.event_id(FILED), "xc-samr", "UPHELD", date(2026, 11, 5))
APPLIED = wo.repair_applied(COMPANY, wo.event_id(PENALTY), date(2026, 11, 10))
REFUSED = wo.repair_refused(COMPANY, wo.event_id(APPLIED), date(2026, 11, 16))
# their rows as views.objections and views.repair_applications hold them (objection_queries.entity_matters)
OBJECTION_ROW = {
    "receipt_no": wo.event_id(FILED), "target_event_id": wo.event_id(PENALTY), "record_kind": "administrative_penalty",
    "record_ref": "许市监罚〔2026〕C00021号", "grounds": "error", "status": "answered", "result": "UPHELD",
    "correcting_event_id": None, "received_on": "2026-11-02", "forward_due": "2026-11-06", "forwarded_on": "2026-11-03",
    "forwarded_to": "xc-samr", "forward_late": False, "source_due": "2026-11-06", "answer_due": "2026-11-11",
    "answered_on": "2026-11-05", "answered_by": "xc-samr", "answer_late": False, "source_late": False,
    "explanation": ANSWERED[1]["explanation"]}
REPAIR_ROW = {
    "receipt_no": wo.event_id(APPLIED), "target_event_id": wo.event_id(PENALTY), "record_kind": "administrative_penalty",
    "record_ref": "许市监罚〔2026〕C00021号", "status": "refused", "result": None, "repair_event_id": None,
    "received_on": "2026-11-10", "accept_due": "2026-11-13", "accepted_on": None, "refused_on": "2026-11-16",
    "refusal_reason": REFUSED[1]["reason"], "accept_late": True, "decide_due": "2026-11-24", "decided_on": None,
    "decide_late": None, "explanation": None}
PRIVATE = ("0374-5551234", "13900000000", "欧阳若溪", "司马长风", FILED[1]["reason"], APPLIED[1]["statement"],
           FORWARDED[1]["note"], FILED[1]["evidence"])


def matters_report(change: Any = None) -> document.Issued:
    events = [PENALTY, FILED, FORWARDED, ANSWERED, APPLIED, REFUSED]
    history = [{"event_id": wo.event_id(p), "event_type": p[1]["envelope"]["event_type"], "record": p[1]}
               for p in events]
    ctx = sections.Context("uscc:" + COMPANY.id, date(2026, 12, 4), loader.load(), history, {})
    rows = sections.matter_rows(ctx, "objection", OBJECTION_ROW) + sections.matter_rows(ctx, "repair", REPAIR_ROW)
    section = Section("objections", "异议与信用修复申请", sections.MATTER_COLUMNS, tuple(rows), "无")
    return World(events, []).report("uscc:" + COMPANY.id, lambda records: [section])


@pytest.fixture(scope="module")
def matters() -> document.Issued:
    return matters_report()


def test_objections_and_repair_applications_each_step_on_its_own_entry(matters: document.Issued) -> None:
    v = verify_report(matters.document, NOTARY_PUB, ISSUER.public_key)
    body = json.loads(matters.document)["body"]
    # (the world proves every record of the entity; a real report only those its rows name) the filings and
    # the forward (its note) hold what no view shows, so they go by their leaf hash; the answer and the refusal
    # in full, their cells recomputed from their bytes
    assert [(r["event_type"], r.get("withheld")) for r in body["records"]] == [
        ("AdministrativePenaltyImposed", None), ("ObjectionFiled", document.WITHHELD_NOT_PUBLIC), ("ObjectionForwarded", document.WITHHELD_NOT_PUBLIC),
        ("ObjectionAnswered", None), ("RepairApplied", document.WITHHELD_NOT_PUBLIC), ("RepairRefused", None)]
    assert (v.records, v.withheld, v.rows) == (6, 3, 6)
    rows = body["sections"][0]["rows"]
    assert [(r["cells"]["step"], r["cells"]["done_on"], r["cells"]["due"]) for r in rows] == [
        ("受理（异议标注）", "2026-11-02", "—"), ("转办信息提供单位", "2026-11-03", "2026-11-06（按期）"),
        ("信息提供单位核实反馈", "2026-11-05", "2026-11-06（按期）"), ("答复申请人", "2026-11-05", "2026-11-11（按期）"),
        ("提交申请", "2026-11-10", "—"), ("不予受理", "2026-11-16", "2026-11-13（超期）")]
    assert rows[0]["cells"]["matter"] == ("信用信息异议\n所涉记录：行政处罚 许市监罚〔2026〕C00021号\n异议类型：信息有误\n"
                                          "当前状态：已答复")
    assert (rows[3]["cells"]["result"], rows[3]["cells"]["explanation"]) == ("维持原记录", "经核实，原记录无误，予以维持。")
    assert (rows[5]["cells"]["result"], rows[5]["cells"]["explanation"]) == ("不予受理", REFUSED[1]["reason"])
    assert rows[3]["proven"] == {"receipt": [wo.event_id(ANSWERED), "receipt_no"],
                                 "done_on": [wo.event_id(ANSWERED), "answered_on"],
                                 "explanation": [wo.event_id(ANSWERED), "explanation"]}
    text = matters.document.decode()
    assert [p for p in PRIVATE if p in text] == []
    filed = body["records"][1]
    assert "contact_phone" not in filed["facts"] and filed["facts"]["grounds"] == "error"


def test_an_open_step_rests_on_no_event_and_says_whether_it_is_overdue() -> None:
    history = [{"event_id": wo.event_id(p), "event_type": p[1]["envelope"]["event_type"], "record": p[1]}
               for p in (PENALTY, FILED)]
    ctx = sections.Context("uscc:" + COMPANY.id, date(2026, 11, 9), loader.load(), history, {})
    row = {**OBJECTION_ROW, "status": "filed", "result": None, "forwarded_on": None, "forwarded_to": None,
           "forward_late": None, "source_due": None, "answered_on": None, "answered_by": None, "answer_late": None,
           "source_late": None, "explanation": None, "answer_due": "2026-11-05"}
    rows = sections.matter_rows(ctx, "objection", row)
    assert [(r.cells["step"], r.cells["done_on"], r.cells["due"], r.event_ids) for r in rows] == [
        ("受理（异议标注）", "2026-11-02", "—", (wo.event_id(FILED),)),
        ("转办信息提供单位", "待办", "2026-11-06（超期未办）", ()), ("答复申请人", "待办", "2026-11-05（超期未办）", ())]
    assert rows[0].cells["matter"].endswith("当前状态：已受理，异议处理中")


@pytest.mark.parametrize(("what", "change", "reason"), [
    ("a step's date", lambda rows: rows[3]["cells"].__setitem__("done_on", "2026-11-04"),
     "its done_on '2026-11-04' is not what event"),
    ("a receipt number", lambda rows: rows[5]["cells"].__setitem__("receipt", "XF20261110-00000000"),
     "its receipt 'XF20261110-00000000' is not what event"),
    ("a refusal's reason", lambda rows: rows[5]["cells"].__setitem__("explanation", "材料齐全。"),
     "its explanation '材料齐全。' is not what event"),
])
def test_a_changed_step_is_rejected_by_its_own_entry(matters: document.Issued, what: str, change: Any,
                                                     reason: str) -> None:
    resigned = _resigned(matters, lambda b: change(b["sections"][0]["rows"]))
    with pytest.raises(VerificationFailed, match=re.escape(reason)):
        verify_report(resigned, NOTARY_PUB, ISSUER.public_key)


def test_one_byte_changed_in_the_section_is_rejected(matters: document.Issued) -> None:
    raw = matters.document
    start, end = raw.index(b'"sections":[{'), raw.index(b'}],"subject":')  # the report's one section
    assert b'"key":"objections"' in raw[start:end]
    for offset in range(start, end, 7):
        with pytest.raises(VerificationFailed):
            verify_report(raw[:offset] + bytes([raw[offset] ^ 0x01]) + raw[offset + 1:], NOTARY_PUB, ISSUER.public_key)


def test_the_pdf_shows_the_section_in_chinese(matters: document.Issued) -> None:
    data = pdf.render(json.loads(matters.document))
    doc = pypdfium2.PdfDocument(data)
    text = "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc))).replace("\r\n", "")
    for expected in ("异议与信用修复申请", wo.event_id(FILED), "信息提供单位核实反馈", "2026-11-13（超期）", "维持原记录",
                     "异议答复", "修复申请不予受理"):
        assert expected in text, expected
    assert [p for p in PRIVATE if p in text] == []


def test_what_a_report_withholds_is_what_the_views_leave_out() -> None:
    """Every field of the seven families (but the envelope) is either a column of views.objections or
    views.repair_applications (under its own name, or the name given there), or one a report withholds,
    or one of the two an application's facts keep (a date and a yes, no one's words)."""
    from ledger.domain.objections import REQUEST_EVENTS
    from projections import views

    columns = {c.strip() for c in (views.OBJECTION_COLS + "," + views.REPAIR_COLS).split(",")}
    named_there = {"to_department": "forwarded_to", "reason": "refusal_reason"}  # RepairRefused's reason
    kept = {("RepairApplied", "corrected_on"), ("RepairApplied", "commitment")}
    for family in sorted(REQUEST_EVENTS):
        for f in registry.catalogue().latest[family].parsed["fields"]:
            name = f["name"]
            if name == "envelope" or name in document.NOT_PUBLIC.get(family, ()) or (family, name) in kept:
                continue
            assert name in columns or named_there.get(name) in columns, (family, name)


def test_an_event_id_whose_hex_reads_as_digits_is_not_an_id_number() -> None:
    # 15 digits joined by hyphens: the shape of an old ID number, inside an event id the ledger made
    assert not document.id_shaped(b'{"event_id": "12345678-1234-4567-8901-23456789abcd"}')
    assert document.id_shaped(b'{"facts": "411082200009015574"}')
    assert document.id_shaped(b'{"facts": "4110-8219-8001-011"}')
