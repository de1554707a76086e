"""What a submission on credit.submissions is, and how it is made and opened.

A submission is one framed Avro record of an event family (schemas/avro), with Kafka headers:
`department` (who speaks), `event-id`, `signature` and, in the batch scheme (ledger/records/batch.py:
one Ed25519 signature over the Merkle root of a batch of submissions), `batch` (the submission's
inclusion proof). Without `batch` the signature covers the value bytes themselves: the first scheme,
still accepted. `signer` names an intake (the HTTP gateway) when the signature is its attestation
rather than the department's own; `client-signature` and `client-body` carry a client's detached
signature over the exact HTTP body it sent. Its Kafka key is
`submission_key(subject)`: an unkeyed digest of the normalised identifier, so that one entity always
lands in the same partition and a clear ID number never appears in a key.

`open_submission` is the sequencer's front door: signature, authorization, schema, identity, key,
in that order; each refusal names the field and the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ledger.domain import identity
from ledger.domain.errors import Rejection
from ledger.domain.model import Event, check_event_id
from ledger.domain.rules import DepartmentMatrix
from ledger.platform import kafka_util, signing
from ledger.records import batch
from ledger.records.events import event_of
from schemas import registry


class Refused(Exception):
    def __init__(self, event_id: str, reason: Rejection) -> None:
        super().__init__(reason.message)
        self.event_id = event_id
        self.reason = reason


@dataclass(frozen=True)
class Opened:
    event: Event
    category: str
    warnings: list[str]
    record: dict[str, Any]


def check_subject(subject: dict[str, Any]) -> identity.Identity:
    if subject["id_type"] == "USCC":
        return identity.check_uscc(subject["id"], field="subject.id")
    return identity.check_ric(subject["id"], field="subject.id")


@lru_cache(maxsize=65536)
def submission_key(id_type: str, raw_id: str) -> bytes:
    """The Kafka key of a submission: a digest of the normalised identifier (not checked here: the
    sequencer judges it, so a malformed one still gets its refusal on credit.outcomes)."""
    return hashlib.sha256(f"{id_type}:{identity.normalise(raw_id)}".encode()).hexdigest()[:32].encode()


@lru_cache(maxsize=65536)
def partition_of(key: bytes, partitions: int = registry.SUBMISSIONS.partitions) -> int:
    """The credit.submissions partition of a key: Kafka's default partitioner (murmur2), so that any
    Kafka client agrees."""
    return kafka_util.partition_of(key, partitions)


Headers = list[tuple[str, bytes]]
Submission = tuple[bytes, bytes, Headers]  # key, value, headers: ready for credit.submissions


def encode(record: dict[str, Any]) -> tuple[bytes, bytes]:
    """A family record's (key, value) on credit.submissions, not yet signed."""
    env = record["envelope"]
    return submission_key(env["subject"]["id_type"], env["subject"]["id"]), registry.encode(env["event_type"], record)


def sign_batch(records: list[dict[str, Any]], values: list[bytes], department: str, private_key_hex: str,
               signer: str | None = None) -> list[Headers]:
    """The headers of each submission of a batch signed at once (ledger/records/batch.py): one
    signature over the batch's Merkle root, each submission with its proof. `signer` names an
    intake attesting for the department (None: the department signs)."""
    signature, proofs = batch.sign(values, signer or department, department, private_key_hex)
    dept = department.encode()
    common = [("signer", signer.encode())] if signer else []
    return [[("department", dept), ("event-id", r["envelope"]["event_id"].encode()), ("signature", signature),
             ("batch", p.encode()), *common] for r, p in zip(records, proofs, strict=True)]


def make_batch(records: list[dict[str, Any]], department: str, private_key_hex: str) -> list[Submission]:
    """Encode and sign family records as one batch; (key, value, headers) each, ready for credit.submissions."""
    encoded = [encode(r) for r in records]
    headers = sign_batch(records, [v for _, v in encoded], department, private_key_hex)
    return [(k, v, h) for (k, v), h in zip(encoded, headers, strict=True)]


