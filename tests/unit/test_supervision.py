"""The department supervision's pure part (consumers/supervision/core.py): what each record of
credit.outcomes, credit.events and credit.alerts counts for, the China-local periods it falls in, and
why a record delivered again after a crash is never counted twice (the window values hold the offset
of the last record counted); and the scoring of a department's month (ledger/domain/assessment.py)."""

from __future__ import annotations

import asyncio
import random
import struct
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from consumers.supervision import core, service
from consumers.supervision.service import ChinaPeriods
from consumers.supervision.sink import Sink
from ledger.domain import assessment as m
from ledger.domain.errors import RulesError
from ledger.domain.local_time import CHINA
from ledger.platform.kafka_access import KafkaAccess
from ledger.records import chain
from ledger.rules import loader
from ops import workload, workload_objections
from projections import supervision as reads
from schemas import registry

RULES = loader.load()
COUNTER = core.Counter(RULES.calendar, RULES.departments.departments)
RNG = random.Random(20)
SUBJECT = workload.subjects(RNG, 1, persons_share=0.0)[0]
NOON = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # 12:00 in Beijing, a Friday


def _outcome(status: str, department: bytes | None, codes: tuple[str, ...] = (), offset: int = 0) -> core.Record:
    value = registry.encode("Outcome", {
        "event_id": f"e{offset}", "status": status, "entity_id": None, "entity_version": None,
        "ledger_partition": None, "ledger_offset": None, "warnings": [], "decided_at": NOON,
        "reasons": [{"field": "subject.id", "code": c, "message": "…"} for c in codes]})
    headers = {"department": department} if department is not None else {}
    return core.Record(registry.OUTCOMES.name, 1, offset, NOON.timestamp(), b"k", value, headers)


def _entry(department: str, rec: dict[str, Any], submission: bytes | None = None, offset: int = 0,
           at: datetime = NOON) -> core.Record:
    env = rec["envelope"]
    entry = {"entity_id": f"uscc:{SUBJECT.id}", "entity_version": 1, "event_id": env["event_id"],
             "event_type": env["event_type"], "category": "enterprise", "department": department,
             "sequenced_at": at, "submission_partition": 0, "submission_offset": 0, "warnings": [],
             "submission": submission if submission is not None else registry.encode(env["event_type"], rec),
             "signature": b"s", "prev_hash": chain.GENESIS, "hash": b""}
    value = chain.seal(entry)
    return core.Record(registry.EVENTS.name, 2, offset, at.timestamp(), b"k", value,
                       {"event-type": env["event_type"].encode(), "event-id": env["event_id"].encode()})


def _alert(department: str, action: str, offset: int = 0) -> core.Record:
    value = registry.encode("Alert", {
        "alert_id": "a" * 32, "department": department, "action": action, "measure_id": "m", "measure_kind": "punishment",
        "measure_name": "限制", "measure_name_en": "ban", "legal_basis": "法", "actions": [], "catalogue_version": 2,
        "still_in_force_by": [], "entity_id": "uscc:x", "public_id": "x", "name": "某公司", "category": "enterprise",
        "list_kind": "dishonest_debtor", "ref": "r", "change_status": "listed", "trigger_event_id": "t",
        "trigger_event_type": "DishonestDebtorListed", "ledger_partition": 0, "ledger_offset": 1, "sequenced_at": NOON,
        "alerted_at": NOON})
    return core.Record(registry.ALERTS.name, 3, offset, NOON.timestamp(), department.encode(), value, {})


# ----------------------------------------------------------------------------- what a record counts for
def test_an_answer_counts_for_the_department_its_header_names_with_each_reason_once() -> None:
    c = COUNTER.count(_outcome("REJECTED", b"xc-samr", ("uscc.malformed", "uscc.malformed", "date.future")))
    assert c.department == "xc-samr" and c.problem is None
    assert c.measures == {"submissions": 1, "status.REJECTED": 1, "reason.uscc.malformed": 1, "reason.date.future": 1}
    assert c.recent == {"submissions": 1, "status.REJECTED": 1}
    assert COUNTER.count(_outcome("ACCEPTED", b"xc-tax")).measures == {"submissions": 1, "status.ACCEPTED": 1}


