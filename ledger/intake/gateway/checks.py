"""What the gateway judges about one JSON event before it submits anything, pure.

In order: `authorize` (403: the envelope names another department than the token's, or the
department matrix forbids the event type), the family's Avro schema (ledger/intake/openapi.py; 400
naming each field), the event id, then `precheck` (the subject's identifier, checked as the sequencer
will: ledger.records.submissions.check_subject). `sign` encodes and signs the record and refuses
one too large for Kafka. Each refusal is an IntakeRefused naming the fields; the sequencer still
judges everything.
"""

from __future__ import annotations

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


def sign(department: str, private_key: str, record: dict[str, Any]) -> tuple[bytes, bytes, list[Any]]:
    """The submission of a prepared record: (key, value, headers), signed with the department's key;
    IntakeRefused 400 if Avro cannot write it or it is too large for Kafka."""
    try:
        key, value, headers = submissions.make(record, department, private_key)
    except registry.SchemaError as exc:  # the decoder let through what Avro cannot write: still a 400
        raise IntakeRefused(400, [Problem("(record)", "schema.invalid",
                                          f"无法按数据格式编码 (cannot be encoded: {exc})")]) from None
    if len(value) > MAX_RECORD_BYTES:
        raise IntakeRefused(400, [Problem("(record)", "record.too_large",
                                          f"事件过大：{len(value)} 字节，上限 {MAX_RECORD_BYTES} "
                                          f"(the encoded event has {len(value)} bytes; at most {MAX_RECORD_BYTES})")])
    return key, value, headers
