"""The department supervision's pure part: what one record of the ledger's topics counts for, and the
window values it is counted into. No Kafka, no faust, no database (unit tests drive it with plain
records; service.py runs it in faust agents).

What is counted (the measure names of ledger/domain/assessment.py), per department:

  * credit.outcomes: every answer of the sequencer (`submissions`), by status (`status.<STATUS>`) and,
    for a refused submission, by each distinct reason code (`reason.<code>`). The department is the
    outcome's `department` header, the one the submission named (ledger/sequencer/service.py
    `outcome_headers`), except for a submission refused before its sender was established (no valid
    signature or attestation, `UNAUTHENTICATED`): anyone can name a department in a header, so such a
    refusal is not held against the department it names and counts under `?`.
  * credit.events, picked by the `event-type` header so that only the entries counted are decoded:
    licences granted and penalties imposed (`publicity`, and `publicity.on_time|late|unknown`: recorded
    within 7 working days of the decision, judged as the views judge it, projections/publicity.py
    `lateness`, on the China date of the entry's `sequenced_at`); the credit office's objection events
    ObjectionFiled, ObjectionForwarded, ObjectionAnswered (`objection.*`; an answer also by its
    `result`, CORRECTED | PARTLY_CORRECTED | UPHELD, read from the submission; a record no schema of
    this tree reads counts as `objection.result.unknown`); punishment feedback
    (PunishmentFeedbackReported, `feedback`). The department is the entry's: the department that
    emitted (for an objection answer, the source department answering).
  * credit.alerts: every joint-punishment alert by its action (`alerts.<action>`), and those that call
    for an act, impose or lift (`alerts`); the department is the alert's key, the one addressed.
  * for the 5-minute buckets of the dashboard's charts (no department): ledger entries appended
    (`appended`, every entry, undecoded), answers and answers by status.

A department id a header or key names that no version of the department matrix knows (a forged or
damaged record) is counted under `?` (assessment.UNKNOWN_DEPARTMENT), so a forger cannot grow the
tables without bound. A record that cannot be read is counted as a problem, never raised: an
exception in a faust agent would acknowledge the record and lose it.

Window values: each (source topic, source partition, department) has, per window, the counts of its
records and the offset of the last one counted (`add`): a record at or below that offset is already
in the window and is skipped, so that a record delivered again after a crash (faust is at least once
here) is never counted twice. Records of one source partition arrive in offset order, so the value
is always the exact count of a prefix of that partition's records in the window.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger.domain import assessment as m
from ledger.domain.local_time import CHINA, bucket_period, day_period, month_period
from ledger.domain.workdays import WorkdayCalendar
from projections import publicity
from schemas import registry

__all__ = ["BUCKET_SECONDS", "COUNTED_TYPES", "KEEP_BEHIND", "PERIODS", "Counted", "Counter", "Record", "add",
           "done_windows", "key_of", "period_of", "rows", "source_of", "tally"]

BUCKET_SECONDS = 300  # the 5-minute buckets of the dashboard's charts
PUBLICITY_TYPES = frozenset({"AdministrativeLicenceGranted", "AdministrativePenaltyImposed"})
OBJECTION_TYPES = {"ObjectionFiled": m.OBJECTION_FILED, "ObjectionForwarded": m.OBJECTION_FORWARDED,
                   "ObjectionAnswered": m.OBJECTION_ANSWERED}
COUNTED_TYPES = PUBLICITY_TYPES | frozenset(OBJECTION_TYPES) | {m.FEEDBACK_EVENT}
ACTING_ALERTS = frozenset({"impose", "lift"})
# the sequencer's refusals of a submission whose sender it could not establish (ledger/records/submissions.py
# `open_submission`, the matrix's intakes): anyone can name a department in a header
UNAUTHENTICATED = frozenset({"signature.missing", "signature.invalid", "department.unknown", "signer.unknown",
                             "intake.unknown", "intake.not_allowed"})
TOPICS = (registry.OUTCOMES.name, registry.EVENTS.name, registry.ALERTS.name)

# the periods counted, each with the function that gives the period of a moment (epoch seconds)
PERIODS = {
    "day": day_period,
    "month": month_period,
    "5min": lambda seconds: bucket_period(seconds, BUCKET_SECONDS),
}


@dataclass(frozen=True)
class Record:
    """One Kafka record of a source topic, as the counter needs it (timestamp in epoch seconds)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Counted:
    """What one record counts for: `measures` for the department's day and month (empty: nothing),
    `recent` for the 5-minute buckets; `problem` names why it could not be read."""

    department: str
    measures: Mapping[str, int]
    recent: Mapping[str, int]
    problem: str | None = None


