"""The gateway attests with its own key: the sequencer's front door (records/submissions.py
open_submission) accepts an attestation only by an intake of the department matrix for a department
it may attest for, and checks a client's detached signature over the exact body it sent; the
gateway's own checks (intake/gateway/checks.py) refuse the same before submitting."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from datetime import date
from typing import Any

import pytest

from ledger.domain.errors import Rejection
from ledger.intake.gateway import checks
from ledger.intake.gateway.errors import IntakeRefused
from ledger.intake.gateway.kafka import Ledger
from ledger.platform import signing
from ledger.records import batch, submissions
from ledger.rules.loader import load_departments
from ops import workload

MATRIX = load_departments()
PEPPER = b"unit-test-pepper-0123456789"
KEYS = {name: signing.new_keypair() for name in ("ledger-gateway", "xc-samr", "xc-tax", "sector-banking")}
PUBLIC = {name: pub for name, (_, pub) in KEYS.items()}


def record(department: str = "xc-samr") -> dict[str, Any]:
    rng = random.Random(7)
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    if department.startswith("sector-"):
        rec = workload.feedback(subject, "evt-trigger-0001", date(2024, 5, 6))[1]
        rec["envelope"]["source_department"] = department
        return rec
    return workload.penalty(rng, subject, department, 1)


def attested(rec: dict[str, Any], department: str, signer: str = "ledger-gateway",
             extra: list[tuple[str, bytes]] | None = None) -> tuple[bytes, bytes, dict[str, bytes]]:
    key, value = submissions.encode(rec)
    headers = submissions.sign_batch([rec], [value], department, KEYS[signer][0], signer=signer)[0]
    return key, value, dict(headers + (extra or []))


def opened(key: bytes, value: bytes, headers: dict[str, bytes]) -> submissions.Opened:
    return submissions.open_submission(key, value, headers, PUBLIC, PEPPER, MATRIX)


def refusal(key: bytes, value: bytes, headers: dict[str, bytes]) -> Rejection:
    with pytest.raises(submissions.Refused) as info:
        opened(key, value, headers)
    return info.value.reason


def test_the_gateways_attestation_for_an_emitter_is_opened() -> None:
    rec = record()
    assert opened(*attested(rec, "xc-samr")).event.event_id == rec["envelope"]["event_id"]


def test_an_attestation_for_a_sector_system_is_refused_naming_the_signer() -> None:
    reason = refusal(*attested(record("sector-banking"), "sector-banking"))
    assert (reason.field, reason.code) == ("signer", "intake.not_allowed")
    # the sector system's own signature is still the way in
    rec = record("sector-banking")
    key, value, headers = submissions.make(rec, "sector-banking", KEYS["sector-banking"][0])
    assert opened(key, value, dict(headers)).event.department == "sector-banking"


def test_a_department_attesting_for_another_is_no_intake() -> None:
    reason = refusal(*attested(record("xc-samr"), "xc-samr", signer="xc-tax"))
    assert (reason.field, reason.code) == ("signer", "intake.unknown")


def client_signed(rec: dict[str, Any], signer_key: str, body: bytes | None = None) -> list[tuple[str, bytes]]:
    body = body if body is not None else json.dumps(rec, default=str).encode()
    return [("client-signature", signing.sign(signer_key, body)), ("client-body", body)]


def test_a_clients_own_signature_is_checked_over_the_body_and_its_event_id() -> None:
    rec = record()
    assert opened(*attested(rec, "xc-samr", extra=client_signed(rec, KEYS["xc-samr"][0])))
    for extra, code in (
            (client_signed(rec, KEYS["xc-tax"][0]), "client_signature.invalid"),  # another department's key
            (client_signed(record("xc-tax"), KEYS["xc-samr"][0]), "client_signature.other_event"),
            (client_signed(rec, KEYS["xc-samr"][0])[:1], "client_signature.incomplete"),
            ([(k, v + b" ") if k == "client-body" else (k, v) for k, v in client_signed(rec, KEYS["xc-samr"][0])],
             "client_signature.invalid")):
        other = dict(record()) if code != "client_signature.other_event" else rec
        reason = refusal(*attested(other, "xc-samr", extra=extra))
        assert (reason.field, reason.code) == ("client_signature", code), code


# ----------------------------------------------------------------------------- the gateway's side


def test_the_gateway_admits_emitters_and_refuses_sector_systems_with_403() -> None:
    checks.admit(MATRIX, "xc-samr")
    with pytest.raises(IntakeRefused) as info:
        checks.admit(MATRIX, "sector-banking")
    assert info.value.status == 403
    [p] = info.value.problems
    assert (p.field, p.code) == ("Authorization", "intake.not_allowed") and "不得经" in p.message


def test_the_gateway_checks_x_content_signature_as_the_sequencer_will() -> None:
    rec = record()
    eid = rec["envelope"]["event_id"]
    body = json.dumps(rec, default=str).encode()
    good = base64.b64encode(signing.sign(KEYS["xc-samr"][0], body)).decode()
    assert checks.client_signature(good, body, "xc-samr", PUBLIC["xc-samr"], eid) == base64.b64decode(good)
    for header, key, code in (("not base64!", PUBLIC["xc-samr"], "client_signature.malformed"),
                              (base64.b64encode(b"short").decode(), PUBLIC["xc-samr"], "client_signature.malformed"),
                              (good, PUBLIC["xc-tax"], "client_signature.invalid"),
                              (good, None, "client_signature.no_key")):
        with pytest.raises(IntakeRefused) as info:
            checks.client_signature(header, body, "xc-samr", key, eid)
        [p] = info.value.problems
        assert (info.value.status, p.field, p.code) == (400, "X-Content-Signature", code)
        assert "X-Content-Signature" in p.message
    with pytest.raises(IntakeRefused) as info:
        checks.client_signature(good, body, "xc-samr", PUBLIC["xc-samr"], "evt-another-one")
    assert info.value.problems[0].code == "client_signature.other_event"


async def test_single_events_of_one_event_loop_turn_share_one_attestation(tmp_path) -> None:
    ledger = Ledger(None, tmp_path)  # type: ignore[arg-type]  # no Kafka: attesting only
    ledger.intake_key = KEYS["ledger-gateway"][0]
    recs = [record("xc-samr")] + [workload.penalty(random.Random(i), workload.subjects(random.Random(i), 1)[0],
                                                   "xc-tax", i) for i in range(3)]
    values = [submissions.encode(r)[1] for r in recs]
    futures = [ledger.attest(r["envelope"]["source_department"], r, v) for r, v in zip(recs, values, strict=True)]
    signed = [dict(h) for h in await asyncio.gather(*futures)]
    assert len({h["signature"] for h in signed}) == 2  # one per department of the turn
    assert [batch.Proof.decode(h["batch"]).size for h in signed] == [1, 3, 3, 3]
    for r, v, h in zip(recs, values, signed, strict=True):
        assert h["signer"] == b"ledger-gateway"
        assert submissions.signature_valid(v, h, PUBLIC) is True
        assert opened(submissions.submission_key(r["envelope"]["subject"]["id_type"], r["envelope"]["subject"]["id"]),
                      v, h).event.event_id == r["envelope"]["event_id"]
    # a later turn is a batch of its own
    later = dict(await ledger.attest("xc-tax", recs[1], values[1]))
    assert batch.Proof.decode(later["batch"]).size == 1 and later["signature"] != signed[1]["signature"]
