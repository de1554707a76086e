"""The sequencer's judgement without Kafka: signatures, authorization, identity, duplicates, versions, chain."""

from __future__ import annotations

import copy
import random
from datetime import UTC, date, datetime

import pytest

from ledger.platform import signing
from ledger.platform.clock import Clock
from ledger.records import chain, submissions
from ledger.rules import loader
from ledger.sequencer.core import Sequencing, changelog_records, changes_of, outcome_record
from ops import workload
from tests.fakes import with_stores

PEPPER = b"unit-test-pepper-0123456789"
KEYS = {d: signing.new_keypair() for d in ("xc-samr", "xc-tax", "xc-court")}
PUBLIC = {d: pub for d, (_priv, pub) in KEYS.items()}
NOW = Clock.on(date(2026, 11, 27)).now()


NOV_27 = Clock.on(date(2026, 11, 27))


def _core(clock: Clock = NOV_27) -> Sequencing:
    return with_stores(Sequencing(PUBLIC, PEPPER, loader.load(), today=clock.today, now=clock.now))


def _at(offset, key, value, headers):  # type: ignore[no-untyped-def]
    """judge() arguments for a submission read at `offset` of the partition its key belongs to."""
    return submissions.partition_of(key), offset, key, value, headers


def _p(record) -> int:  # type: ignore[no-untyped-def]
    return _at(0, *_signed(record))[0]


def _signed(record, department="xc-samr", key_of=None):  # type: ignore[no-untyped-def]
    key, value, headers = submissions.make(record, department, KEYS[key_of or department][0])
    return key, value, dict(headers)


def _penalty(seed: int = 1, **overrides):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    rec = workload.penalty(rng, subject, "xc-samr", seed, decided=date(2026, 10, 1))
    rec.update(overrides)
    return rec


def test_versions_count_up_and_the_chain_links() -> None:
    core = _core()
    first = _penalty(1)
    second = copy.deepcopy(first)
    second["envelope"]["event_id"] = "e-2"
    second["decision_no"] = "许市监罚〔2026〕2号"
    v1 = core.judge(*_at(10, *_signed(first)))
    core.record_position(_p(first), v1, 100)
    v2 = core.judge(*_at(11, *_signed(second)))
    assert (v1.status, v2.status) == ("ACCEPTED", "ACCEPTED")
    assert (v1.entry["entity_version"], v2.entry["entity_version"]) == (1, 2)
    assert v1.entry["prev_hash"] == chain.GENESIS and v2.entry["prev_hash"] == v1.entry["hash"]
    assert chain.broken_links([v1.entry, v2.entry]) == []


def test_same_id_same_content_is_a_duplicate_and_other_content_a_conflict() -> None:
    core = _core()
    rec = _penalty(2)
    v = core.judge(*_at(0, *_signed(rec)))
    seen = core.record_position(_p(rec), v, 42)
    core.commit({_p(rec): 2})
    dup = core.judge(*_at(1, *_signed(rec)))
    assert dup.status == "DUPLICATE" and dup.seen == seen
    assert outcome_record(dup, 1, 42, NOW)["entity_version"] == 1
    other = copy.deepcopy(rec)
    other["fine_fen"] = 1
    conflict = core.judge(*_at(2, *_signed(other)))
    assert conflict.status == "CONFLICT" and conflict.reasons[0].code == "event_id.conflict"


@pytest.mark.parametrize(("mutate", "code", "field"), [
    (lambda k, v, h: (k, v, {**h, "signature": b"\x00" * 64}), "signature.invalid", "signature"),
    (lambda k, v, h: (k, v, {"event-id": h["event-id"]}), "signature.missing", "signature"),
    (lambda k, v, h: (k, v, {**h, "department": b"xc-unknown"}), "department.unknown", "source_department"),
    (lambda k, v, h: (b"other-key", v, h), "key.mismatch", "(key)"),
])
def test_tampered_submissions_are_refused(mutate, code, field) -> None:  # type: ignore[no-untyped-def]
    core = _core()
    v = core.judge(*_at(0, *mutate(*_signed(_penalty(3)))))
    assert v.status == "REJECTED" and (v.reasons[0].code, v.reasons[0].field) == (code, field)
    assert v.entry is None