NOTHING = Counted(m.UNKNOWN_DEPARTMENT, {}, {})


class Counter:
    """The classification of records, with the working-day calendar (lateness) and the departments
    every version of the matrix knows."""

    MEMO = 65_536

    def __init__(self, calendar: WorkdayCalendar, departments: Iterable[str]) -> None:
        self.calendar = calendar
        self.departments = frozenset(departments)
        self._lateness: dict[tuple[date, date], publicity.Lateness] = {}

    @classmethod
    def of(cls, rules: Any) -> Counter:
        """The counter of a rule book (ledger/domain/rulebook.py): its working-day calendar and every
        department any version of the matrix knows."""
        return cls(rules.calendar, {d for matrix in rules.history["departments"].values() for d in matrix.departments})

    def department(self, raw: bytes | str | None) -> str:
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return name if name in self.departments else m.UNKNOWN_DEPARTMENT

    def count(self, record: Record) -> Counted:
        try:
            if record.topic == registry.OUTCOMES.name:
                return self._outcome(record)
            if record.topic == registry.EVENTS.name:
                return self._entry(record)
            if record.topic == registry.ALERTS.name:
                return self._alert(record)
        except (registry.SchemaError, KeyError, TypeError, ValueError, AttributeError) as exc:
            return Counted(m.UNKNOWN_DEPARTMENT, {}, {m.APPENDED: 1} if record.topic == registry.EVENTS.name else {},
                           problem=f"{type(exc).__name__}: {exc}"[:200])
        return Counted(m.UNKNOWN_DEPARTMENT, {}, {}, problem=f"not a supervised topic: {record.topic}")

    def _outcome(self, record: Record) -> Counted:
        _, outcome = registry.decode(record.value or b"", "Outcome")
        status = outcome["status"]
        measures = {m.SUBMISSIONS: 1, m.STATUS + status: 1}
        codes = {r["code"] for r in outcome["reasons"]}
        if status in m.REJECTED_STATUSES:
            for code in codes:
                measures[m.REASON + code] = 1
        # refused before its sender was established: not held against the department it names
        department = m.UNKNOWN_DEPARTMENT if codes & UNAUTHENTICATED else record.headers.get("department")
        return Counted(self.department(department), measures, {m.SUBMISSIONS: 1, m.STATUS + status: 1})

    def _entry(self, record: Record) -> Counted:
        recent = {m.APPENDED: 1}
        raw_type = record.headers.get("event-type")
        event_type = raw_type.decode() if raw_type is not None else None
        if event_type is not None and event_type not in COUNTED_TYPES:
            return Counted(m.UNKNOWN_DEPARTMENT, {}, recent)  # not decoded
        _, entry = registry.decode(record.value or b"", "LedgerEntry")
        event_type = entry["event_type"]
        department = self.department(entry["department"])
        if event_type in PUBLICITY_TYPES:
            _, rec = registry.decode(entry["submission"])
            late = self.lateness(rec["decision_date"], entry["sequenced_at"].astimezone(CHINA).date())
            verdict = {True: m.PUBLICITY_LATE, False: m.PUBLICITY_ON_TIME}.get(late.late, m.PUBLICITY_UNKNOWN)
            return Counted(department, {m.PUBLICITY: 1, verdict: 1}, recent)
        if event_type in OBJECTION_TYPES:
            measures = {OBJECTION_TYPES[event_type]: 1}
            if event_type == "ObjectionAnswered":
                measures[m.OBJECTION_RESULT + objection_result(entry["submission"])] = 1
            return Counted(department, measures, recent)
        if event_type == m.FEEDBACK_EVENT:
            return Counted(department, {m.FEEDBACK: 1}, recent)
        return Counted(department, {}, recent)

    def _alert(self, record: Record) -> Counted:
        _, alert = registry.decode(record.value or b"", "Alert")
        action = alert["action"]
        measures = {m.ALERT_ACTION + action: 1}
        if action in ACTING_ALERTS:
            measures[m.ALERTS] = 1
        return Counted(self.department(alert["department"]), measures, {})

    def lateness(self, decided: date, recorded: date) -> publicity.Lateness:
        """projections/publicity.py `lateness` (7 working days), memoised by (decision, ledger date)."""
        key = (decided, recorded)
        late = self._lateness.get(key)
        if late is None:
            if len(self._lateness) >= self.MEMO:
                self._lateness.clear()
            late = self._lateness[key] = publicity.lateness(self.calendar, decided, recorded)
        return late