def test_a_forged_submission_is_not_held_against_the_department_it_names() -> None:
    for code in ("signature.invalid", "signature.missing", "intake.not_allowed"):
        c = COUNTER.count(_outcome("REJECTED", b"xc-samr", (code,)))
        assert c.department == m.UNKNOWN_DEPARTMENT and c.measures[f"reason.{code}"] == 1
    assert COUNTER.count(_outcome("REJECTED", b"xc-samr", ("department.not_authorized",))).department == "xc-samr"


@pytest.mark.parametrize("header", [None, b"xc-forged-dept", b"\xff\xfe"])
def test_an_answer_naming_no_known_department_is_counted_under_unknown(header: bytes | None) -> None:
    c = COUNTER.count(_outcome("REJECTED", header, ("signature.missing",)))
    assert c.department == m.UNKNOWN_DEPARTMENT and c.measures["submissions"] == 1


def test_a_penalty_recorded_after_seven_working_days_is_late_and_one_within_them_on_time() -> None:
    today = NOON.astimezone(CHINA).date()
    late = workload.penalty(RNG, SUBJECT, "xc-samr", 1, decided=today - timedelta(days=20))
    on_time = workload.penalty(RNG, SUBJECT, "xc-samr", 2, decided=today - timedelta(days=1))
    assert COUNTER.count(_entry("xc-samr", late)).measures == {"publicity": 1, "publicity.late": 1}
    assert COUNTER.count(_entry("xc-samr", on_time)).measures == {"publicity": 1, "publicity.on_time": 1}
    _, licence = workload.licence_granted(SUBJECT, "JY14110020000001", today)
    c = COUNTER.count(_entry("xc-samr", licence))
    assert c.department == "xc-samr" and c.measures == {"publicity": 1, "publicity.on_time": 1}
    assert c.recent == {"appended": 1}


def test_the_lateness_is_the_one_the_views_compute() -> None:
    from projections import publicity

    decided = date(2024, 9, 30)  # the National Day holidays follow: the deadline moves
    for recorded in (date(2024, 10, 9), date(2024, 10, 12), date(2024, 10, 13)):
        at = datetime(recorded.year, recorded.month, recorded.day, 10, tzinfo=CHINA)
        rec = workload.penalty(RNG, SUBJECT, "xc-samr", 3, decided=decided)
        verdict = publicity.lateness(RULES.calendar, decided, recorded).late
        measure = "publicity.late" if verdict else "publicity.on_time"
        assert COUNTER.count(_entry("xc-samr", rec, at=at)).measures == {"publicity": 1, measure: 1}


def test_feedback_objections_and_alerts_are_counted_by_type_and_action() -> None:
    _, feedback = workload.feedback(SUBJECT, "trigger", date(2026, 11, 27))
    assert COUNTER.count(_entry("sector-procurement", feedback)).measures == {"feedback": 1}
    # the objection events are counted by their event-type header; an answer's result is read from the
    # submission, and one no schema of this tree reads counts as "unknown"
    foreign = bytes([0]) + struct.pack(">I", 9_999) + b"\x02"
    for event_type, expected in (("ObjectionFiled", {"objection.filed": 1}),
                                 ("ObjectionAnswered", {"objection.answered": 1, "objection.result.unknown": 1})):
        rec = {"envelope": workload.envelope(event_type, SUBJECT, "xc-samr", date(2026, 11, 27))}
        assert COUNTER.count(_entry("xc-samr", rec, submission=foreign)).measures == expected
    assert COUNTER.count(_alert("sector-banking", "impose")).measures == {"alerts": 1, "alerts.impose": 1}
    assert COUNTER.count(_alert("sector-banking", "maintain")).measures == {"alerts.maintain": 1}


