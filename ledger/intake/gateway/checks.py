"""What the gateway judges about one JSON event before it submits anything, pure.

In order: `authorize` (403: the envelope names another department than the token's, or the
department matrix forbids the event type), the family's Avro schema (ledger/intake/openapi.py; 400
naming each field), the event id, then `precheck` (the subject's identifier, checked as the sequencer
will: ledger.records.submissions.check_subject). `encode` encodes the record and refuses one too
large for Kafka. `admit` (403: the department matrix does not let this gateway attest for the
department) and `client_signature` (400: a bad X-Content-Signature) judge the request itself. Each refusal is an IntakeRefused naming the fields; the sequencer still
judges everything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from ledger.domain import identity
from ledger.domain import rules as domain_rules
from ledger.domain.errors import Rejection
from ledger.domain.model import check_event_id
from ledger.intake import openapi
from ledger.intake.gateway.errors import IntakeRefused
from ledger.intake.openapi import Invalid, Problem
from ledger.records import submissions
from schemas import registry

INTAKE = "ledger-gateway"  # the gateway's name in the department matrix and its key's file name
MAX_RECORD_BYTES = 1_000_000  # the producer's max request size is 1 MiB, headers included


def authorize(matrix: domain_rules.DepartmentMatrix, department: str, obj: Any) -> None:
    """403 before anything else is judged: the envelope names another department, or the matrix
    forbids the event type to the caller (read from the JSON as sent, when it is there at all)."""
    env = obj.get("envelope") if isinstance(obj, dict) else None
    if not isinstance(env, dict):
        return
    named = env.get("source_department")
    if isinstance(named, str) and named != department:
        raise IntakeRefused(403, [Problem("envelope.source_department", "department.mismatch",
                                          f"信封中的报送部门“{openapi.echo(named)}”不是令牌所属部门 {department} "
                                          f"(the event names another department than the token's, {department})")])
    event_type = env.get("event_type")
    if isinstance(event_type, str) and event_type in domain_rules.EVENT_TYPES:
        try:
            matrix.authorize(department, event_type)
        except Rejection as r:
            field_ = "envelope.event_type" if r.code == "department.not_authorized" else "envelope.source_department"
            raise IntakeRefused(403, [Problem(field_, r.code, r.message)]) from None


class KnownSubjects:
    """The entity ids of identifiers that passed the check, by a digest of the identifier (no clear
    ID number kept), so that departments submitting about the same entities pay for the check once.
    One per app; when full it starts afresh."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._ids: dict[bytes, str] = {}

    @staticmethod
    def digest(id_type: str, raw: str) -> bytes:
        return hashlib.sha256(f"{id_type}:{raw}".encode("utf-8", errors="surrogatepass")).digest()

    def get(self, digest: bytes) -> str | None:
        return self._ids.get(digest)

    def add(self, digest: bytes, entity_id: str) -> None:
        if len(self._ids) >= self.size:
            self._ids.clear()
        self._ids[digest] = entity_id


def precheck(record: dict[str, Any], pepper: bytes, known: KnownSubjects | None = None) -> str:
    """The subject's identifier, checked as the sequencer will (it still judges it); returns its
    entity id, or Invalid naming envelope.subject.id. With `known`, identifiers that passed are
    remembered by digest."""
    subject = record["envelope"]["subject"]
    digest = KnownSubjects.digest(subject["id_type"], subject["id"])
    if known is not None and (entity_id := known.get(digest)) is not None:
        return entity_id
    try:
        ident = submissions.check_subject(subject)
    except Rejection as r:  # the sequencer's field, subject.id, is in the envelope of the JSON
        raise Invalid([Problem(f"envelope.{r.field}", r.code, r.message)]) from None
    entity_id = identity.entity_key(ident, pepper)
    if known is not None:
        known.add(digest, entity_id)
    return entity_id


def prepare(matrix: domain_rules.DepartmentMatrix, department: str, obj: Any, pepper: bytes,
            known: KnownSubjects | None = None) -> tuple[str, dict[str, Any], str]:
    """Everything the gateway judges about one JSON event, pure: (family, Avro-ready record, entity
    id), or IntakeRefused (403 forbidden, 400 invalid) naming the fields."""
    authorize(matrix, department, obj)
    try:
        name, record = openapi.decode_event(obj)
        check_event_id(record["envelope"]["event_id"], field="envelope.event_id")
        entity_id = precheck(record, pepper, known)
    except Invalid as exc:
        raise IntakeRefused(400, exc.problems) from None
    except Rejection as r:
        raise IntakeRefused(400, [Problem(r.field, r.code, r.message)]) from None
    return name, record, entity_id


def encode(record: dict[str, Any], extra: int = 0) -> tuple[bytes, bytes]:
    """The (key, value) of a prepared record on credit.submissions, not yet attested; IntakeRefused
    400 if Avro cannot write it or it is too large for Kafka (`extra`: bytes of headers it will carry)."""
    try:
        key, value = submissions.encode(record)
    except registry.SchemaError as exc:  # the decoder let through what Avro cannot write: still a 400
        raise IntakeRefused(400, [Problem("(record)", "schema.invalid",
                                          f"无法按数据格式编码 (cannot be encoded: {exc})")]) from None
    if len(value) + extra > MAX_RECORD_BYTES:
        raise IntakeRefused(400, [Problem("(record)", "record.too_large",
                                          f"事件过大：{len(value) + extra} 字节，上限 {MAX_RECORD_BYTES} "
                                          f"(the encoded event and the signed body it keeps have {len(value) + extra} "
                                          f"bytes; at most {MAX_RECORD_BYTES})")])
    return key, value


def admit(matrix: domain_rules.DepartmentMatrix, department: str) -> None:
    """403 before the body is read: the department matrix does not let this gateway attest for the
    token's department (a system or sector department signs its submissions with its own key)."""
    try:
        matrix.authorize_intake(INTAKE, department)
    except Rejection as r:
        raise IntakeRefused(403, [Problem("Authorization", r.code, r.message)]) from None


SIGNATURE_HEADER = "X-Content-Signature"


def client_signature(header: str, body: bytes, department: str, public_key_hex: str | None,
                     event_id: str) -> bytes:
    """The raw Ed25519 signature of X-Content-Signature (base64), checked as the sequencer will
    check it: by the department's public key over the exact body, a body that is this event.
    IntakeRefused 400 naming the header and why otherwise."""
    def refuse(code: str, message: str) -> IntakeRefused:
        return IntakeRefused(400, [Problem(SIGNATURE_HEADER, code, message)])

    try:
        signature = base64.b64decode(header.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise refuse("client_signature.malformed", f"{SIGNATURE_HEADER} 不是 base64 编码的签名 (the header is not "
                                                   "a base64 Ed25519 signature)") from None
    if len(signature) != 64:
        raise refuse("client_signature.malformed", f"{SIGNATURE_HEADER} 应为 64 字节的 Ed25519 签名，实为 "
                                                   f"{len(signature)} 字节 (an Ed25519 signature has 64 bytes, "
                                                   f"this one {len(signature)})")
    if public_key_hex is None:
        raise refuse("client_signature.no_key", f"未登记部门 {department} 的公钥，无法核验 {SIGNATURE_HEADER} (no public "
                                                f"key of {department} is registered with this gateway to check the header)")
    try:
        submissions.check_client_signature(body, signature, public_key_hex, department, event_id)
    except Rejection as r:
        raise refuse(r.code, f"{SIGNATURE_HEADER}: {r.message}") from None
    return signature
