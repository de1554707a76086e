"""A credit report as a document: its parts, its one byte form, its number and its signature (pure:
no database, no Kafka, no clock; the caller gives the date and the records).

A report is one JSON file (docs/architecture.md, "Credit reports"; docs/domain-notes.md §10.3):

    {"format": "credit-ledger-credit-report/1", "report_number": "XCCR-20261204-3F9A2C7B1D04E8A6",
     "body": {...}, "issuer_signature": {"key_id", "body_sha256", "signature"}}

written in its canonical form (`verify.canonical_json`: compact, keys sorted, UTF-8). The number is
the issue date and the first 16 hex digits of SHA-256 of the body's canonical form; the issuer signs
the number with the body's whole digest (`verify.report_message`). The body holds the subject, the
sections (what a reader sees: Chinese titles and cells, each row naming the ledger events it rests
on and which of its cells a record's own fields give), the records (each ledger entry, its leaf index
and inclusion proof in the signed tree head the body carries) and the Avro schemas by id. Every
definition the verifier checks (canonical form, digest, number, signed text, the Avro decoding of a
record) is the verifier's own (ledger/audit/verify.py), so issuer and verifier cannot drift apart.

A natural person's ledger entry holds the clear ID number inside the signed submission, and the
masked form leaves only the birth date unknown (a few thousand guesses against the leaf hash), so
such a record goes without its bytes: its leaf hash is proven, its facts are the masked ones. The
same holds for any entry whose bytes hold something shaped like an ID number (docs/domain-notes.md §10.3),
and for any step of an objection or a repair application whose bytes hold what the public views leave
out (`NOT_PUBLIC`: the contact and the telephone number, the objection's reason, the application's
statement, the credit office's notes): its facts go without those fields.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ledger.audit import verify
from ledger.audit.merkle import leaf_hash
from ledger.domain import identity
from ledger.platform import signing

TITLE = "公共信用信息报告"
# who issues: the platform of the city programme (docs/domain-notes.md §10.2)
ISSUER_NAME = "信用许昌（许昌市公共信用信息共享平台）"
WITHHELD_PERSON = ("自然人的账本记录内含身份证号码原文，报告不附记录字节，以叶哈希证明其在账本中 "
                   "(a natural person's entry holds the clear ID number: proven by its leaf hash)")
WITHHELD_ID_SHAPED = ("记录内含形似身份证号码的内容，报告不附记录字节，以叶哈希证明其在账本中 "
                      "(the entry holds something shaped like an ID number: proven by its leaf hash)")
WITHHELD_NOT_PUBLIC = ("记录内含联系人、联系电话、异议理由、申请说明或办理说明等不公开的内容，报告不附记录字节，以叶哈希证明其在"
                       "账本中 (the entry holds a contact, a telephone number or text the public views leave out: "
                       "proven by its leaf hash)")
# the fields of the objection and repair families that no public view holds (views.objections and
# views.repair_applications keep the rest): an entry with any of them filled is withheld, its facts without them
NOT_PUBLIC = {"ObjectionFiled": ("reason", "evidence", "contact_name", "contact_phone"),
              "ObjectionForwarded": ("note",),
              "RepairApplied": ("statement", "contact_name", "contact_phone"),
              "RepairAccepted": ("note",)}
SCOPE = ("本报告载明出具日在信用许昌公示的该主体信息：登记信息、公示期内的行政许可和行政处罚、红黑名单记录"
         "（含已移出）、信用承诺、公共信用评价及其依据、信用修复记录、信用信息异议和信用修复申请的办理情况。"
         "已过公示期、已修复或已撤销的行政处罚等依规不再公示的记录，本报告不载。")
PROVES = ("每条记录附其在账本（credit.events）签名树中的包含证明：企业等组织的记录附账本原始字节，可据以重算"
          "各行所标注的取值；自然人的记录，以及含联系电话、异议理由等不公开内容的记录，仅附叶哈希。"
          "树头由公证服务签名；报告编号含报告正文摘要，出具方对编号与摘要签名。"
          "不能证明的：账本中该主体在所签树头之后的记录。")


@dataclass(frozen=True)
class Row:
    """One line of a section: its cells by column key (text as shown), the ledger events it rests
    on, and the cells a record's own fields give: column -> (event id, dotted path in its facts)."""

    cells: dict[str, str]
    event_ids: tuple[str, ...]
    proven: dict[str, tuple[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"cells": dict(self.cells), "event_ids": list(self.event_ids),
                "proven": {k: list(v) for k, v in self.proven.items()}}


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    columns: tuple[tuple[str, str], ...]  # (key, Chinese title), in order
    rows: tuple[Row, ...]
    empty: str  # what the reader sees when there is no row
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "columns": [list(c) for c in self.columns],
                "rows": [r.to_json() for r in self.rows], "empty": self.empty, "note": self.note}


@dataclass(frozen=True)
class Record:
    """A ledger record as a report proves it."""

    event_id: str
    version: int
    event_type: str
    department: str
    sequenced_at: str  # ISO, UTC
    kafka_offset: int
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    leaf: bytes
    entry: bytes | None  # the LedgerEntry bytes; None when withheld
    withheld: str | None
    schema_id: int
    facts: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": self.event_id, "version": self.version, "event_type": self.event_type,
            "department": self.department, "sequenced_at": self.sequenced_at, "kafka_offset": self.kafka_offset,
            "leaf_index": self.leaf_index, "inclusion_proof": [h.hex() for h in self.inclusion_proof],
            "schema_id": self.schema_id, "facts": self.facts}
        if self.entry is not None:
            out["entry"] = base64.b64encode(self.entry).decode()
        else:
            out["leaf_hash"], out["withheld"] = self.leaf.hex(), self.withheld
        return out