def test_an_entry_of_a_type_not_counted_is_not_decoded_and_a_damaged_record_is_a_problem_not_an_error() -> None:
    not_counted = core.Record(registry.EVENTS.name, 0, 5, NOON.timestamp(), b"k", b"not avro at all",
                              {"event-type": b"DishonestDebtorListed"})
    c = COUNTER.count(not_counted)
    assert (c.measures, c.recent, c.problem) == ({}, {"appended": 1}, None)
    damaged = core.Record(registry.EVENTS.name, 0, 6, NOON.timestamp(), b"k", b"\x00\x00\x00\x00\x01\xff junk", {})
    c = COUNTER.count(damaged)
    assert c.problem and c.measures == {} and c.recent == {"appended": 1}
    assert COUNTER.count(core.Record(registry.OUTCOMES.name, 0, 7, 0.0, None, None, {})).problem


# ----------------------------------------------------------------------------- periods
def test_days_and_months_are_china_local() -> None:
    # 16:30 UTC on 31 December is 00:30 on 1 January in Beijing
    moment = datetime(2026, 12, 31, 16, 30, tzinfo=UTC).timestamp()
    day, month = core.period_of("day", moment), core.period_of("month", moment)
    assert datetime.fromtimestamp(day[0], CHINA) == datetime(2027, 1, 1, tzinfo=CHINA)
    assert datetime.fromtimestamp(day[1], CHINA) == datetime(2027, 1, 2, tzinfo=CHINA)
    assert datetime.fromtimestamp(month[0], CHINA) == datetime(2027, 1, 1, tzinfo=CHINA)
    assert datetime.fromtimestamp(month[1], CHINA) == datetime(2027, 2, 1, tzinfo=CHINA)
    assert core.period_of("5min", moment) == (moment - 30 * 60 % 300, moment - 30 * 60 % 300 + 300)
    window = ChinaPeriods("month")  # the faust window over the same periods: one range per moment
    assert window.ranges(moment) == [month] and window.current(moment) == month and not window.stale(0, moment)
    assert reads.month_start(date(2027, 1, 15)).timestamp() == month[0]


@given(st.floats(min_value=1.5e9, max_value=4e9), st.sampled_from(["day", "month", "5min"]))
def test_a_moment_lies_in_its_period(moment: float, period: str) -> None:
    start, end = core.period_of(period, moment)
    assert start <= moment < end
    assert core.period_of(period, start) == (start, end)


# ----------------------------------------------------------------------------- at least once, counted once
def test_a_record_already_in_its_window_is_skipped() -> None:
    v1 = core.add(None, 10, {"submissions": 1})
    v2 = core.add(v1, 11, {"submissions": 1, "status.REJECTED": 1})
    assert v2 == {"o": 11, "c": {"submissions": 2, "status.REJECTED": 1}}
    assert core.add(v2, 11, {"submissions": 1}) is None and core.add(v2, 3, {"submissions": 1}) is None


def _stream(n: int, seed: int) -> list[core.Record]:
    rng = random.Random(seed)
    departments = [b"xc-samr", b"xc-tax", b"xc-court", None]
    out = []
    for offset in range(n):
        status = rng.choice(["ACCEPTED", "ACCEPTED", "REJECTED", "DUPLICATE"])
        r = _outcome(status, rng.choice(departments), ("uscc.malformed",) if status == "REJECTED" else (), offset)
        moment = NOON.timestamp() + offset * rng.choice([60.0, 3600.0, 86_400.0])
        out.append(core.Record(r.topic, r.partition, offset, moment, r.key, r.value, r.headers))
    return out