def make(record: dict[str, Any], department: str, private_key_hex: str) -> Submission:
    """Encode and sign one family record (a batch of one)."""
    return make_batch([record], department, private_key_hex)[0]


def signer_of(headers: dict[str, bytes]) -> str:
    """Whose key signed: the `signer` header (an intake attesting for the department), else the department."""
    return (headers.get("signer") or headers.get("department", b"")).decode(errors="replace")


def _checkable(headers: dict[str, bytes], public_keys: dict[str, str]) -> tuple[str, str, bytes] | None:
    """(signer, department, signature) of a submission that has something to check: a department, a
    signature and a signer whose key is known; None otherwise (open_submission then says which)."""
    department = headers.get("department", b"").decode(errors="replace")
    signature = headers.get("signature", b"")
    signer = signer_of(headers)
    if not department or not signature or signer not in public_keys:
        return None
    return signer, department, signature


SignedBatch = tuple[str, str, int, bytes, bytes]  # signer, department, batch size, root, signature


def batch_claim(value: bytes, headers: dict[str, bytes], public_keys: dict[str, str]) -> SignedBatch | bool | None:
    """The part of a batch-scheme check that is the submission's own: its proof decoded and its path
    walked up to the root (a few SHA-256). None when there is nothing to check (no department,
    signature or known signer); False when the proof is malformed or does not lead to its root; else
    the signed batch it claims to be in, whose one signature remains to be checked (`batch_signed`),
    once for every submission of the batch."""
    checkable = _checkable(headers, public_keys)
    if checkable is None:
        return None
    signer, department, signature = checkable
    try:
        proof = batch.Proof.decode(headers.get("batch", b""))
    except batch.BadProof:
        return False
    if not batch.included(value, proof):
        return False
    return signer, department, proof.size, proof.root, signature


def batch_signed(claim: SignedBatch, public_keys: dict[str, str]) -> bool:
    """The batch's Ed25519 signature over its message (signer, department, size, root)."""
    signer, department, size, root, signature = claim
    return signing.verify(public_keys[signer], batch.message(signer, department, size, root), signature)


def signature_valid(value: bytes, headers: dict[str, bytes], public_keys: dict[str, str]) -> bool | None:
    """The signature check of one submission alone (None when there is nothing to check: no
    department, signature or known signer). In the batch scheme the value must lead to the signed
    root by its proof, and the signature must cover that root; without a `batch` header the
    signature covers the value (the first scheme). For many submissions at once, `VerifiedBatches`
    checks each distinct batch's signature once."""
    if "batch" in headers:
        claim = batch_claim(value, headers, public_keys)
        return batch_signed(claim, public_keys) if isinstance(claim, tuple) else claim
    checkable = _checkable(headers, public_keys)
    if checkable is None:
        return None
    signer, _department, signature = checkable
    return signing.verify(public_keys[signer], value, signature)


@dataclass
class PendingChecks:
    """A poll's signature checks, planned by `VerifiedBatches.plan`: the results known already (paths
    walked, batches verified before), the first-scheme submissions to verify one by one, and each
    distinct signed batch still to verify once, with the submissions that claim it."""

    results: list[bool | None]
    singles: list[int]
    batches: dict[SignedBatch, list[int]]
    cached: int = 0  # submissions whose batch signature was verified by an earlier poll


