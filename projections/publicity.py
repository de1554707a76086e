"""Double publicity (双公示) of administrative licences and penalties: windows, deadline, national fields.

  * ``publication_window`` — how long a penalty is published: the window of
    ``PublicationRules.penalty_window`` (regime of the decision date, docs/domain-notes.md §4.1).
    ``licence_window`` — a licence is published for as long as it is valid: from the decision date
    up to, not including, the day after its ``valid_to`` (open-ended for 长期 licences), with no
    repair. A revocation ends it earlier; that is an event (AdministrativeLicenceRevoked), which
    the projection applies, not a date this function can know.
  * ``deadline`` — the 7th working day after the decision: "行政许可、行政处罚等信息自作出行政决定之日
    起7个工作日内上网公开" (国办发〔2015〕51号 §18; 国发〔2016〕33号 §17; docs/domain-notes.md §3.1). The
    decision day itself is not counted and publication on the deadline day is in time
    (``WorkdayCalendar.add_working_days``).
    ``lateness`` — whether the ledger recorded the record by that deadline, judged on
    ``ledger_date``, the China-local (UTC+8, ``china_date``) date of the ledger's append time.
  * ``national_fields`` — the record in the national field codes (XK_ for licences, docs/domain-notes.md
    §3.2; CF_ for penalties, §3.3), ready for the 信用中国 exchange and the public page.

Provisional deadlines (docs/domain-notes.md §16.1). ``ledger/rules/workdays.v<N>.json`` lists the
years whose State Council notice is known (official) and, after them, provisional years (statutory
holidays and make-up days, no 调休) up to 2100. A ``Lateness`` whose deadline or working-day count
reaches into a provisional year has ``provisional = True``: the views, the query API and the portal
show it as 暂定 and the projector recomputes it when the notice is added
(``consumers/projector/recompute.py``).

Calendar coverage (outside the years of the file: before 2017, after 2100). ``deadline`` raises ``CalendarCoverageError`` when the 7 working days run into
a year the file does not cover: a caller that needs the date must not get a guess.
``lateness`` never raises for coverage, so that a projection does not stop on a record decided in
late December or recorded in a year whose notice is not yet out. It returns what can be known
and sets ``reason = "calendar.not_covered"`` when something cannot:

  * deadline known (the decision year and the 7 working days after it are covered): ``late`` is
    ``ledger_date > deadline``, certain whatever the later years' schedule;
    ``working_days_taken`` is ``None`` if ``ledger_date`` lies in an uncovered year.
  * deadline unknown: ``deadline`` and ``working_days_taken`` are ``None``; ``late`` is ``False``
    if the ledger date is at most 7 calendar days after the decision (7 working days never end
    sooner than that), otherwise ``None`` (unknown, to be recomputed once the file is extended).

Known limit, inherited from the calendar: a later notice may turn a weekend at the very end of the
last covered year into a working day, which would move a deadline computed today earlier.

Pure: the standard library and ``ledger.domain`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ledger.domain.errors import CalendarCoverageError
from ledger.domain.identity import mask_ric, normalise
from ledger.domain.local_time import CHINA
from ledger.domain.money import FEN_PER_WANYUAN, fen_to_wanyuan, wanyuan_to_fen  # noqa: F401 (re-exported)
from ledger.domain.rules import PublicationRules
from ledger.domain.workdays import WorkdayCalendar

__all__ = [
    "CHINA",
    "DEADLINE_WORKING_DAYS",
    "LICENCE_EVENTS",
    "NOT_COVERED",
    "PENALTY_EVENTS",
    "Lateness",
    "Window",
    "china_date",
    "deadline",
    "fen_to_wanyuan",
    "lateness",
    "licence_window",
    "national_fields",
    "publication_window",
    "wanyuan_to_fen",
]

DEADLINE_WORKING_DAYS = 7  # 国办发〔2015〕51号 §18, 国发〔2016〕33号 §17
NOT_COVERED = "calendar.not_covered"
LICENCE_EVENTS = frozenset({"AdministrativeLicenceGranted", "AdministrativeLicenceChanged",
                            "AdministrativeLicenceRevoked"})
PENALTY_EVENTS = frozenset({"AdministrativePenaltyImposed"})
ID_CARD = "身份证"  # 证件类型 of a resident identity number (docs/domain-notes.md §3.4)
LICENCE_STATUS = {"valid": "1", "invalid": "2"}  # XK_ZT 当前状态: 1 有效, 2 无效


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """Published in ``[start, automatic_end)``; ``automatic_end`` ``None`` = no fixed end (a licence
    valid 长期). ``earliest_repair``: repair (提前终止公示) may take effect on or after it; ``None``
    for licences, which have no repair."""

    start: date
    earliest_repair: date | None
    automatic_end: date | None

    def covers(self, d: date) -> bool:
        return self.start <= d and (self.automatic_end is None or d < self.automatic_end)


def publication_window(rules: PublicationRules, decision_date: date, severity: str) -> Window:
    """Publication window of an administrative penalty (minor / general / serious), under the
    regime in force on its decision date. ``Rejection`` for an unknown severity or a decision
    before the first regime, as ``PublicationRules.penalty_window``."""
    w = rules.penalty_window(_as_date(decision_date), severity)
    return Window(w.start, w.earliest_repair, w.automatic_end)


def licence_window(decision_date: date, valid_to: date | None) -> Window:
    """Publication window of a licence: from its decision date while it is valid, i.e. up to the
    day after ``valid_to`` (XK_YXQZI; ``None`` = 长期, no end). No repair. A licence whose
    ``valid_to`` is before its decision date gives an empty window (``start == automatic_end``)."""
    start = _as_date(decision_date)
    end = None if valid_to is None else max(start, _as_date(valid_to) + timedelta(days=1))
    return Window(start, None, end)


# --------------------------------------------------------------------------- the 7-working-day deadline


@dataclass(frozen=True)
class Lateness:
    """``deadline``: the 7th working day after the decision; ``working_days_taken``: working days
    from the decision to the ledger date (``(decision, ledger_date]``); ``late``: recorded after the
    deadline. ``None`` where the calendar does not cover the dates, with ``reason`` =
    ``"calendar.not_covered"`` (``None`` when everything is known). ``provisional``: the deadline or
    the count was computed over a provisional year (no notice in the file yet). See the module doc.

    ``late`` compares dates, not counts: a record made on the rest day right after a deadline
    (e.g. Sunday 2024-10-13 after the deadline Saturday 2024-10-12) shows 7 working days and is
    late, because the period ended with its 7th working day."""

    deadline: date | None
    working_days_taken: int | None
    late: bool | None
    reason: str | None = None
    provisional: bool = False


def deadline(calendar: WorkdayCalendar, decision_date: date) -> date:
    """The last day to publish a licence or penalty decided on ``decision_date``: its 7th working
    day after (the decision day not counted; the deadline day still in time). Raises
    ``CalendarCoverageError`` if the calendar does not cover the days counted."""
    return calendar.add_working_days(_as_date(decision_date), DEADLINE_WORKING_DAYS)


def lateness(calendar: WorkdayCalendar, decision_date: date, ledger_date: date,
             working_days: int = DEADLINE_WORKING_DAYS) -> Lateness:
    """Whether the ledger recorded the decision within 7 working days (or ``working_days``: the
    short deadlines of ``calendar.deadlines`` are judged the same way, from their trigger date to
    the date the act was done); never raises for calendar coverage (see the module doc for what is
    known when the calendar stops)."""
    decided, recorded = _as_date(decision_date), _as_date(ledger_date)
    try:
        due: date | None = calendar.add_working_days(decided, working_days)
    except CalendarCoverageError:
        due = None
    if due is None:
        certain_in_time = recorded <= decided + timedelta(days=working_days)
        return Lateness(None, None, False if certain_in_time else None, NOT_COVERED)
    try:
        taken: int | None = calendar.working_days_between(decided, recorded)
    except CalendarCoverageError:
        taken = None
    provisional = calendar.provisional_after(decided, due if taken is None else max(due, recorded))
    return Lateness(due, taken, recorded > due, None if taken is not None else NOT_COVERED, provisional)


def china_date(moment: datetime) -> date:
    """The China-local (UTC+8) calendar date of an aware timestamp, e.g. the ledger's append time.
    ``ValueError`` for a naive datetime (its zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no zone: give the ledger time with its zone (UTC)")
    return moment.astimezone(CHINA).date()


# --------------------------------------------------------------------------- money


# --------------------------------------------------------------------------- national fields


def national_fields(event_type: str, body: Mapping[str, Any], envelope: Mapping[str, Any]) -> dict[str, object]:
    """The record in the national double-publicity field codes.

    ``body`` is the family record without its envelope (the Avro field names of
    ``schemas/avro/<event_type>.v1.avsc``), ``envelope`` the EnvelopeV1 (only ``subject`` is used).
    Licence events (granted, changed, revoked) give XK_ codes, ``AdministrativePenaltyImposed``
    gives CF_ codes; any other event type is a ``ValueError`` (AdministrativePenaltyRevoked is a
    withdrawal of the published record, 行政处罚法 art. 48, not a record of its own).

    Subject: name in ``*_XDR_MC``, counterparty type in ``*_XDR_LB``; an organisation's normalised
    USCC in ``*_XDR_SHXYM``; a natural person's ID number only masked (``mask_ric`` on the
    normalised number) in ``*_XDR_ZJHM``, with ``*_XDR_ZJLX`` = 身份证. Dates ISO ``YYYY-MM-DD``;
    money in 万元 as an exact decimal string (``fen_to_wanyuan``); penalty categories joined with
    ``;``. Every code of the family is present, ``None`` where the record has no value (for a
    licence change: the value did not change).
    """
    if event_type in PENALTY_EVENTS:
        return _penalty_fields(body, envelope)
    if event_type in LICENCE_EVENTS:
        return _licence_fields(event_type, body, envelope)
    raise ValueError(f"{event_type} has no national double-publicity record "
                     f"(licence events: {', '.join(sorted(LICENCE_EVENTS))}; penalty events: "
                     f"{', '.join(sorted(PENALTY_EVENTS))})")


def _subject_fields(prefix: str, body: Mapping[str, Any], envelope: Mapping[str, Any]) -> dict[str, object]:
    subject = envelope["subject"]
    number = normalise(str(subject["id"]))
    person = subject["id_type"] == "RIC"
    return {
        f"{prefix}_XDR_MC": subject["name"],
        f"{prefix}_XDR_LB": body.get("counterparty_type"),
        f"{prefix}_XDR_SHXYM": None if person else number,
        f"{prefix}_XDR_ZJLX": ID_CARD if person else None,
        f"{prefix}_XDR_ZJHM": mask_ric(number) if person else None,
        f"{prefix}_FRDB": body.get("legal_representative"),
    }


def _licence_fields(event_type: str, b: Mapping[str, Any], envelope: Mapping[str, Any]) -> dict[str, object]:
    if event_type == "AdministrativeLicenceRevoked":
        status: str | None = LICENCE_STATUS["invalid"]
    else:
        status = None if b.get("status") is None else LICENCE_STATUS[str(b["status"])]
    return {
        **_subject_fields("XK", b, envelope),
        "XK_XKWS": b.get("decision_document_name"),
        "XK_WSH": b.get("decision_no"),
        "XK_XKLB": b.get("licence_category"),
        "XK_XKZS": b.get("certificate_name"),
        "XK_XKBH": b.get("licence_no"),
        "XK_NR": b.get("content"),
        "XK_JDRQ": _iso(b.get("decision_date")),
        "XK_YXQZ": _iso(b.get("valid_from")),
        "XK_YXQZI": _iso(b.get("valid_to")),
        "XK_XKJG": b.get("authority"),
        "XK_XKJGDM": b.get("authority_code"),
        "XK_ZT": status,
        "XK_LYDW": b.get("data_source"),
        "XK_LYDWDM": b.get("data_source_code"),
        "BZ": b.get("remarks"),
    }


def _penalty_fields(b: Mapping[str, Any], envelope: Mapping[str, Any]) -> dict[str, object]:
    return {
        **_subject_fields("CF", b, envelope),
        "CF_WSH": b["decision_no"],
        "CF_WFXW": b["violation_type"],
        "CF_SY": b["facts"],
        "CF_YJ": b["legal_basis"],
        "CF_CFLB": ";".join(b["penalty_categories"]),
        "CF_NR": b["content"],
        "CF_NR_FK": _money(b.get("fine_fen")),
        "CF_NR_WFFF": _money(b.get("confiscation_fen")),
        "CF_NR_ZKDX": b.get("licence_affected"),
        "CF_JDRQ": _iso(b["decision_date"]),
        "CF_YXQ": _iso(b.get("penalty_valid_until")),
        "CF_GSJZQ": _iso(b.get("publicity_until")),
        "CF_CFJG": b["authority"],
        "CF_CFJGDM": b["authority_code"],
        "CF_SJLY": b["data_source"],
        "CF_SJLYDM": b["data_source_code"],
        "BZ": b.get("remarks"),
    }


def _money(fen: int | None) -> str | None:
    return None if fen is None else fen_to_wanyuan(fen)


def _iso(value: date | str | None) -> str | None:
    return None if value is None else _as_date(value).isoformat()


def _as_date(value: date | str) -> date:
    """A date, from a ``date`` (not a ``datetime``: its day would depend on a zone) or ISO text."""
    if isinstance(value, datetime):
        raise TypeError(f"expected a date, got the datetime {value!r}; convert it with china_date()")
    return value if isinstance(value, date) else date.fromisoformat(value)


def on_display(record: Mapping[str, Any], today: date) -> bool:
    """A double-publicity row (ISO dates, as the queries give them) still on public display on
    `today`: published (penalty) or valid (licence), its window started and not ended. The portal's
    entity page and the credit report show these and no others."""
    if record["status"] not in ("published", "valid"):
        return False
    start, end = record.get("window_start"), record.get("automatic_end")
    return (start is None or date.fromisoformat(start) <= today) and (end is None or date.fromisoformat(end) > today)