# an event id (a UUID in its canonical form): its hex digits between hyphens can read as an ID number run
# (ID_NUMBER_RUN allows a hyphen between digits), but it is an identifier the ledger made, never an ID number
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def id_shaped(data: bytes) -> bool:
    """Do these bytes hold, anywhere outside the event ids (UUIDs), a run that could be an ID number
    (identity.ID_NUMBER_RUN)?"""
    text = _UUID.sub(" ", unicodedata.normalize("NFKC", data.decode("utf-8", "replace")))
    return identity.ID_NUMBER_RUN.search(text) is not None


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str) and identity.ID_NUMBER_RUN.search(value):  # the rest of the text as it is
        return identity.ID_NUMBER_RUN.sub(lambda m: identity.mask_ric(identity.normalise(m.group())), value)
    if isinstance(value, str) and identity.ID_NUMBER_RUN.search(unicodedata.normalize("NFKC", value)):
        return identity.mask_id_numbers(value)  # full-width digits: the text in its NFKC form
    return value


def proven_record(raw: bytes, *, offset: int, leaf_index: int, proof: list[bytes], schemas: dict[str, str],
                  person: bool, public_id: str) -> Record:
    """A record of the report from its LedgerEntry bytes: its facts are its submission decoded as the
    verifier decodes it; a natural person's (or an ID-shaped) entry is withheld and its facts masked, and
    so is an entry holding what no public view shows (`NOT_PUBLIC`), its facts without those fields."""
    entry = verify.parse_ledger_entry(raw)
    sid, facts = verify.decode_submission(entry["submission"], schemas)
    private = NOT_PUBLIC.get(entry["event_type"], ())
    withheld = (WITHHELD_PERSON if person else WITHHELD_ID_SHAPED if id_shaped(raw) else
                WITHHELD_NOT_PUBLIC if any(facts.get(f) not in (None, "") for f in private) else None)
    if withheld is not None:
        facts = {k: v for k, v in facts.items() if k not in private}
        subject = facts.get("envelope", {}).get("subject")
        if isinstance(subject, dict):
            subject["id"] = public_id
        facts = masked(facts)
    return Record(entry["event_id"], entry["entity_version"], entry["event_type"], entry["department"],
                  _iso_ms(entry["sequenced_at"]), offset, leaf_index, tuple(proof), leaf_hash(raw),
                  None if withheld else raw, withheld, sid, facts)


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Issuer:
    """The report issuer's Ed25519 key pair (hex)."""

    private_key: str
    public_key: str

    @property
    def key_id(self) -> str:
        return verify.key_id(self.public_key)


@dataclass(frozen=True)
class Issued:
    number: str
    document: bytes  # the report file, exactly
    digest: bytes  # SHA-256 of the body's canonical form


def body(*, issued_on: date, subject: dict[str, Any], ledger: dict[str, Any], head: dict[str, Any],
         sections: list[Section], records: list[Record], schemas: dict[str, str], issuer: Issuer,
         departments: dict[str, str]) -> dict[str, Any]:
    """The report body (plain JSON values only). Every row's events must be among `records`;
    `departments` names the departments (id -> name) of the records."""
    proven = {r.event_id for r in records}
    missing = sorted({e for s in sections for row in s.rows for e in row.event_ids} - proven)
    if missing:
        raise ValueError(f"rows name events that are not among the records: {missing}")
    return {
        "title": TITLE, "issuer": {"name": ISSUER_NAME, "key_id": issuer.key_id},
        "issued_on": issued_on.isoformat(), "subject": subject, "ledger": ledger, "tree_head": head,
        "sections": [s.to_json() for s in sections], "records": [r.to_json() for r in records],
        "schemas": dict(sorted(schemas.items(), key=lambda kv: int(kv[0]))),
        "departments": {d: departments.get(d, d) for d in sorted({r.department for r in records})},
        "scope": SCOPE, "proves": PROVES, "how_to_verify": how_to_verify(),
    }


def issue(report_body: dict[str, Any], issuer: Issuer) -> Issued:
    """Number and sign a body: the report file in its canonical form."""
    digest = verify.body_digest(report_body)
    number = verify.report_number(report_body["issued_on"], digest)
    signature = signing.sign(issuer.private_key, verify.report_message(number, digest, issuer.key_id))
    report = {"format": verify.REPORT_FORMAT, "report_number": number, "body": report_body,
              "issuer_signature": {"key_id": issuer.key_id, "body_sha256": digest.hex(), "signature": signature.hex()}}
    return Issued(number, verify.canonical_json(report), digest)


def how_to_verify(number: str = "<报告编号>") -> str:
    return (f"离线核验：从信用许昌公示网站下载 verify.py、notary.pub（公证公钥）和 report-issuer.pub（出具方公钥），"
            f"运行 python verify.py --report {number}.json --public-key notary.pub --issuer-key report-issuer.pub，"
            "显示 VERIFIED 即报告自出具后未被改动、所载记录均在公证签名的账本中；"
            f"报告原件可按编号取回：/reports/{number}.json。")


def qr_payload(report: dict[str, Any]) -> str:
    """What the report's QR code holds: its number and the signed tree head it rests on."""
    head = report["body"]["tree_head"]
    return (f"{report['report_number']}\n{head['topic']}/{head['partition']} tree_size={head['tree_size']} "
            f"key_id={head['key_id']}\nroot={head['root']}")