class VerifiedBatches:
    """The signed batches whose signature already verified, newest last, at most `capacity` of them:
    one department batch spans several polls and partitions, and each of its submissions then costs
    only its inclusion path. Only verified signatures are remembered."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._known: OrderedDict[SignedBatch, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    def plan(self, items: list[tuple[bytes, dict[str, bytes]]], public_keys: dict[str, str]) -> PendingChecks:
        """Walk each batch-scheme submission's path; group the rest of the work (see PendingChecks)."""
        pending = PendingChecks([None] * len(items), [], {})
        for i, (value, headers) in enumerate(items):
            if "batch" not in headers:
                pending.singles.append(i)
                continue
            claim = batch_claim(value, headers, public_keys)
            if not isinstance(claim, tuple):
                pending.results[i] = claim
            elif claim in self._known:
                self._known.move_to_end(claim)
                pending.results[i] = True
                pending.cached += 1
            else:
                pending.batches.setdefault(claim, []).append(i)
        return pending

    def settle(self, pending: PendingChecks, singles: list[bool | None], batches: list[bool]) -> list[bool | None]:
        """The results, given the one-by-one checks (in `pending.singles` order) and each pending
        batch's signature check (in `pending.batches` order); verified batches are remembered."""
        results = pending.results
        for i, ok in zip(pending.singles, singles, strict=True):
            results[i] = ok
        for (claim, members), ok in zip(pending.batches.items(), batches, strict=True):
            for i in members:
                results[i] = ok
            if ok:
                self._known[claim] = None
                self._known.move_to_end(claim)
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)
        return results

    def check(self, items: list[tuple[bytes, dict[str, bytes]]], public_keys: dict[str, str]) -> list[bool | None]:
        """plan, verify and settle in this thread."""
        pending = self.plan(items, public_keys)
        return self.settle(pending, [signature_valid(*items[i], public_keys) for i in pending.singles],
                           [batch_signed(c, public_keys) for c in pending.batches])


def open_submission(key: bytes | None, value: bytes, headers: dict[str, bytes], public_keys: dict[str, str],
                    pepper: bytes, matrix: DepartmentMatrix, partition: int | None = None,
                    verified: bool | None = None, rules_versions: dict[str, int] | None = None) -> Opened:
    """Open a submission; `verified` is the result of signature_valid when the caller already ran it;
    `rules_versions`, the versions of the rules files it will be judged under, goes on its Event."""
    event_id = headers.get("event-id", b"").decode(errors="replace") or \
        "unidentified-" + hashlib.sha256(value).hexdigest()[:16]

    def refuse(field: str, code: str, message: str) -> Refused:
        return Refused(event_id, Rejection(field, code, message))

    department = headers.get("department", b"").decode(errors="replace")
    signature = headers.get("signature", b"")
    if not department or not signature:
        raise refuse("signature", "signature.missing",
                     "提交未签名：缺少部门或签名 (the submission carries no department signature)")
    signer = signer_of(headers)
    if department not in public_keys:
        raise refuse("source_department", "department.unknown",
                     f"未知的报送部门 {department} (this department is not registered with the ledger)")
    if signer not in public_keys:
        raise refuse("signer", "signer.unknown",
                     f"未知的签名方 {signer} (no key is registered for the signer {signer})")
    try:
        if signer != department:  # an intake's attestation: only one the matrix lets attest for the department
            matrix.authorize_intake(signer, department)
        else:  # the public have no signature of their own: only an intake speaks for them
            matrix.authorize_own_signature(department)
    except Rejection as r:
        raise Refused(event_id, r) from None
    ok = verified if verified is not None else signature_valid(value, headers, public_keys)
    if not ok:
        whose = f"部门 {department}" if signer == department else f"受理方 {signer}"
        raise refuse("signature", "signature.invalid",
                     f"签名与{whose}的密钥不符，或提交不在所签批次之中 (the signature does not match the key of "
                     f"{signer}, or the submission is not in the batch it signed)")
    try:
        name, rec = registry.decode(value)
    except registry.SchemaError as exc:
        raise refuse("(record)", "schema.undecodable", f"无法按已登记的数据格式解读该提交 ({exc})") from None
    env = rec.get("envelope")
    if not isinstance(env, dict):
        raise refuse("(record)", "schema.not_an_event", f"{name} 不是信用事件 (this record is not a credit event)")
    event_id = env["event_id"]
    try:
        check_event_id(event_id)
    except Rejection as r:
        raise Refused(event_id, r) from None
    if env["event_type"] != name:
        raise refuse("event_type", "event_type.mismatch",
                     f"事件类型 {env['event_type']} 与数据格式 {name} 不一致 (the event type does not match its schema)")
    if "client-signature" in headers or "client-body" in headers:
        try:
            check_client_signature(headers.get("client-body", b""), headers.get("client-signature", b""),
                                   public_keys[department], department, event_id)
        except Rejection as r:
            raise Refused(event_id, r) from None
    if env["source_department"] != department:
        raise refuse("source_department", "department.mismatch",
                     f"信封中的部门 {env['source_department']} 与签名部门 {department} 不一致 "
                     f"(the department named in the event is not the one that signed it)")
    try:
        matrix.authorize(department, name)
        ident = check_subject(env["subject"])
    except Rejection as r:
        raise Refused(event_id, r) from None
    if key != submission_key(ident.id_type, ident.normalised):
        raise refuse("(key)", "key.mismatch",
                     "消息键与主体标识不一致 (the Kafka key is not the one derived from the subject's identifier)")
    if partition is not None and partition != partition_of(key):
        raise refuse("(partition)", "partition.mismatch",
                     "提交写入了错误的分区：该主体的事件应由另一分区处理 (the submission is in the wrong partition of "
                     "credit.submissions for its key; produce with Kafka's default partitioner)")
    if not env["subject"]["name"].strip():
        raise refuse("subject.name", "required", "主体名称不能为空 (the entity name is required)")
    control = _control_character(rec)
    if control is not None:
        raise refuse(control, "text.control_character",
                     f"字段 {control} 含有不可见的控制字符（如 NUL） (the field contains a control character such as NUL)")
    event = event_of(rec, entity_id=identity.entity_key(ident, pepper), department=department,
                     subject_birth_date=identity.birth_date(ident), rules_versions=rules_versions)
    return Opened(event, ident.category, list(ident.warnings), rec)


