"""Objections and repair applications, pure (docs/domain-notes.md §9): the seven families judged and
folded by the domain, the sequencer's rule that the public speak only through their intake, the
deadlines of each step in the views' rows (a late and an overdue step among them), the public
intake's forms (every problem named in Chinese beside its field) and its CSRF tokens."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.decide import decide
from ledger.domain.errors import Rejection, RulesError
from ledger.domain.model import EntityState, Event, evolve
from ledger.intake.public import csrf, forms
from ledger.platform import signing
from ledger.records import submissions
from ledger.records.events import event_of
from ledger.rules import loader
from ledger.sequencer.core import Sequencing
from ops import workload
from ops import workload_objections as wo
from projections import objection_queries
from projections.rows import Folder, Incoming, Loaded, shown_record
from tests.fakes import with_stores
from tests.helpers import copy_rules

BOOK = loader.load()
TODAY = date(2026, 11, 27)  # a Friday
SUBJECT = workload.Subject("91411002MA5FMHPPX6", "USCC", "许昌瑞祥食品有限公司")
OFFICE = BOOK.objections.credit_office


def _event(pair: wo.Pair) -> Event:
    return event_of(pair[1], entity_id="uscc:" + SUBJECT.id, rules_versions=BOOK.stamp)


def _apply(*pairs: wo.Pair, state: EntityState | None = None) -> EntityState:
    s = state or EntityState()
    for pair in pairs:
        e = _event(pair)
        assert decide(s, e, TODAY, BOOK.publication, BOOK.catalogue, requests=BOOK.objections) == []
        s = evolve(s, e)
    return s


def _refused(state: EntityState, pair: wo.Pair) -> tuple[str, str]:
    with pytest.raises(Rejection) as info:
        decide(state, _event(pair), TODAY, BOOK.publication, BOOK.catalogue, requests=BOOK.objections)
    assert info.value.message and "(" in info.value.message  # Chinese, then English in brackets
    return info.value.field, info.value.code


@pytest.fixture
def penalties() -> tuple[wo.Pair, wo.Pair, EntityState]:
    a, b = (workload.workload_penalty(workload.random.Random(i), SUBJECT, "xc-samr", f"许市监罚〔2026〕{i}号",
                                      TODAY - timedelta(days=130), "general") for i in (1, 2))
    return a, b, _apply(a, b)


def test_a_whole_history_of_every_family_is_judged_and_folded() -> None:
    state = _apply(*[p for phase in wo.request_history(SUBJECT, "7", TODAY) for p in phase])
    kinds = sorted((m["kind"], m["status"], m.get("result")) for m in state.requests.values())
    assert kinds == [("objection", "answered", "CORRECTED"), ("objection", "answered", "UPHELD"),
                     ("repair", "decided", "GRANTED"), ("repair", "refused", None)]
    assert all("since" not in m and "repaired_by" not in m for m in state.requests.values())  # closed: dropped
    assert EntityState.from_json(state.to_json()) == state
    assert "requests" not in EntityState().to_json()  # an entity without any keeps its old JSON


def test_an_objection_names_a_record_of_the_subject_and_one_at_a_time(penalties) -> None:  # type: ignore[no-untyped-def]
    a, _, state = penalties
    assert _refused(state, wo.objection_filed(SUBJECT, "no-such-event", TODAY)) == ("target_event_id", "record.unknown")
    filed = wo.objection_filed(SUBJECT, wo.event_id(a), TODAY)
    state = _apply(filed, state=state)
    assert state.requests[wo.event_id(filed)]["status"] == "filed"
    assert _refused(state, wo.objection_filed(SUBJECT, wo.event_id(a), TODAY)) == \
        ("target_event_id", "objection.already_open")
    future = wo.objection_filed(SUBJECT, wo.event_id(a), TODAY + timedelta(days=1))
    assert _refused(EntityState(), future)[1] in ("time.future", "record.unknown")


def test_who_forwards_and_who_answers(penalties) -> None:  # type: ignore[no-untyped-def]
    a, _, state = penalties
    filed = wo.objection_filed(SUBJECT, wo.event_id(a), TODAY - timedelta(days=3))
    receipt = wo.event_id(filed)
    state = _apply(filed, state=state)
    # not forwarded: only the credit office answers (its own remit)
    assert _refused(state, wo.objection_answered(SUBJECT, receipt, "xc-samr", "UPHELD", TODAY)) == \
        ("source_department", "objection.not_answering_department")
    assert _refused(state, wo.objection_forwarded(SUBJECT, receipt, OFFICE, TODAY))[1] == "objection.forward_to_office"
    assert _refused(state, wo.objection_forwarded(SUBJECT, receipt, "xc-samr", TODAY - timedelta(days=5))) == \
        ("forwarded_on", "time.order")
    state = _apply(wo.objection_forwarded(SUBJECT, receipt, "xc-samr", TODAY - timedelta(days=2)), state=state)
    assert _refused(state, wo.objection_forwarded(SUBJECT, receipt, "xc-samr", TODAY))[1] == "objection.status"
    assert _refused(state, wo.objection_answered(SUBJECT, receipt, "xc-tax", "UPHELD", TODAY))[1] == \
        "objection.not_answering_department"
    # the department it was forwarded to, or the credit office on its behalf
    _apply(wo.objection_answered(SUBJECT, receipt, OFFICE, "UPHELD", TODAY), state=state)
    done = _apply(wo.objection_answered(SUBJECT, receipt, "xc-samr", "UPHELD", TODAY), state=state)
    assert _refused(done, wo.objection_answered(SUBJECT, receipt, OFFICE, "UPHELD", TODAY))[1] == "objection.status"
    assert _refused(done, wo.objection_answered(SUBJECT, "YY-unknown", OFFICE, "UPHELD", TODAY))[1] == "objection.unknown"


def test_a_correction_is_an_event_of_the_subject_recorded_after_the_objection(penalties) -> None:  # type: ignore[no-untyped-def]
    a, b, state = penalties
    early = workload.penalty_revoked(SUBJECT, b[1]["decision_no"], TODAY)
    state = _apply(early, state=state)
    filed = wo.objection_filed(SUBJECT, wo.event_id(a), TODAY)
    receipt = wo.event_id(filed)
    state = _apply(filed, state=state)
    assert _refused(state, wo.objection_answered(SUBJECT, receipt, OFFICE, "CORRECTED", TODAY)) == \
        ("correcting_event_id", "required")
    assert _refused(state, wo.objection_answered(SUBJECT, receipt, OFFICE, "CORRECTED", TODAY, wo.event_id(early))) == \
        ("correcting_event_id", "objection.not_a_correction")
    withdrawal = workload.penalty_revoked(SUBJECT, a[1]["decision_no"], TODAY)
    state = _apply(withdrawal, state=state)
    assert _refused(state, wo.objection_answered(SUBJECT, receipt, OFFICE, "UPHELD", TODAY, wo.event_id(withdrawal)))[1] \
        == "objection.upheld_with_correction"
    done = _apply(wo.objection_answered(SUBJECT, receipt, OFFICE, "PARTLY_CORRECTED", TODAY, wo.event_id(withdrawal)),
                  state=state)
    assert done.requests[receipt]["correcting_event_id"] == wo.event_id(withdrawal)
    assert done.penalties[a[1]["decision_no"]]["status"] == "revoked"


def test_a_listing_objection_goes_to_the_department_that_listed(penalties) -> None:  # type: ignore[no-untyped-def]
    listing = workload.wage_listed(SUBJECT, "许人社欠薪〔2026〕9号", TODAY - timedelta(days=40))
    state = _apply(listing)
    filed = wo.objection_filed(SUBJECT, wo.event_id(listing), TODAY)
    state = _apply(filed, state=state)
    assert _refused(state, wo.objection_forwarded(SUBJECT, wo.event_id(filed), "xc-samr", TODAY)) == \
        ("to_department", "objection.not_provider")
    _apply(wo.objection_forwarded(SUBJECT, wo.event_id(filed), "xc-hrss", TODAY), state=state)


def test_repair_is_granted_only_with_a_repair_the_rules_allowed(penalties) -> None:  # type: ignore[no-untyped-def]
    a, b, state = penalties
    applied = wo.repair_applied(SUBJECT, wo.event_id(a), TODAY)
    receipt = wo.event_id(applied)
    state = _apply(applied, state=state)
    assert _refused(state, wo.repair_applied(SUBJECT, wo.event_id(a), TODAY))[1] == "repair.already_open"
    assert _refused(state, wo.repair_decided(SUBJECT, receipt, "GRANTED", TODAY))[1] == "repair.status"  # not accepted
    state = _apply(wo.repair_accepted(SUBJECT, receipt, TODAY), state=state)
    assert _refused(state, wo.repair_refused(SUBJECT, receipt, TODAY))[1] == "repair.status"
    other = workload.repaired(SUBJECT, "administrative_penalty", b[1]["decision_no"], TODAY, TODAY - timedelta(days=50))
    state = _apply(other, state=state)  # another record's repair does not carry this application
    assert _refused(state, wo.repair_decided(SUBJECT, receipt, "GRANTED", TODAY, wo.event_id(other))) == \
        ("repair_event_id", "repair.not_repaired")
    assert _refused(state, wo.repair_decided(SUBJECT, receipt, "NOT_GRANTED", TODAY, wo.event_id(other)))[1] == \
        "repair.not_granted_with_repair"
    repair = workload.repaired(SUBJECT, "administrative_penalty", a[1]["decision_no"], TODAY, TODAY - timedelta(days=50))
    state = _apply(repair, wo.repair_decided(SUBJECT, receipt, "GRANTED", TODAY, wo.event_id(repair)), state=state)
    assert state.requests[receipt]["result"] == "GRANTED" and state.penalties[a[1]["decision_no"]]["status"] == "repaired"


def test_a_penalty_inside_its_minimum_period_cannot_be_repaired_so_its_application_is_not_granted() -> None:
    recent = workload.workload_penalty(workload.random.Random(3), SUBJECT, "xc-samr", "许市监罚〔2026〕3号",
                                       TODAY - timedelta(days=20), "general")
    applied = wo.repair_applied(SUBJECT, wo.event_id(recent), TODAY)
    state = _apply(recent, applied, wo.repair_accepted(SUBJECT, wo.event_id(applied), TODAY))
    repair = workload.repaired(SUBJECT, "administrative_penalty", recent[1]["decision_no"], TODAY)
    with pytest.raises(Rejection) as info:  # the existing repair check: the CreditRepaired itself is refused
        decide(state, _event(repair), TODAY, BOOK.publication, BOOK.catalogue, requests=BOOK.objections)
    assert info.value.code == "repair.before_minimum_period"
    done = _apply(wo.repair_decided(SUBJECT, wo.event_id(applied), "NOT_GRANTED", TODAY), state=state)
    assert done.requests[wo.event_id(applied)]["result"] == "NOT_GRANTED"


def test_what_can_be_repaired() -> None:
    court = workload.debtor_listed(SUBJECT, "（2026）豫10执1号", TODAY - timedelta(days=200), ground=1)
    licence = workload.licence_granted(SUBJECT, "JY14110000001", TODAY - timedelta(days=200))
    state = _apply(court, licence)
    assert _refused(state, wo.repair_applied(SUBJECT, wo.event_id(court), TODAY)) == ("target_event_id", "repair.court_only")
    assert _refused(state, wo.repair_applied(SUBJECT, wo.event_id(licence), TODAY))[1] == "repair.not_repairable"
    # an objection to a licence is fine
    _apply(wo.objection_filed(SUBJECT, wo.event_id(licence), TODAY), state=state)


def test_the_public_speak_only_through_their_intake() -> None:
    priv, pub = signing.new_keypair()
    keys = {"public": pub, "ledger-public-intake": pub, "xc-samr": pub}
    core = with_stores(Sequencing(keys, b"pepper-0123456789abcdef", BOOK, today=lambda: TODAY,
                                  now=lambda: datetime(2026, 11, 27, 2, tzinfo=UTC)))
    dept, rec = wo.objection_filed(SUBJECT, "x", TODAY, department="public")
    key, value = submissions.encode(rec)
    own = submissions.sign_batch([rec], [value], "public", priv)[0]
    verdict = core.judge(submissions.partition_of(key), 0, key, value, dict(own))
    assert verdict.status == "REJECTED" and verdict.reasons[0].code == "signer.intake_required"
    attested = submissions.sign_batch([rec], [value], "public", priv, signer="ledger-public-intake")[0]
    verdict = core.judge(submissions.partition_of(key), 1, key, value, dict(attested))
    assert verdict.reasons[0].code == "record.unknown"  # past the signature and the matrix: judged on the record
    dept, rec = wo.objection_answered(SUBJECT, "YY1", OFFICE, "UPHELD", TODAY)
    rec["envelope"]["source_department"] = "public"
    key, value = submissions.encode(rec)
    attested = submissions.sign_batch([rec], [value], "public", priv, signer="ledger-public-intake")[0]
    verdict = core.judge(submissions.partition_of(key), 2, key, value, dict(attested))
    assert verdict.reasons[0].code == "department.not_authorized"


# ----------------------------------------------------------------------------- rules


def test_the_rules_choose_the_repair_regime_by_the_day_received() -> None:
    rules = BOOK.objections
    assert rules.credit_office in BOOK.departments.departments
    assert rules.step("repair_accept", date(2023, 4, 30)) is None  # before Order 58: no deadline
    assert rules.step("repair_accept", date(2024, 1, 2)).working_days == 2  # type: ignore[union-attr]
    assert rules.step("repair_accept", date(2026, 4, 1)).working_days == 3  # type: ignore[union-attr]
    assert rules.step("repair_decide", date(2026, 4, 1)).working_days == 10  # type: ignore[union-attr]
    assert rules.step("objection_answer", date(2020, 4, 30)) is None  # before Henan art. 41 was in force
    assert rules.step("objection_source_answer", date(2026, 1, 5)).confidence == "V"  # type: ignore[union-attr]
    assert rules.step("objection_forward", date(2026, 1, 5)).confidence == "M"  # type: ignore[union-attr]


@pytest.mark.parametrize(("change", "entry"), [
    (lambda d: d["objection_steps"].pop("objection_forward"), "objection_steps"),
    (lambda d: d["objection_steps"]["objection_answer"].update(working_days=0), "objection_steps.objection_answer.working_days"),
    (lambda d: d["objection_steps"]["objection_answer"].update(confidence="X"), "objection_steps.objection_answer.confidence"),
    (lambda d: d["repair_regimes"][1].update(in_force_from="2026-03-01"), "repair_regimes[1].in_force_from"),
    (lambda d: d["repair_regimes"][0]["steps"].pop("repair_decide"), "repair_regimes[0].steps"),
])
def test_a_bad_objections_file_is_refused_naming_the_entry(tmp_path: Path, change: Any, entry: str) -> None:
    directory = copy_rules(tmp_path, "objections")
    path = directory / "objections.v1.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RulesError) as info:
        loader.load_objections(directory)
    assert info.value.entry == entry


# ----------------------------------------------------------------------------- the views' rows


def _fold(pairs: list[wo.Pair], today: date) -> Any:
    priv, pub = signing.new_keypair()
    keys = {d: pub for d in BOOK.departments.departments} | {i: pub for i in BOOK.departments.intakes}
    core = with_stores(Sequencing(keys, b"pepper-0123456789abcdef", BOOK, today=lambda: today,
                                  now=lambda: datetime.combine(today, datetime.min.time(), UTC)))
    batch = []
    for offset, (dept, rec) in enumerate(pairs):
        key, value, headers = submissions.make(rec, dept, priv)
        v = core.judge(submissions.partition_of(key), offset, key, value, dict(headers))
        assert v.status == "ACCEPTED", v.reasons
        core.record_position(submissions.partition_of(key), v, offset)
        batch.append(Incoming(0, offset, v.entity_id.encode(), v.entry_bytes, 0))  # type: ignore[union-attr]
    return Folder(BOOK).fold(batch, Loaded({}, set()))


def test_each_step_has_its_deadline_and_a_late_step_is_marked() -> None:
    """Received Monday 2 Nov 2026 (counter of the credit office), forwarded Friday 27 Nov: 4 working days
    were due on 6 Nov, so the forward is late; the provider answers the same day, inside its own 3 days,
    but the applicant is told after the 7 working days from receipt (11 Nov)."""
    received = date(2026, 11, 2)
    wrong = workload.workload_penalty(workload.random.Random(1), SUBJECT, "xc-samr", "许市监罚〔2026〕1号",
                                      date(2026, 7, 20), "general")
    filed = wo.objection_filed(SUBJECT, wo.event_id(wrong), received)
    receipt = wo.event_id(filed)
    withdrawal = workload.penalty_revoked(SUBJECT, "许市监罚〔2026〕1号", TODAY)
    ops = _fold([wrong, filed, wo.objection_forwarded(SUBJECT, receipt, "xc-samr", TODAY), withdrawal,
                 wo.objection_answered(SUBJECT, receipt, "xc-samr", "CORRECTED", TODAY, wo.event_id(withdrawal))], TODAY)
    row = dict(zip([c.strip() for c in _COLS.split(",")], ops.objections[receipt], strict=True))
    assert (row["forward_due"], row["forward_late"]) == (date(2026, 11, 6), True)
    assert (row["source_due"], row["source_late"]) == (date(2026, 12, 2), False)
    assert (row["answer_due"], row["answer_late"]) == (date(2026, 11, 11), True)
    assert row["status"] == "answered" and row["result"] == "CORRECTED" and row["grounds"] == "error"
    steps = {r[2]: r for r in ops.deadlines}
    assert steps["objection_forward"][3] == receipt and steps["objection_forward"][10] is True
    assert steps["objection_source_answer"][10] is False
    (record,) = [r[11] for r in ops.ledger_copy if r[3] == "ObjectionFiled"]
    assert shown_record(record, None)["contact_phone"] == "037*******34"  # no telephone number in the views
    assert filed[1]["contact_phone"].encode() not in record and b"037*******34" in record


def test_an_open_step_past_its_deadline_is_overdue() -> None:
    row = {"received_on": "2026-11-02", "forwarded_on": None, "forward_due": "2026-11-06", "forward_late": None,
           "status": "filed", "answered_on": None, "answer_due": "2026-11-05", "answer_late": None}
    steps = objection_queries.steps("objection", row)
    assert [s["step"] for s in steps] == ["受理（异议标注）", "转办信息提供单位", "答复申请人"]
    assert steps[1] == {"step": "转办信息提供单位", "done_on": None, "due": "2026-11-06", "late": None,
                        "event": "ObjectionForwarded"}
    assert [objection_queries.timeliness(x, "2026-11-09") for x in steps] == ["—", "超期未办", "超期未办"]
    assert objection_queries.timeliness(steps[1], "2026-11-06") == "未到期"
    assert objection_queries.OVERDUE_RULES[0] == "objection_forward"


_COLS = __import__("projections.views", fromlist=["OBJECTION_COLS"]).OBJECTION_COLS


# ----------------------------------------------------------------------------- the public's forms


def _values(**changes: str) -> dict[str, str]:
    return {"id_type": "USCC", "subject_id": SUBJECT.id, "subject_name": SUBJECT.name, "record": "evt-1",
            "grounds": "error", "reason": "罚款金额公示有误，应为五千元。", "contact_name": "王伟",
            "contact_phone": "0374-5551234", **changes}


def test_a_good_objection_form_makes_the_public_s_record() -> None:
    now = datetime(2026, 11, 27, 2, tzinfo=UTC)
    rec = forms.record_of_form(forms.FORMS["objection"], _values(), "YY20261127-ABCDEFGH", TODAY, now)
    assert rec["envelope"]["source_department"] == "public" and rec["envelope"]["event_id"] == "YY20261127-ABCDEFGH"
    assert rec["received_on"] == TODAY and rec["target_event_id"] == "evt-1" and rec["evidence"] is None
    assert forms.is_receipt(forms.new_receipt("YY", TODAY)) and not forms.is_receipt("YY-1")


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"subject_id": ""}, "subject_id", "请填写统一社会信用代码"),
    ({"subject_id": "91411002MA5"}, "subject_id", "统一社会信用代码有误"),
    ({"id_type": "RIC", "subject_id": "411002199001011234"}, "subject_id", "居民身份证号码有误"),
    ({"reason": ""}, "reason", "请填写异议理由"),
    ({"reason": "身份证 411002199001010012 的记录有误"}, "reason", "请勿在异议理由中填写身份证号码"),
    ({"reason": "错" * 1001}, "reason", "最多 1000 个字"),
    ({"contact_phone": "12345"}, "contact_phone", "联系电话格式有误"),
    ({"grounds": "other"}, "grounds", "请选择异议类型"),
    ({"record": ""}, "record", "请从信用主体的公示页面选择"),
])
def test_every_problem_of_a_form_is_named_in_chinese(changes: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(forms.Invalid) as info:
        forms.record_of_form(forms.FORMS["objection"], _values(**changes), "YY20261127-ABCDEFGH", TODAY,
                             datetime(2026, 11, 27, tzinfo=UTC))
    got = {p.field: p.message for p in info.value.problems}
    assert words in got[field], got
    assert "411002199001" not in " ".join(got.values())  # an ID number is never echoed


def test_a_repair_form_needs_the_commitment_and_a_past_correction_date() -> None:
    values = _values(statement="已缴清罚款。", corrected_on=(TODAY + timedelta(days=1)).isoformat())
    with pytest.raises(forms.Invalid) as info:
        forms.record_of_form(forms.FORMS["repair"], values, "XF20261127-ABCDEFGH", TODAY, datetime(2026, 11, 27, tzinfo=UTC))
    assert {p.field for p in info.value.problems} == {"commitment", "corrected_on"}
    rec = forms.record_of_form(forms.FORMS["repair"], {**values, "corrected_on": "2026-10-01", "commitment": "yes"},
                               "XF20261127-ABCDEFGH", TODAY, datetime(2026, 11, 27, tzinfo=UTC))
    assert rec["commitment"] is True and rec["corrected_on"] == date(2026, 10, 1)


def test_a_refusal_of_the_sequencer_is_shown_beside_its_field() -> None:
    p = forms.problem_of_refusal({"field": "target_event_id", "code": "record.unknown",
                                  "message": "该主体没有事件编号为 x 的信用记录 (this subject has no ...)"})
    assert (p.field, p.message) == ("record", "该主体没有事件编号为 x 的信用记录")


def test_csrf_tokens() -> None:
    tokens = csrf.Tokens(b"k" * 32, max_age=100)
    nonce, token = tokens.issue(1000.0)
    assert tokens.check(token, nonce, 1050.0) is None
    assert tokens.check(token, "0" * 32, 1050.0) == "cookie"  # another browser's cookie
    assert tokens.check(token, None, 1050.0) == "cookie"
    assert tokens.check(token, nonce, 1101.0) == "expired"
    assert tokens.check(token.replace(".", ".9", 1), nonce, 1050.0) == "forged"
    assert csrf.Tokens(b"x" * 32).check(token, nonce, 1050.0) == "forged"  # another process's secret
    assert tokens.check("junk", nonce, 1050.0) == "malformed"
    assert tokens.issue(2000.0, nonce)[0] == nonce  # the browser keeps its nonce across pages