def _run(records: list[core.Record], table: dict[tuple[str, str, tuple[float, float]], dict[str, Any]]) -> None:
    """What the agent does with each record, on a plain dict standing for the three tables."""
    for record in records:
        counted = COUNTER.count(record)
        for period in core.PERIODS:
            measures = counted.recent if period == "5min" else counted.measures
            if not measures:
                continue
            key = core.key_of(record.topic, record.partition, None if period == "5min" else counted.department)
            slot = (period, key, core.period_of(period, record.timestamp))
            value = core.add(table.get(slot), record.offset, measures)
            if value is not None:
                table[slot] = value


def _totals(table: dict[tuple[str, str, tuple[float, float]], dict[str, Any]]) -> dict[tuple[str, float, str, str], int]:
    out: dict[tuple[str, float, str, str], int] = {}
    for (period, key, window), value in table.items():
        for _p, start, department, measure, _t, _part, n in core.rows(period, window[0], key, value):
            out[(period, start, department, measure)] = out.get((period, start, department, measure), 0) + n
    return out


@given(st.integers(1, 120), st.integers(0, 120), st.integers(0, 120), st.integers(0, 10**6))
def test_a_crash_and_a_delivery_again_give_the_recount(n: int, lost: int, committed: int, seed: int) -> None:
    """The tables' state after a crash is a prefix of the writes (the changelog); faust delivers again
    from a committed offset at or below what that prefix holds (it commits only after the changelog has
    the writes before the offset): the counts end equal to a recount, whatever the prefix and offset."""
    records = _stream(n, seed)
    applied = max(0, n - lost)  # the changelog kept the writes of the first `applied` records
    table: dict[tuple[str, str, tuple[float, float]], dict[str, Any]] = {}
    _run(records[:applied], table)
    _run(records[min(committed, applied):], table)  # delivered again from the committed offset on
    assert _totals(table) == core.tally(COUNTER, records)


def test_a_window_leaves_memory_only_once_written_and_well_behind_its_partition() -> None:
    day = 86_400.0
    newest = NOON.timestamp()
    held = [("k|0|a", core.period_of("day", newest - 5 * day)), ("k|0|b", core.period_of("day", newest - 5 * day)),
            ("k|0|a", core.period_of("day", newest - 1 * day)), ("k|0|a", core.period_of("day", newest))]
    unwritten = {("day", "k|0|b", held[1][1])}
    assert core.done_windows("day", held, newest, unwritten) == [held[0]]  # b not written, the others recent
    month = [("k|0|a", core.period_of("month", newest - 40 * day)), ("k|0|a", core.period_of("month", newest))]
    assert core.done_windows("month", month, newest, set()) == [month[0]]


@given(st.integers(1, 150), st.integers(0, 10**6))
def test_a_window_deleted_and_started_afresh_by_records_delivered_again_never_lowers_the_count(n: int, seed: int) -> None:
    """The database keeps a count's largest value: a window deleted once written and then started afresh
    by records delivered again (counted before) gives a smaller value, never a larger one."""
    records = _stream(n, seed)
    table: dict[tuple[str, str, tuple[float, float]], dict[str, Any]] = {}
    _run(records, table)
    written = _totals(table)
    rng = random.Random(seed)
    for slot in [k for k in table if rng.random() < 0.5]:
        del table[slot]
    _run(records[rng.randrange(n):], table)  # delivered again from some offset on
    again = _totals(table)
    assert all(again.get(k, 0) <= v for k, v in written.items()) and set(again) <= set(written)
    assert {k: max(v, again.get(k, 0)) for k, v in written.items()} == core.tally(COUNTER, records)