def objection_result(submission: bytes) -> str:
    """The `result` of an ObjectionAnswered submission (CORRECTED, PARTLY_CORRECTED, UPHELD), or
    `unknown` when no schema of this tree reads it or it holds another value."""
    try:
        _, rec = registry.decode(submission)
    except registry.SchemaError:
        return "unknown"
    result = rec.get("result")
    return result if result in m.OBJECTION_RESULTS else "unknown"


# ----------------------------------------------------------------------------- window values
def key_of(topic: str, partition: int, department: str | None = None) -> str:
    """The table key of a source partition's counts (and department's, for the day and month)."""
    return f"{topic}|{partition}" if department is None else f"{topic}|{partition}|{department}"


def source_of(key: str) -> tuple[str, int, str]:
    """(topic, partition, department: "" for a 5-minute bucket) of a table key."""
    parts = key.split("|", 2)
    return parts[0], int(parts[1]), parts[2] if len(parts) == 3 else ""


def add(value: Mapping[str, Any] | None, offset: int, measures: Mapping[str, int]) -> dict[str, Any] | None:
    """The window value after counting the record at `offset`: {"o": its offset, "c": {measure: n}};
    None when the value already holds that record (its offset is at or below the last one counted)."""
    if value and value.get("o", -1) >= offset:
        return None
    counts = dict((value or {}).get("c", {}))
    for measure, n in measures.items():
        counts[measure] = counts.get(measure, 0) + n
    return {"o": offset, "c": counts}


# a window is deleted from memory (once written) when its end is this far behind the newest record of
# its source partition: records of a partition come in offset order and nearly in time order
KEEP_BEHIND = {"day": 2 * 86400.0, "month": 7 * 86400.0, "5min": 2 * 3600.0}


def in_order(last: int, offsets: Iterable[int]) -> tuple[list[int], bool]:
    """Of the offsets of one source partition's records in the order delivered, after `last` (the last
    offset handled), the positions of those to count (each after the one before, so a record delivered
    again is left out), and whether they leave an offset out between `last` and the newest. An offset
    left out is a transaction marker or an aborted record, or a record the consumer never delivered:
    only the topic can tell which, so the service reads that stretch of it again (`service.in_order`)."""
    keep: list[int] = []
    gap = False
    for i, offset in enumerate(offsets):
        if offset <= last:
            continue
        gap = gap or offset != last + 1
        keep.append(i)
        last = offset
    return keep, gap


def done_windows(period: str, held: Iterable[tuple[str, tuple[float, float]]], newest: float,
                 unwritten: Collection[tuple[str, str, tuple[float, float]]]) -> list[tuple[str, tuple[float, float]]]:
    """The (key, window)s of one source partition that may leave memory: ended more than KEEP_BEHIND
    before the partition's newest record, and written (not among the `unwritten` (period, key, window)s).
    A record delivered again into such a window after a crash finds it gone and starts it afresh with
    records already counted: its value is then below the one written, which the database keeps."""
    return [(key, window) for key, window in held
            if window[1] < newest - KEEP_BEHIND[period] and (period, key, window) not in unwritten]


def period_of(period: str, seconds: float) -> tuple[float, float]:
    return PERIODS[period](seconds)


def rows(period: str, start: float, key: str, value: Mapping[str, Any]) -> list[tuple[str, float, str, str, str, int, int]]:
    """The database rows of one window value: (period, start, department, measure, topic, partition, n)."""
    topic, partition, department = source_of(key)
    return [(period, start, department, measure, topic, partition, int(n)) for measure, n in value["c"].items()]


def tally(counter: Counter, records: Iterable[Record]) -> dict[tuple[str, float, str, str], int]:
    """The counts the supervision must reach for these records, counted afresh: (period, start,
    department, measure) -> n, summed over the source partitions (a recount from the topics)."""
    out: dict[tuple[str, float, str, str], int] = {}
    for record in records:
        counted = counter.count(record)
        for period in PERIODS:
            measures, department = ((counted.recent, "") if period == "5min"
                                    else (counted.measures, counted.department))
            start = period_of(period, record.timestamp)[0]
            for measure, n in measures.items():
                k = (period, start, department, measure)
                out[k] = out.get(k, 0) + n
    return out