def test_a_department_signing_for_another_is_refused() -> None:
    core = _core()
    key, value, headers = _signed(_penalty(4), key_of="xc-tax")  # header says xc-samr, tax bureau's key
    v = core.judge(0, 0, key, value, headers)
    assert v.reasons[0].code == "signature.invalid"


def test_an_unauthorized_event_type_is_refused() -> None:
    core = _core()
    rec = _penalty(5)
    rec["envelope"]["source_department"] = "xc-court"
    v = core.judge(*_at(0, *_signed(rec, department="xc-court")))
    assert v.reasons[0].code == "department.not_authorized"


def test_garbage_bytes_with_a_valid_signature_are_refused_not_crashed() -> None:
    core = _core()
    value = b"\x00\x00\x00\x00\x65garbage"
    headers = {"department": b"xc-samr", "signature": signing.sign(KEYS["xc-samr"][0], value)}
    v = core.judge(0, 0, b"k", value, headers)
    assert v.status == "REJECTED" and v.reasons[0].code == "schema.undecodable"


def test_a_malformed_credit_code_names_the_field() -> None:
    rec = _penalty(6)
    rec["envelope"]["subject"]["id"] = "91411000MA4"
    v = _core().judge(*_at(0, *_signed(rec)))
    assert (v.reasons[0].field, v.reasons[0].code) == ("subject.id", "uscc.length")


def test_a_real_code_with_a_wrong_check_character_is_accepted_with_a_warning() -> None:
    rec = _penalty(7)
    code = rec["envelope"]["subject"]["id"]
    wrong = "0" if code[-1] != "0" else "1"
    rec["envelope"]["subject"]["id"] = code[:-1] + wrong
    v = _core().judge(*_at(0, *_signed(rec)))
    assert v.status == "ACCEPTED" and "uscc.check_character" in v.warnings
    assert v.entry["warnings"] == v.warnings


def test_rollback_forgets_a_batch_and_restore_rebuilds_from_the_changelog() -> None:
    core = _core()
    rec = _penalty(8)
    v = core.judge(*_at(0, *_signed(rec)))
    core.rollback()
    again = core.judge(*_at(0, *_signed(rec)))
    assert again.status == "ACCEPTED" and again.entry["entity_version"] == 1
    seen = core.record_position(_p(rec), again, 7)
    changelog = [r for _k, r in changelog_records(again, seen)]
    fresh = _core()
    fresh.stores[_p(rec)].apply_batch(changes_of(changelog), len(changelog))
    assert fresh.judge(*_at(1, *_signed(rec))).status == "DUPLICATE"
    assert v.status == "ACCEPTED"


def test_a_future_decision_is_refused() -> None:
    rec = _penalty(9)
    rec["decision_date"] = date(2027, 1, 1)
    v = _core().judge(*_at(0, *_signed(rec)))
    assert (v.reasons[0].field, v.reasons[0].code) == ("decision_date", "time.future")


