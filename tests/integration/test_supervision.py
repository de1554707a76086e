"""Given a stream of submissions from many departments (penalties, some recorded after their 7 working
days; licences; court listings, which raise alerts, and the sector systems' feedback on them;
resubmissions; refusals), when the department supervision (faust) is killed with SIGKILL twice in the
middle of it and started again, while it catches up a backlog of 24,000 records written in
transactions of 1 to 40 records, some aborted (each transaction's marker takes an offset of its own),
then its counts in PostgreSQL end equal to a recount of credit.outcomes, credit.events and
credit.alerts from their first offsets: every China-local day and month and every 5-minute bucket,
every department and every measure. Records of an aborted
transaction are not counted (the supervision reads committed records only). The dashboard shows the
month's assessment from those counts, and the same as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from consumers.supervision import core, recount
from ledger.client import submit_as_departments
from ledger.platform.kafka_access import ADMIN, SUPERVISION, access
from ledger.rules import loader
from ops import stack as ops_stack
from ops import workload
from projections import supervision as reads
from schemas import registry
from tests import helpers

DEPARTMENTS = ("xc-samr", "xc-eco-env", "xc-tax", "xc-health", "xc-housing")
CHUNK, PAUSE = 20, 0.3
FIRST, BACKLOG = 60, 24_000  # the stream's first submissions; their records written again: the backlog


def _counted(settings) -> float:  # type: ignore[no-untyped-def]
    """Records the running supervision has counted since it started (all source topics)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port('supervision')}/metrics", timeout=5) as r:
        return sum(float(line.rsplit(" ", 1)[1]) for line in r.read().decode().splitlines()
                   if line.startswith("ledger_supervision_records_total{"))


def _workload(rng: Any) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """(the stream, the feedback to send once its listings are in), today counted in China time."""
    today = helpers.today()
    subjects = workload.subjects(rng, 350, persons_share=0.2)
    pairs: list[tuple[str, dict[str, Any]]] = []
    for i, subject in enumerate(subjects[:250]):
        dept = DEPARTMENTS[i % len(DEPARTMENTS)]
        decided = today - timedelta(days=rng.choice([0, 1, 2, 3, 15, 30]))  # some after their 7 working days
        pairs.append((dept, workload.penalty(rng, subject, dept, 7000 + i, decided=decided)))
    for subject in subjects[250:310]:
        pairs.append(workload.licence_granted(subject, f"JY1411002{rng.randrange(10**7):07d}",
                                              today - timedelta(days=rng.choice([0, 2, 20]))))
    listings = [workload.debtor_listed(s, f"（2026）豫10执S{rng.randrange(10**7)}号", today - timedelta(days=3))
                for s in subjects[310:340]]
    pairs += listings
    # refused: a decision dated in the future; answered DUPLICATE: a resubmission
    pairs += [(d, workload.penalty(rng, s, d, 8000 + i, decided=today + timedelta(days=3)))
              for i, (d, s) in enumerate(zip(DEPARTMENTS, subjects[340:345], strict=True))]
    pairs += pairs[:20]
    rng.shuffle(pairs)
    feedback = [workload.feedback(s, rec["envelope"]["event_id"], today)
                for s, (_, rec) in zip(subjects[310:320], listings[:10], strict=True)]
    return pairs, feedback


async def _stream(settings, pairs) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    outcomes = []
    for i in range(0, len(pairs), CHUNK):
        outcomes += await submit_as_departments(settings, pairs[i:i + CHUNK])
        await asyncio.sleep(PAUSE)
    return outcomes


async def _kill_when(settings, svc: ops_stack.Service, grown: float) -> float:  # type: ignore[no-untyped-def]
    """SIGKILL the supervision once it has counted `grown` records since its start, and start it again;
    returns what it had counted."""
    await helpers.wait_until(lambda: _counted(settings) >= grown, timeout=180, interval=0.1,
                             what=f"the supervision to count {grown:.0f} records")
    counted = _counted(settings)
    old = svc.pid()
    svc.kill()
    await asyncio.sleep(0.5)
    svc.start()
    assert svc.pid() not in (None, old)
    return counted


async def _in_transactions(settings, transactional_id: str,  # type: ignore[no-untyped-def]
                           transactions: list[tuple[list[core.Record], bool]]) -> None:
    """Write records of the topics again, each group in a transaction of its own, committed or aborted."""
    producer = AIOKafkaProducer(**access(settings, ADMIN).options(), transactional_id=transactional_id)
    await producer.start()
    try:
        for records, commit in transactions:
            await producer.begin_transaction()
            for r in records:
                await producer.send(r.topic, r.value, key=r.key, partition=r.partition, headers=list(r.headers.items()))
            await (producer.commit_transaction() if commit else producer.abort_transaction())
    finally:
        await producer.stop()


async def _backlog(settings, records: list[core.Record], rng: Any) -> int:  # type: ignore[no-untyped-def]
    """Write records of the topics again, BACKLOG of them, in transactions of 1 to 40 records (each ends
    with its marker, which takes an offset of its own) of which about one in ten is aborted: a backlog
    that the supervision, started after it, is killed in the middle of. Returns the records written."""
    queue = [rng.choice(records) for _ in range(BACKLOG)]
    transactions = []
    i = 0
    while i < len(queue):
        n = rng.randint(1, 40)
        transactions.append((queue[i:i + n], rng.random() >= 0.1))
        i += n
    await _in_transactions(settings, "supervision-test-backlog", transactions)
    return len(queue)


