"""Objections (信用信息异议) and credit repair applications (信用修复申请): the credit office's own work
as events on the ledger (docs/design-notes.md §2; docs/domain-notes.md §9, §9.2).

Each matter is kept in the entity's state under its receipt number, the event id of its filing
(``EntityState.requests``), with its steps and their dates:

  objection            ObjectionFiled -> [ObjectionForwarded] -> ObjectionAnswered
                       status filed -> forwarded -> answered (CORRECTED, PARTLY_CORRECTED or UPHELD)
  repair application   RepairApplied -> RepairAccepted | RepairRefused; RepairAccepted -> RepairDecided
                       status applied -> accepted -> decided (GRANTED or NOT_GRANTED), or refused

Both name the record they are about by the event id that made it (a licence, a penalty, a listing,
a red-list honour of the same subject). While a matter is open the state remembers what happens to
the entity after it: an objection the events recorded since its filing (its answer CORRECTED or
PARTLY_CORRECTED must name one of them: the correction is on the ledger before the answer), a repair
application the CreditRepaired events of its record (a GRANTED decision must name one: that event was
judged under the repair rules in force, so an application is granted only where the rules allow it).

``evolve_request`` and ``follow`` are the part of ``evolve`` (ledger/domain/model.py) that changes
``requests``; ``CHECKS`` the part of ``decide`` (ledger/domain/decide.py) that judges the seven
families, given the credit office's department id (``objections.v<N>.json``). Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from ledger.domain.errors import Rejection
from ledger.domain.rules import (
    COURT_ONLY_LISTS,
    LIST_KINDS,
    LIST_TITLES,
    OBJECTION_EVENTS,
    REPAIR_APPLICATION_EVENTS,
    court_only_refusal,
)

if TYPE_CHECKING:
    from ledger.domain.model import Draft, EntityState, Event

__all__ = ["CHECKS", "GROUNDS_TITLES", "OBJECTION", "OPEN", "RECORD_TITLES", "REPAIR", "REQUEST_EVENTS", "STATUS_TITLES",
           "evolve_request", "follow", "record_of"]

OBJECTION, REPAIR = "objection", "repair"
FILINGS = {"ObjectionFiled": OBJECTION, "RepairApplied": REPAIR}
REQUEST_EVENTS = OBJECTION_EVENTS | REPAIR_APPLICATION_EVENTS
OPEN = {OBJECTION: ("filed", "forwarded"), REPAIR: ("applied", "accepted")}
PENALTY, LICENCE, RED = "administrative_penalty", "administrative_licence", "red"
RECORD_TITLES = {PENALTY: "行政处罚", LICENCE: "行政许可", RED: "守信激励（红名单）", **LIST_TITLES}
CORRECTING = ("CORRECTED", "PARTLY_CORRECTED")
# an objection's grounds (ObjectionFiled.grounds) as the form and the credit report name them
GROUNDS_TITLES = {"error": "信息有误", "omission": "信息遗漏", "past_period": "超过公示期限仍在公示",
                  "infringement": "侵犯合法权益"}


# =========================================================================== the record a matter is about


def record_of(state: EntityState | Draft, event_id: str) -> dict[str, Any] | None:
    """The record of the entity that the event ``event_id`` made: its kind (administrative_penalty,
    administrative_licence, a list kind, or red), its number, its status and, when the state knows it,
    the department that made it; None if no record of the entity was made by that event."""
    for ref, x in state.penalties.items():
        if x["event_id"] == event_id:
            return {"record_kind": PENALTY, "record_ref": ref, "status": x["status"], "department": None}
    for ref, x in state.licences.items():
        if x["event_id"] == event_id:
            return {"record_kind": LICENCE, "record_ref": ref, "status": x["status"], "department": None}
    for x in state.listings.values():
        if x["event_id"] == event_id:
            return {"record_kind": x["list_kind"], "record_ref": x["ref"], "status": x["status"],
                    "department": x["department"]}
    for ref, x in state.honours.items():
        if x["event_id"] == event_id:
            return {"record_kind": RED, "record_ref": ref, "status": x["status"], "department": x["department"]}
    return None


# =========================================================================== evolve


def evolve_request(s: Draft, e: Event) -> None:
    """The state after one of the seven families, in place (``s`` has its version and counts already)."""
    b, t = e.body, e.event_type
    if t in FILINGS:
        record = record_of(s, b["target_event_id"])
        if record is None:  # decide refused it; an as-of fold of a part of the history may lack the record
            raise KeyError(b["target_event_id"])
        matter = {"kind": FILINGS[t], "target_event_id": b["target_event_id"], "record_kind": record["record_kind"],
                  "record_ref": record["record_ref"], "record_department": record["department"],
                  "status": OPEN[FILINGS[t]][0], "filed_by": e.department, "received_on": str(b["received_on"]),
                  **({"grounds": b["grounds"]} if t == "ObjectionFiled" else {}),
                  "rules": e.rules_versions.get("objections", 1),
                  "since" if t == "ObjectionFiled" else "repaired_by": []}
        s.own("requests")[e.event_id] = matter
        return
    receipt = b["receipt_no"]
    m = dict(s.requests[receipt])
    if t == "ObjectionForwarded":
        m.update(status="forwarded", forwarded_on=str(b["forwarded_on"]), forwarded_to=b["to_department"])
    elif t == "ObjectionAnswered":
        m.pop("since", None)
        m.update(status="answered", answered_on=str(b["answered_on"]), answered_by=e.department, result=b["result"],
                 correcting_event_id=b.get("correcting_event_id"))
    elif t == "RepairAccepted":
        m.update(status="accepted", accepted_on=str(b["accepted_on"]))
    elif t == "RepairRefused":
        m.pop("repaired_by", None)
        m.update(status="refused", refused_on=str(b["refused_on"]))
    elif t == "RepairDecided":
        m.pop("repaired_by", None)
        m.update(status="decided", decided_on=str(b["decided_on"]), result=b["result"],
                 repair_event_id=b.get("repair_event_id"))
    else:
        raise ValueError(f"evolve_request does not know {t}")
    s.own("requests")[receipt] = m


def follow(s: Draft, e: Event) -> None:
    """What an open matter remembers of an event of another family recorded after it: an objection
    every such event (its possible correction), a repair application the CreditRepaired of its record."""
    changed = {}
    for receipt, m in s.requests.items():
        if m["status"] not in OPEN[m["kind"]]:
            continue
        if m["kind"] == OBJECTION:
            changed[receipt] = {**m, "since": [*m["since"], [e.event_id, e.event_type]]}
        elif e.event_type == "CreditRepaired" and (e.body["target_kind"], e.body["target_ref"]) == (
                m["record_kind"], m["record_ref"]):
            changed[receipt] = {**m, "repaired_by": [*m["repaired_by"], e.event_id]}
    if changed:
        s.own("requests").update(changed)


# =========================================================================== decide


Check = Callable[["EntityState", "Event", date, str], list[str]]


def _day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _text(b: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if not str(b.get(name) or "").strip():
            raise Rejection(name, "required", f"{name} 不能为空 (this field is required)")


def _dated(b: Mapping[str, Any], name: str, label: str, today: date, after: str | date | None = None,
           after_label: str = "") -> None:
    """``b[name]`` not after today, and not before ``after`` (the previous step's date)."""
    if b[name] > today:
        raise Rejection(name, "time.future", f"{label} {b[name]} 晚于今天 {today} (the date {name} is in the future)")
    if after is not None and b[name] < _day(after):
        raise Rejection(name, "time.order", f"{label} {b[name]} 早于{after_label} {after} "
                                            f"({name} is before the {after_label})")


def _matter(state: EntityState, receipt: str, kind: str) -> Mapping[str, Any]:
    m = state.requests.get(receipt)
    if m is None or m["kind"] != kind:
        what = "异议" if kind == OBJECTION else "信用修复申请"
        raise Rejection("receipt_no", f"{kind}.unknown",
                        f"该主体没有受理编号为 {receipt} 的{what} (this subject has no {kind} with receipt number {receipt})")
    return m


def _in_status(m: Mapping[str, Any], statuses: tuple[str, ...], step: str) -> None:
    if m["status"] not in statuses:
        raise Rejection("receipt_no", f"{m['kind']}.status",
                        f"该事项当前状态为“{STATUS_TITLES[m['kind']][m['status']]}”，不能{step} "
                        f"(the matter is {m['status']}; this step needs it to be {' or '.join(statuses)})")


def _next_step(state: EntityState, e: Event, today: date, kind: str, statuses: tuple[str, ...], verb: str,
               dated: tuple[str, str], *required: str) -> Mapping[str, Any]:
    """The matter a step names by its receipt number, in a status the step may follow; the step's own
    date (``dated``: field and label) not in the future and not before the previous step's."""
    _text(e.body, *required)
    m = _matter(state, e.body["receipt_no"], kind)
    _in_status(m, statuses, verb)
    previous = {"filed": ("received_on", "受理日期"), "forwarded": ("forwarded_on", "转办日期"),
                "applied": ("received_on", "申请日期"), "accepted": ("accepted_on", "受理日期")}[m["status"]]
    _dated(e.body, *dated, today, m[previous[0]], previous[1])
    return m


def _already_open(state: EntityState, kind: str, target: str) -> None:
    for receipt, m in state.requests.items():
        if m["kind"] == kind and m["target_event_id"] == target and m["status"] in OPEN[kind]:
            what = "异议" if kind == OBJECTION else "信用修复申请"
            raise Rejection("target_event_id", f"{kind}.already_open",
                            f"该记录已有正在办理的{what}（受理编号 {receipt}），请等待办理结果 "
                            f"(an open {kind} about this record exists already, receipt number {receipt})")


def _record(state: EntityState, e: Event) -> dict[str, Any]:
    record = record_of(state, e.body["target_event_id"])
    if record is None:
        raise Rejection("target_event_id", "record.unknown",
                        f"该主体没有事件编号为 {e.body['target_event_id']} 的信用记录，请从该主体的公示页面选择记录 "
                        f"(this subject has no licence, penalty, listing or honour made by that event)")
    return record


def _check_objection_filed(state: EntityState, e: Event, today: date, office: str) -> list[str]:
    b = e.body
    _text(b, "target_event_id", "reason", "contact_name", "contact_phone")
    _dated(b, "received_on", "受理日期", today)
    _record(state, e)
    _already_open(state, OBJECTION, b["target_event_id"])
    return []


def _check_objection_forwarded(state: EntityState, e: Event, today: date, office: str) -> list[str]:
    b = e.body
    m = _next_step(state, e, today, OBJECTION, ("filed",), "转办", ("forwarded_on", "转办日期"), "to_department")
    if b["to_department"] == office:
        raise Rejection("to_department", "objection.forward_to_office",
                        "属于平台自身的异议由平台直接答复，无需转办 (an objection within the platform's own remit is "
                        "answered by it directly, not forwarded to itself)")
    known = m["record_department"]
    if known is not None and b["to_department"] != known:
        raise Rejection("to_department", "objection.not_provider",
                        f"该记录由 {known} 提供，异议应转办该单位 (the record was provided by {known}; forward the "
                        f"objection to it)")
    return []


def _check_objection_answered(state: EntityState, e: Event, today: date, office: str) -> list[str]:
    b = e.body
    m = _next_step(state, e, today, OBJECTION, OPEN[OBJECTION], "答复", ("answered_on", "答复日期"), "explanation")
    forwarded = m["status"] == "forwarded"
    allowed = {office, m["forwarded_to"]} if forwarded else {office}
    if e.department not in allowed:
        raise Rejection("source_department", "objection.not_answering_department",
                        f"该异议应由{'被转办的信息提供单位 ' + m['forwarded_to'] + ' 或' if forwarded else ''}信用平台 "
                        f"{office} 答复 (only {' or '.join(sorted(allowed))} may answer this objection)")
    correcting = b.get("correcting_event_id")
    if b["result"] in CORRECTING:
        if not correcting:
            raise Rejection("correcting_event_id", "required",
                            "更正的答复须写明更正事件的事件编号 (a correction names the event that corrected the record)")
        since = {x[0]: x[1] for x in m["since"]}
        if correcting not in since:
            raise Rejection("correcting_event_id", "objection.not_a_correction",
                            f"事件 {correcting} 不是该异议受理后本主体记录的事件，请先报送更正（如撤回处罚公示），再答复 "
                            f"(the correcting event must be an event of this subject recorded after the objection "
                            f"was filed, e.g. the withdrawal of the penalty)")
    elif correcting:
        raise Rejection("correcting_event_id", "objection.upheld_with_correction",
                        "维持原记录的答复不能附更正事件 (an answer that upholds the record names no correcting event)")
    return []


def _check_repair_applied(state: EntityState, e: Event, today: date, office: str) -> list[str]:
    b = e.body
    _text(b, "target_event_id", "statement", "contact_name", "contact_phone")
    _dated(b, "received_on", "申请日期", today)
    if b.get("corrected_on") is not None:
        _dated(b, "corrected_on", "纠正日期", today)
    record = _record(state, e)
    kind, status = record["record_kind"], record["status"]
    if kind in COURT_ONLY_LISTS:
        raise court_only_refusal(kind, "target_event_id")
    if kind not in (PENALTY, *LIST_KINDS):
        raise Rejection("target_event_id", "repair.not_repairable",
                        f"{RECORD_TITLES.get(kind, kind)}不是失信信息，无需信用修复 (only a published penalty or a "
                        f"black listing can be repaired)")
    if status not in ("published", "active"):
        raise Rejection("target_event_id", "repair.record_ended",
                        f"该{RECORD_TITLES.get(kind, kind)}已不在公示中，无需修复 (the record is no longer shown: {status})")
    _already_open(state, REPAIR, b["target_event_id"])
    return []


def _check_repair_accepted(state: EntityState, e: Event, today: date, office: str) -> list[str]:
    _next_step(state, e, today, REPAIR, ("applied",), "受理", ("accepted_on", "受理日期"))
    return []


def _check_repair_refused(state: EntityState, e: Event, today: date, office: str) -> list[str]:
    _next_step(state, e, today, REPAIR, ("applied",), "不予受理", ("refused_on", "不予受理日期"), "reason")
    return []


def _check_repair_decided(state: EntityState, e: Event, today: date, office: str) -> list[str]:
    b = e.body
    m = _next_step(state, e, today, REPAIR, ("accepted",), "作出决定", ("decided_on", "决定日期"), "explanation")
    repair = b.get("repair_event_id")
    if b["result"] == "GRANTED":
        if repair not in m["repaired_by"]:
            raise Rejection("repair_event_id", "repair.not_repaired",
                            "予以修复的决定须写明该记录的信用修复事件（CreditRepaired）的事件编号；该事件须在申请之后记录，"
                            "并按现行修复规则通过审核 (a GRANTED decision names the CreditRepaired of this record "
                            "recorded after the application; that repair must be judged allowed by the rules in "
                            "force first)")
    elif repair:
        raise Rejection("repair_event_id", "repair.not_granted_with_repair",
                        "不予修复的决定不能附修复事件 (a NOT_GRANTED decision names no repair event)")
    return []


CHECKS: dict[str, Check] = {
    "ObjectionFiled": _check_objection_filed,
    "ObjectionForwarded": _check_objection_forwarded,
    "ObjectionAnswered": _check_objection_answered,
    "RepairApplied": _check_repair_applied,
    "RepairAccepted": _check_repair_accepted,
    "RepairRefused": _check_repair_refused,
    "RepairDecided": _check_repair_decided,
}

# what the portal and the follow page call each status (异议处理中 is the mark of an open objection)
STATUS_TITLES = {
    OBJECTION: {"filed": "已受理，异议处理中", "forwarded": "已转办信息提供单位，异议处理中", "answered": "已答复"},
    REPAIR: {"applied": "已提交申请", "accepted": "已受理，审核中", "refused": "不予受理", "decided": "已作出决定"},
}