# ----------------------------------------------------------------------------- the assessment
def test_each_component_is_a_rate_and_the_score_their_weighted_mean() -> None:
    counts = {"submissions": 12, "status.ACCEPTED": 8, "status.REJECTED": 1, "status.CONFLICT": 1,
              "status.DUPLICATE": 2, "reason.uscc.malformed": 1, "publicity": 10, "publicity.on_time": 6,
              "publicity.late": 3, "publicity.unknown": 1, "objection.answered": 4, "objection.result.UPHELD": 3,
              "objection.result.CORRECTED": 1, "alerts": 5, "feedback": 7}
    a = m.assess(RULES.assessment, "sector-procurement", counts, reports_feedback=True)
    assert a.rates == {"acceptance": 0.8, "timeliness": 6 / 9, "accuracy": 0.75, "feedback": 1.0}  # capped
    w = {k: c.weight for k, c in RULES.assessment.components.items()}
    assert a.score == round(100 * (w["acceptance"] * 0.8 + w["timeliness"] * 6 / 9 + w["accuracy"] * 0.75
                                   + w["feedback"]) / 100, 1)
    assert (a.accepted, a.rejected, a.duplicates, a.late, a.unknown, a.corrected) == (8, 2, 2, 3, 1, 1)


def test_a_component_without_a_denominator_is_not_assessed() -> None:
    a = m.assess(RULES.assessment, "xc-samr", {"status.ACCEPTED": 9, "status.REJECTED": 1, "alerts": 4},
                 reports_feedback=False)
    assert a.rates == {"acceptance": 0.9, "timeliness": None, "accuracy": None, "feedback": None}
    assert a.score == 90.0 and a.band == RULES.assessment.band(90.0).grade
    assert m.assess(RULES.assessment, "xc-samr", {}, reports_feedback=True).score is None


def test_the_assessment_rules_are_checked_like_every_rules_file() -> None:
    doc, file = loader.documents(None, "department_assessment")[-1]
    bad = {**doc, "components": {**doc["components"], "feedback": {**doc["components"]["feedback"], "weight": 16}}}
    with pytest.raises(RulesError, match="add up to 100"):
        m.parse_assessment_rules(bad, file)
    bad = {**doc, "components": {k: v for k, v in doc["components"].items() if k != "accuracy"}}
    with pytest.raises(RulesError) as info:
        m.parse_assessment_rules(bad, file)
    assert info.value.entry == "components"
    assert "department_assessment" not in RULES.stamp  # a report's rule: entries do not name it


def test_the_csv_rows_follow_the_columns_and_unknown_departments_are_not_scored() -> None:
    counts = {"xc-samr": {"submissions": 3, "status.ACCEPTED": 3}, "?": {"submissions": 2, "status.REJECTED": 2}}
    table = reads.assessments(RULES.assessment, RULES.departments, counts)
    unknown = next(a for a in table if a.department == "?")
    assert unknown.submissions == 2 and unknown.score is None
    assert [a.department for a in table][-1] == "?"
    assert "ledger-scheduler" not in {a.department for a in table}  # a system, not a department to assess
    rows = reads.csv_rows(date(2026, 11, 1), {"xc-samr": "许昌市市场监督管理局"}, [a for a in table if reads.active(a)])
    assert [len(r) for r in rows] == [len(reads.CSV_COLUMNS)] * 2
    assert rows[0][:5] == ["2026-11", "xc-samr", "许昌市市场监督管理局", "3", "3"] and rows[0][-2:] == ["100.0", "优秀"]