def test_a_decision_dated_today_in_beijing_is_accepted_at_half_past_midnight() -> None:
    # 00:30 China Standard Time on 4 December 2026 is 16:30 UTC on 3 December: the UTC date is still
    # the 3rd, but the decision, dated the 4th, is dated today where the law counts days
    half_past_midnight = Clock.fixed(datetime(2026, 12, 3, 16, 30, tzinfo=UTC))
    rec = workload.penalty(random.Random(21), workload.subjects(random.Random(21), 1, persons_share=0.0)[0],
                           "xc-samr", 21, decided=date(2026, 12, 4))
    v = _core(half_past_midnight).judge(*_at(0, *_signed(rec)))
    assert (v.status, v.reasons) == ("ACCEPTED", [])
    assert v.entry is not None and v.entry["sequenced_at"] == half_past_midnight.now()
    assert outcome_record(v, 0, 0, half_past_midnight.now())["decided_at"] == half_past_midnight.now()
    tomorrow = workload.penalty(random.Random(22), workload.subjects(random.Random(22), 1, persons_share=0.0)[0],
                                "xc-samr", 22, decided=date(2026, 12, 5))
    v = _core(half_past_midnight).judge(*_at(0, *_signed(tomorrow)))
    assert (v.status, v.reasons[0].code) == ("REJECTED", "time.future")
    # a minute before midnight in Beijing, the 4th is still tomorrow
    v = _core(Clock.fixed(datetime(2026, 12, 3, 15, 59, tzinfo=UTC))).judge(*_at(0, *_signed(rec)))
    assert (v.status, v.reasons[0].code) == ("REJECTED", "time.future")


def test_a_submission_in_the_wrong_partition_is_refused() -> None:
    partition, offset, key, value, headers = _at(0, *_signed(_penalty(10)))
    v = _core().judge((partition + 1) % 4, offset, key, value, headers)
    assert (v.status, v.reasons[0].code) == ("REJECTED", "partition.mismatch")


def test_a_control_character_in_a_text_field_is_refused_with_its_path() -> None:
    rec = _penalty(11)
    rec["facts"] = "经查\x00当事人"
    v = _core().judge(*_at(0, *_signed(rec)))
    assert (v.status, v.reasons[0].field, v.reasons[0].code) == ("REJECTED", "facts", "text.control_character")


def test_the_same_submission_twice_in_one_batch_is_appended_once() -> None:
    core = _core()
    rec = _penalty(21)
    first = core.judge(*_at(0, *_signed(rec)))
    again = core.judge(*_at(1, *_signed(rec)))  # before the first one's ledger position is known
    other = copy.deepcopy(rec)
    other["fine_fen"] = 7
    changed = core.judge(*_at(2, *_signed(other)))
    assert (first.status, again.status, changed.status) == ("ACCEPTED", "DUPLICATE", "CONFLICT")
    seen = core.record_position(_p(rec), first, 42)
    assert core.seen(_p(rec), rec["envelope"]["event_id"]) == seen
    assert outcome_record(again, seen.ledger_partition, seen.ledger_offset, NOW)["entity_version"] == 1


def _in_other_partition(rec, seed: int):  # type: ignore[no-untyped-def]
    """A penalty about another subject, in another partition, under `rec`'s event id."""
    for s in range(seed, seed + 100):
        other = _penalty(s)
        if _p(other) != _p(rec):
            other["envelope"]["event_id"] = rec["envelope"]["event_id"]
            return other
    raise AssertionError("no subject in another partition")


@pytest.mark.parametrize("committed", [True, False])
def test_an_event_id_reused_for_a_subject_of_another_partition_is_a_conflict(committed: bool) -> None:
    core = _core()
    rec = _penalty(30)
    v = core.judge(*_at(0, *_signed(rec)))
    if committed:
        core.record_position(_p(rec), v, 42)
        core.commit({_p(rec): 2})
    other = _in_other_partition(rec, 31)
    conflict = core.judge(*_at(0, *_signed(other)))
    assert (conflict.status, conflict.reasons[0].code, conflict.reasons[0].field) == (
        "CONFLICT", "event_id.conflict", "event_id")
    # answered about the submission's own subject, naming neither the other subject nor its version
    assert conflict.entity_id == "uscc:" + other["envelope"]["subject"]["id"] != v.entity_id
    assert conflict.seen is None and outcome_record(conflict, None, None, NOW)["entity_version"] is None
    assert "another subject" in conflict.reasons[0].message
    where = f"at ledger position {_p(rec)}:42;" if committed else "at ledger position 本批次 / this batch;"
    assert where in conflict.reasons[0].message