def check_client_signature(body: bytes, signature: bytes, public_key_hex: str, department: str,
                           event_id: str) -> None:
    """A client's detached signature (HTTP header X-Content-Signature): Ed25519 by the department's
    own key over the exact body it sent, a JSON event whose envelope.event_id is `event_id`.
    Rejection (field ``client_signature``) naming what is wrong."""
    def refuse(code: str, message: str) -> Rejection:
        return Rejection("client_signature", code, message)

    if not body or not signature:
        raise refuse("client_signature.incomplete", "客户端签名不完整：签名与所签报文须同时提供 (a client signature "
                                                    "needs both the signature and the exact body it covers)")
    if not signing.verify(public_key_hex, body, signature):
        raise refuse("client_signature.invalid", f"客户端签名与部门 {department} 的公钥不符，或报文已被改动 (the "
                                                 f"signature does not verify with the public key of {department} "
                                                 f"over the exact body sent)")
    try:
        signed = json.loads(body)
        signed_id = signed["envelope"]["event_id"]
    except (ValueError, TypeError, KeyError):
        signed_id = None
    if signed_id != event_id:
        raise refuse("client_signature.other_event", "客户端所签报文不是该事件 (the signed body is not this event: "
                                                     "its envelope.event_id differs from the submission's)")


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # C0 controls except tab, LF, CR


def _control_character(record: dict[str, Any]) -> str | None:
    """The path of the first text field holding a C0 control character other than tab, LF and CR.
    Every text of the record is searched at once; the path is looked for only when one has one."""
    texts: list[str] = []
    stack: list[Any] = [record]
    while stack:
        v = stack.pop()
        if type(v) is str:
            texts.append(v)
        elif type(v) is dict:
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
    if not _CONTROL.search("".join(texts)):
        return None
    return _control_path(record, "")


def _control_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if _CONTROL.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _control_path(v, f"{path}.{k}" if path else k)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _control_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None
