"""Objections and repair applications for the demo and the tests (docs/domain-notes.md §9): the seven
families of ledger/domain/objections.py as (department, record) pairs, like ops/workload.py's.

The receipt number of a matter is its filing's event id: `receipt("YY", day)` for an objection,
`receipt("XF", day)` for a repair application, the form the public intake gives too
(ledger/intake/public/forms.py).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from ledger.intake.public import forms
from ops import workload
from ops.workload import Phase, Subject

OFFICE = "xc-credit-office"
Pair = tuple[str, dict[str, Any]]


def receipt(prefix: str, day: date) -> str:
    """A receipt number: YY (异议) or XF (修复), the day received and eight random characters, made as the
    public intake makes them (never readable as an ID number)."""
    return forms.new_receipt(prefix, day)


def _record(event_type: str, subject: Subject, department: str, on: date, event_id: str | None = None,
            **body: Any) -> Pair:
    return department, {"envelope": workload.envelope(event_type, subject, department, on, event_id), **body}


def objection_filed(subject: Subject, target_event_id: str, received_on: date, department: str = OFFICE,
                    grounds: str = "error", reason: str = "处罚决定书载明的罚款金额与公示金额不一致。") -> Pair:
    return _record("ObjectionFiled", subject, department, received_on, receipt("YY", received_on),
                   target_event_id=target_event_id, grounds=grounds, reason=reason, evidence="行政处罚决定书复印件",
                   contact_name="欧阳若溪", contact_phone="0374-5551234", received_on=received_on)


def objection_forwarded(subject: Subject, receipt_no: str, to_department: str, on: date) -> Pair:
    return _record("ObjectionForwarded", subject, OFFICE, on, receipt_no=receipt_no, to_department=to_department,
                   forwarded_on=on, note="请核实后三个工作日内反馈")


def objection_answered(subject: Subject, receipt_no: str, department: str, result: str, on: date,
                       correcting_event_id: str | None = None) -> Pair:
    explanation = {"CORRECTED": "经核实，原公示信息有误，已予更正。", "PARTLY_CORRECTED": "经核实，部分信息有误，已予更正。",
                   "UPHELD": "经核实，原记录无误，予以维持。"}[result]
    return _record("ObjectionAnswered", subject, department, on, receipt_no=receipt_no, result=result,
                   answered_on=on, explanation=explanation, correcting_event_id=correcting_event_id)


def repair_applied(subject: Subject, target_event_id: str, received_on: date, department: str = OFFICE,
                   corrected_on: date | None = None) -> Pair:
    return _record("RepairApplied", subject, department, received_on, receipt("XF", received_on),
                   target_event_id=target_event_id, statement="已缴清罚款并完成整改，申请提前终止公示。",
                   corrected_on=corrected_on, commitment=True, contact_name="司马长风", contact_phone="13900000000",
                   received_on=received_on)


def repair_accepted(subject: Subject, receipt_no: str, on: date) -> Pair:
    return _record("RepairAccepted", subject, OFFICE, on, receipt_no=receipt_no, accepted_on=on, note="材料齐全，予以受理")


def repair_refused(subject: Subject, receipt_no: str, on: date,
                   reason: str = "未提交已履行行政处罚决定的证明材料，不予受理。") -> Pair:
    return _record("RepairRefused", subject, OFFICE, on, receipt_no=receipt_no, refused_on=on, reason=reason)


def repair_decided(subject: Subject, receipt_no: str, result: str, on: date, repair_event_id: str | None = None) -> Pair:
    explanation = "符合修复条件，予以修复。" if result == "GRANTED" else "不符合修复条件，不予修复。"
    return _record("RepairDecided", subject, OFFICE, on, receipt_no=receipt_no, result=result, decided_on=on,
                   explanation=explanation, repair_event_id=repair_event_id)


def event_id(pair: Pair) -> str:
    return str(pair[1]["envelope"]["event_id"])


def request_history(subject: Subject, tag: str, today: date) -> list[Phase]:
    """Every family of objections and repair applications on one organisation, all accepted: an objection
    forwarded to the market regulator and answered CORRECTED (the penalty withdrawn first), one the credit
    office upholds itself, a repair application granted (with its CreditRepaired) and one refused. Three
    phases: the penalties; the filings, the forward, the acceptance and the repair; the withdrawal, then
    the answers, the refusal and the decision (a phase's records of one department keep their order)."""
    # general penalties of about four months ago: still published (a year), repairable (after three months)
    decided, corrected = today - timedelta(days=130), today - timedelta(days=60)
    wrong = workload.workload_penalty(random.Random(tag), subject, "xc-samr", f"许市监罚〔{decided.year}〕Y{tag}号",
                                      decided, "general")
    right = workload.workload_penalty(random.Random(tag + "b"), subject, "xc-samr",
                                      f"许市监罚〔{decided.year}〕Z{tag}号", decided + timedelta(days=1), "general")
    objection = objection_filed(subject, event_id(wrong), today)
    kept = objection_filed(subject, event_id(right), today, grounds="past_period", reason="公示期已满仍在公示。")
    granted = repair_applied(subject, event_id(right), today, corrected_on=corrected)
    refused = repair_applied(subject, event_id(wrong), today, department="xc-samr")
    withdrawal = workload.penalty_revoked(subject, wrong[1]["decision_no"], today)
    repair = workload.repaired(subject, "administrative_penalty", right[1]["decision_no"], today, corrected)
    return [
        [wrong, right],
        [objection, kept, granted, objection_forwarded(subject, event_id(objection), "xc-samr", today),
         repair_accepted(subject, event_id(granted), today), repair, refused],
        [withdrawal, repair_refused(subject, event_id(refused), today),
         objection_answered(subject, event_id(objection), "xc-samr", "CORRECTED", today, event_id(withdrawal)),
         objection_answered(subject, event_id(kept), OFFICE, "UPHELD", today),
         repair_decided(subject, event_id(granted), "GRANTED", today, event_id(repair))],
    ]