def test_the_buckets_of_the_last_hours_end_with_the_current_one() -> None:
    now = datetime(2026, 11, 27, 4, 7, 30, tzinfo=UTC)
    starts = reads.buckets(now, 1)
    assert len(starts) == 12 and starts[-1] == datetime(2026, 11, 27, 4, 5, tzinfo=UTC)
    assert reads.china_clock(starts[-1]) == "12:05"
    assert reads.months_before(date(2026, 2, 10), 3) == [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


@pytest.mark.parametrize("result", sorted(m.OBJECTION_RESULTS))
def test_an_objection_answer_counts_under_its_result(result: str) -> None:
    subject = workload.subjects(random.Random(7), 1, persons_share=0.0)[0]
    _, rec = workload_objections.objection_answered(subject, "YY20261201-AAAAAAAA", "xc-samr", result, date(2026, 12, 2))
    assert core.objection_result(registry.encode("ObjectionAnswered", rec)) == result
    assert core.objection_result(b"\x00\x00\x00\x00\x01 not a record") == "unknown"


# ----------------------------------------------------------------------------- the agent and its changelog
class _Table:
    """A windowed table's store and changelog: each write a future the test settles, as the broker would."""

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.sent: list[asyncio.Future[None]] = []

    def send_changelog(self, partition: int, key: Any, value: Any, **_: Any) -> asyncio.Future[None]:
        self.sent.append(asyncio.get_running_loop().create_future())
        return self.sent[-1]


class _Stream:
    """faust's stream of a batch of events; it notes when the agent asks for the next batch."""

    def __init__(self, batch: list[Any]) -> None:
        self.batch, self.asked_again = batch, asyncio.Event()

    async def take_events(self, n: int, within: float) -> Any:
        yield self.batch
        self.asked_again.set()


def _message(record: core.Record) -> Any:
    return SimpleNamespace(topic=record.topic, partition=record.partition, offset=record.offset,
                           timestamp=record.timestamp, key=record.key, value=record.value,
                           headers=list(record.headers.items()))


class _Reader:
    """The topics as the supervision's reader sees them: the committed records it holds, per partition."""

    def __init__(self, messages: list[Any] = ()) -> None:  # type: ignore[assignment]
        self.messages, self.reads = list(messages), []

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        self.reads.append((topic, partition, start, end))
        return sorted((m for m in self.messages if (m.topic, m.partition) == (topic, partition)
                       and start <= m.offset < end), key=lambda m: m.offset)


def _supervision(tmp_path: Any) -> tuple[service.Supervision, dict[str, _Table]]:
    async def sample() -> dict[str, float]:
        return {}
    sup = service.Supervision(KafkaAccess("127.0.0.1:1", "nobody", "none"), COUNTER, Sink("postgresql:///none"),
                              sample, lambda: NOON, tmp_path)
    tables = {period: _Table() for period in sup.tables}
    sup.tables = tables
    sup.progress = _Table()  # type: ignore[assignment]
    sup.reader = _Reader()  # type: ignore[assignment]
    return sup, tables


async def test_a_batch_is_acknowledged_only_once_the_broker_has_its_changelog_writes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # faust acknowledges a batch when the agent's body returns and may commit its offsets then: the body
    # must wait for the batch's table writes, or a stop or a crash could lose counts whose offsets are committed
    sup, tables = _supervision(tmp_path)
    stream = _Stream([SimpleNamespace(message=_message(_alert("xc-finance", "impose", offset=o))) for o in (5, 6)])
    sup.reader = _Reader([e.message for e in stream.batch])  # type: ignore[assignment]
    agent = asyncio.create_task(sup._agent(stream))
    await asyncio.sleep(0.05)
    pending = [f for t in tables.values() for f in t.sent]
    assert len(pending) == 2  # the alerts' day and month windows, once each for the batch of two
    assert not stream.asked_again.is_set() and not agent.done()
    pending[0].set_result(None)
    await asyncio.sleep(0.05)
    assert not stream.asked_again.is_set()
    pending[1].set_result(None)
    await asyncio.sleep(0.05)
    # then, only then, the partition's progress: the last offset whose counts the broker holds
    progress = sup.progress.sent  # type: ignore[attr-defined]
    assert len(progress) == 1 and not stream.asked_again.is_set() and not agent.done()
    assert sup.counted_to(SimpleNamespace(topic=registry.ALERTS.name, partition=3)) == 6
    progress[0].set_result(None)
    await asyncio.wait_for(agent, 1)
    assert stream.asked_again.is_set()
    assert {v["c"]["alerts.impose"] for t in tables.values() for v in t.data.values()} == {2}


async def test_after_a_recovery_a_source_partition_is_read_again_from_its_last_counted_record() -> None:
    # faust's committed offset may be ahead of what the tables hold (a SIGKILL lost records so): the
    # consumer puts each source partition back at the record after the last one counted
    consumer = service._ReadCommittedConsumer.__new__(service._ReadCommittedConsumer)
    tps = [TopicPartition(registry.EVENTS.name, p) for p in (0, 1, 2)]
    sought: list[tuple[Any, int]] = []

    async def committed(self: Any) -> dict[Any, int]:
        return {tps[0]: 33, tps[1]: 10, tps[2]: 7}

    async def seek(tp: Any, offset: int) -> None:
        sought.append((tp, offset))
    consumer.app = SimpleNamespace(counted_to=lambda tp: {0: 24, 1: 9}.get(tp.partition))
    consumer.assignment = lambda: set(tps)  # type: ignore[method-assign]
    consumer.seek = seek  # type: ignore[method-assign]
    original = service.faust_kafka.Consumer.seek_to_committed
    service.faust_kafka.Consumer.seek_to_committed = committed  # type: ignore[method-assign]
    try:
        positions = await consumer.seek_to_committed()
    finally:
        service.faust_kafka.Consumer.seek_to_committed = original  # type: ignore[method-assign]
    assert sought == [(tps[0], 25)]  # partition 1 is where it should be; partition 2 has no progress yet
    assert positions == {tps[0]: 25, tps[1]: 10, tps[2]: 7}


async def test_a_changelog_write_that_fails_stops_the_process_before_the_batch_is_acknowledged(tmp_path,
                                                                                            monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sup, tables = _supervision(tmp_path)
    exits: list[int] = []

    class Exited(Exception):
        pass

    def _exit(code: int) -> None:
        exits.append(code)
        raise Exited(code)
    monkeypatch.setattr(service.os, "_exit", _exit)
    stream = _Stream([SimpleNamespace(message=_message(_alert("xc-finance", "impose", offset=9)))])
    agent = asyncio.create_task(sup._agent(stream))
    await asyncio.sleep(0.05)
    next(f for t in tables.values() for f in t.sent).set_exception(RuntimeError("the broker refused the write"))
    with pytest.raises(Exited):
        await asyncio.wait_for(agent, 1)
    assert exits == [70] and not stream.asked_again.is_set()


async def test_what_the_consumer_commits_is_the_record_after_the_last_one_counted() -> None:
    # faust's own offsets can run ahead of the tables; what reaches the group is the progress table's
    consumer = service._ReadCommittedConsumer.__new__(service._ReadCommittedConsumer)
    tps = [TopicPartition(registry.EVENTS.name, p) for p in (0, 1, 2)]
    progress = {0: 24, 1: 9}
    commits: list[dict[Any, int]] = []

    async def commit(self: Any, offsets: Any) -> bool:
        commits.append(dict(offsets))
        return True
    consumer.app = SimpleNamespace(counted_to=lambda tp: progress.get(tp.partition))
    consumer.assignment = lambda: set(tps)  # type: ignore[method-assign]
    original = service.faust_kafka.Consumer._commit
    service.faust_kafka.Consumer._commit = commit  # type: ignore[method-assign]
    try:
        await consumer._commit({tps[0]: 40, tps[1]: 12, tps[2]: 8})  # faust's: ahead, or nothing counted yet
        since: dict[Any, int] = {}
        assert await consumer.commit_counted(since) == 2
        assert await consumer.commit_counted(since) == 0  # nothing moved since
        progress[1] = 15
        assert await consumer.commit_counted(since) == 1
    finally:
        service.faust_kafka.Consumer._commit = original  # type: ignore[method-assign]
    assert commits == [{tps[0]: 25, tps[1]: 10}, {tps[0]: 25, tps[1]: 10}, {tps[1]: 16}]


async def test_a_seek_runs_in_the_thread_of_the_consumer_it_moves() -> None:
    # the aiokafka consumer's fetcher runs in faust's consumer thread; a seek from another thread could
    # be undone by the position the fetcher sets after handing out records
    consumer = service._ReadCommittedConsumer.__new__(service._ReadCommittedConsumer)
    calls: list[tuple[Any, ...]] = []
    aiokafka_consumer = SimpleNamespace(seek=lambda tp, offset: calls.append(("seek outside the thread",)))

    async def call_thread(fun: Any, *args: Any) -> None:
        calls.append((fun, *args))
    consumer._thread = SimpleNamespace(call_thread=call_thread, _ensure_consumer=lambda: aiokafka_consumer)
    tp = TopicPartition(registry.ALERTS.name, 2)
    await consumer._seek(tp, 467)
    assert calls == [(aiokafka_consumer.seek, tp, 467)]


async def test_records_delivered_again_never_move_the_progress_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sup, _ = _supervision(tmp_path)
    tp = SimpleNamespace(topic=registry.ALERTS.name, partition=3)
    for offsets in ((40, 41, 43), (12, 13)):  # the second: delivered again after a seek back
        sent = sup.mark([_message(_alert("xc-finance", "impose", offset=o)) for o in offsets])
        assert len(sent) == 1
    assert sup.counted_to(tp) == 43


@pytest.mark.parametrize(("last", "offsets", "keep", "gap"), [
    (9, [10, 11, 12], [0, 1, 2], False),
    (9, [10, 11, 13], [0, 1, 2], True),      # 12: a marker, or a record never delivered
    (9, [7, 8, 9, 10], [3], False),          # delivered again up to the last handled
    (9, [12, 10, 11, 13], [0, 3], True),     # out of order: what went back is left out
    (-1, [0, 1], [0, 1], False),             # the partition's first records
    (-1, [5], [0], True),                    # nothing handled yet, the partition starting later
    (20, [3, 4], [], False),
])
def test_the_records_to_count_follow_the_last_one_handled(last: int, offsets: list[int], keep: list[int],
                                                          gap: bool) -> None:
    assert core.in_order(last, offsets) == (keep, gap)


async def test_a_record_the_consumer_skipped_is_read_from_the_topic_and_counted_in_its_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # faust's consumer handed out records 10, 11 and 14 of a partition; the topic has 12 too (13 is a
    # transaction's marker): 12 is counted, before 14, and each record once
    sup, tables = _supervision(tmp_path)
    topic = [_message(_alert("xc-finance", "impose", offset=o)) for o in (10, 11, 12, 14)]
    sup.reader = _Reader(topic)  # type: ignore[assignment]
    sup.progress.data[f"{registry.ALERTS.name}|3"] = 9  # counted up to 9 before
    delivered = [topic[0], topic[1], topic[3]]
    order = await sup.in_order(delivered)
    assert [m.offset for m in order] == [10, 11, 12, 14]
    assert sup.reader.reads == [(registry.ALERTS.name, 3, 10, 15)]  # type: ignore[attr-defined]
    sup.count(order)
    assert {v["o"]: v["c"]["alerts.impose"] for t in tables.values() for v in t.data.values()} == {14: 4}
    # delivered again after a seek back, with the next one: only the next is counted, and no gap to read
    again = await sup.in_order([topic[2], topic[3], _message(_alert("xc-finance", "impose", offset=15))])
    assert [m.offset for m in again] == [15] and len(sup.reader.reads) == 1  # type: ignore[attr-defined]
    # after a recovery, the progress table says what was handled
    await sup._progress_recovered()
    assert [m.offset for m in await sup.in_order(topic[:2])] == [10, 11]


async def test_a_gap_that_is_only_a_marker_is_read_once_and_changes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sup, _ = _supervision(tmp_path)
    topic = [_message(_alert("xc-finance", "impose", offset=o)) for o in (0, 1, 3, 4)]
    sup.reader = _Reader(topic)  # type: ignore[assignment]
    order = await sup.in_order(topic)
    assert order == topic and len(sup.reader.reads) == 1  # type: ignore[attr-defined]