async def _aborted(settings, records: list[core.Record]) -> None:  # type: ignore[no-untyped-def]
    """A feedback entry and an answer written again in a transaction that is aborted: in no ledger."""
    entry = next(r for r in records if r.topic == registry.EVENTS.name
                 and r.headers.get("event-type") == b"PunishmentFeedbackReported")
    answer = next(r for r in records if r.topic == registry.OUTCOMES.name)
    await _in_transactions(settings, "supervision-test-abort", [([entry, answer], False)])


async def test_killed_twice_in_mid_stream_its_counts_equal_a_recount_of_the_topics(settings, supervision) -> None:
    rng = helpers.rng("supervision-kill")
    pairs, feedback = _workload(rng)
    # a backlog first: the supervision stopped, the stream's first submissions, their records written again
    supervision.stop()
    await _stream(settings, pairs[:FIRST])
    assert await _backlog(settings, await recount.read_records(access(settings, SUPERVISION)), rng) == BACKLOG
    supervision.start()
    sending = asyncio.create_task(_stream(settings, pairs[FIRST:]))
    kills = [await _kill_when(settings, supervision, 200)]
    kills.append(await _kill_when(settings, supervision, 200))  # counted afresh since its restart
    outcomes = await sending
    statuses = {o["status"] for o in outcomes}
    assert {"ACCEPTED", "DUPLICATE", "REJECTED"} <= statuses, statuses
    await helpers.wait_until(lambda: _counted(settings) > 0, timeout=60, what="the supervision counting again")
    answered = await _stream(settings, feedback)
    assert [o["reasons"] for o in answered if o["status"] != "ACCEPTED"] == []

    records = await recount.read_records(access(settings, SUPERVISION))
    await _aborted(settings, records)
    counter = core.Counter.of(loader.load())
    expected = core.tally(counter, records)
    assert len(records) > 500
    # compared until they agree (the supervision catching up after its restarts, and with every earlier
    # test's records of the session), at most 10 minutes
    recounted, diff = await recount.wait_equal(counter, access(settings, SUPERVISION), settings.pg_dsn,
                                               helpers.CLOCK.now, wait=600)
    assert diff == {}, f"{len(diff)} counts differ (stored, recounted): {sorted(diff.items())[:20]}"
    assert recounted == len(records)  # the aborted records are not read either
    assert recount.stored(settings.pg_dsn) == expected  # nothing of this session is older than 48 hours
    # the kills came while it was still reading (its counter is per process: each restart counts afresh)
    assert all(k < len(records) for k in kills), (kills, len(records))
    # the month's figures of the stream, as the assessment reads them
    month = helpers.today().replace(day=1)
    start = reads.month_start(month).timestamp()
    assert expected[("month", start, "sector-procurement", "feedback")] >= len(feedback)
    assert expected[("month", start, "xc-samr", "reason.time.future")] >= 1
    assert expected[("month", start, "xc-court", "status.ACCEPTED")] >= 30
    assert sum(n for (p, s, d, mm), n in expected.items() if p == "month" and s == start and mm == "publicity.late") > 0


def _get(settings, path: str) -> tuple[int, bytes, dict[str, str]]:  # type: ignore[no-untyped-def]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.portal_port}{path}", timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


async def test_the_dashboard_shows_the_assessment_of_the_month_and_serves_it_as_csv(settings, supervision) -> None:
    # the supervision has counted everything there is (nothing moves while the page and the CSV are read)
    _, diff = await recount.wait_equal(core.Counter.of(loader.load()), access(settings, SUPERVISION), settings.pg_dsn,
                                       helpers.CLOCK.now, wait=600)
    assert diff == {}
    month = helpers.today().replace(day=1)
    label = f"{month.year:04d}-{month.month:02d}"
    rules = loader.load()
    counts = _month(settings, month)
    table = {a.department: a for a in reads.assessments(rules.assessment, rules.departments, counts)}
    samr = table["xc-samr"]
    assert samr.submissions > 0 and samr.score is not None

    status, body, _ = _get(settings, f"/dashboard?month={label}&hours=2")
    page = body.decode()
    assert status == 200 and page.count("<svg") == 5 and "<script" not in page
    row = page[page.index('<tr data-department="xc-samr">'):]
    row = row[:row.index("</tr>")]
    assert f'<td class="submissions">{samr.submissions}</td>' in row and f"{samr.score:.1f}" in row

    status, body, headers = _get(settings, f"/dashboard/assessment.csv?month={label}")
    assert status == 200 and headers["Content-Type"].startswith("text/csv") and body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == [title for _, title in reads.CSV_COLUMNS]
    samr_row = next(r for r in rows[1:] if r[1] == "xc-samr")
    assert samr_row[0] == label and int(samr_row[3]) == samr.submissions and samr_row[-2] == f"{samr.score:.1f}"

    for bad, parameter in (("month=2026-13", "month"), ("hours=0", "hours"), ("hours=49", "hours"), ("week=1", "week")):
        status, body, _ = _get(settings, f"/dashboard?{bad}")
        assert status == 400 and f"参数 {parameter}" in body.decode(), bad


def _month(settings, month) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    start = reads.month_start(month)
    out: dict[str, dict[str, int]] = {}
    for department, measure, n in helpers.pg_rows(settings, "select department, measure, sum(count) from "
                                                  "supervision.counts where period = 'month' and period_start = %s "
                                                  "group by 1, 2", (start,)):
        out.setdefault(department, {})[measure] = int(n)
    return out
