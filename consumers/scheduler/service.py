"""The expiry scheduler: ends listings and penalty publications whose period is over, through the
ledger itself.

Every pass asks the read views what is due on or before today and still in force:

  * black-list entries (views.list_entries, status active) whose legal end (legal_end, computed
    from ledger/rules/publication_periods by the projector) is on or before today;
  * red-list honours (views.list_entries, colour red, status active) whose validity ended (legal_end:
    the day after the stated or default validity of ledger/rules/punishment_catalogue's honour_kinds),
    ended by a HonourExpired;
  * administrative penalties (views.publicity, status published) whose automatic end of
    publication (automatic_end, under the regime in force on the decision date) is on or before
    today.

For each it reads the target's own ledger entry from credit.events (the subject as the department
submitted it: a natural person's ID number is only there, never in PostgreSQL) and submits a
ListingExpired through the normal path (credit.submissions, signed as ledger-scheduler), so the
sequencer judges it like any other event and the ledger stays the only source of truth. The event
id is derived from the target event and the list kind, and the record is fully determined by the
target (recorded_at is 00:00 China time of the expiry date), so a second submission of the same
expiry is a DUPLICATE at the sequencer: a pass can be repeated, killed half-way and restarted at
will. The scheduler keeps no state of its own: after a downtime, the first pass finds everything
that fell due meanwhile. expired_on is always the legal end, however late the pass.

Run: python -m ops.run scheduler [--interval 60] [--once] [--today YYYY-MM-DD] [--batch-size 200]
Today is the China Standard Time date (the process's clock, the same as the sequencer's) unless
--today or LEDGER_SCHEDULER_TODAY says otherwise (tests use it to make periods end without waiting
years; a date after the sequencer's today is refused by the sequencer as a future date).
Metrics: ledger_scheduler_expiries_total{outcome}, ledger_scheduler_refusals_total{code},
ledger_scheduler_due, ledger_scheduler_passes_total{result}, ledger_scheduler_pass_seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from aiokafka import TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from consumers.scheduler.core import PENALTY_PUBLICATION, RED, Due, expiry_record
from ledger.client import LedgerClient
from ledger.platform import logs, retry
from ledger.platform.kafka_util import KafkaClients
from projections import schema
from schemas import registry

log = logs.get("scheduler")

EXPIRIES = Counter("ledger_scheduler_expiries_total", "Expiries submitted, by the sequencer's outcome",
                   ["outcome"])
REFUSALS = Counter("ledger_scheduler_refusals_total", "Expiries the sequencer refused, by reason code", ["code"])
DUE = Gauge("ledger_scheduler_due", "Items due (period over, still in force in the views) at the last pass")
PASSES = Counter("ledger_scheduler_passes_total", "Scheduler passes, by result (ok or error)", ["result"])
PASS_SECONDS = Histogram("ledger_scheduler_pass_seconds", "Duration of one scheduler pass",
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))

# Due on or before %(today)s and still in force, with where the target's ledger entry is.
DUE_SQL = """
select l.entity_id, l.list_kind, l.ref, l.event_id, l.legal_end as ends, c.kafka_partition, c.kafka_offset
  from list_entries l join ledger_copy c on c.entity_id = l.entity_id and c.event_id = l.event_id
 where l.status = 'active' and l.legal_end <= %(today)s
union all
select p.entity_id, %(penalty)s, p.ref, p.event_id, p.automatic_end, c.kafka_partition, c.kafka_offset
  from publicity p join ledger_copy c on c.entity_id = p.entity_id and c.event_id = p.event_id
 where p.kind = 'penalty' and p.status = 'published' and p.automatic_end <= %(today)s
 order by 5, 4, 2
"""


async def due_items(dsn: str, today: date) -> list[Due]:
    """Everything whose period ended on or before `today` and that the views still show in force."""
    async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, options=f"-c search_path={schema.LIVE}", prepare_threshold=None) as conn:
        cur = await conn.execute(DUE_SQL, {"today": today, "penalty": PENALTY_PUBLICATION})
        return [Due(*row) for row in await cur.fetchall()]


async def read_subjects(kafka: KafkaClients, items: list[Due],
                        timeout: float = 30.0) -> dict[tuple[int, int], dict[str, Any]]:
    """The subject of each target's ledger entry, read from credit.events at its position."""
    wanted: dict[int, set[int]] = {}
    for d in items:
        wanted.setdefault(d.partition, set()).add(d.offset)
    found: dict[tuple[int, int], dict[str, Any]] = {}
    c = kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed")
    await c.start()
    try:
        for partition, offsets in sorted(wanted.items()):
            tp = TopicPartition(registry.EVENTS.name, partition)
            c.assign([tp])
            for offset in sorted(offsets):
                if (partition, offset) in found:
                    continue
                c.seek(tp, offset)
                deadline = time.monotonic() + timeout
                while (partition, offset) not in found:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{registry.EVENTS.name} {partition}:{offset} could not be read "
                                           f"within {timeout:g} s")
                    for m in (await c.getmany(tp, timeout_ms=1000, max_records=500)).get(tp, []):
                        if m.offset in offsets:
                            _, entry = registry.decode(m.value, "LedgerEntry")
                            _, rec = registry.decode(entry["submission"])
                            found[(partition, m.offset)] = rec["envelope"]["subject"]
                    if await c.position(tp) > max(offsets):
                        break
                if (partition, offset) not in found:
                    raise LookupError(f"no ledger record at {registry.EVENTS.name} {partition}:{offset}")
    finally:
        await c.stop()
    return found


@dataclass
class PassResult:
    today: date
    due: int = 0
    outcomes: Tally[str] | None = None
    refusals: Tally[str] | None = None

    def summary(self) -> dict[str, Any]:
        return {"today": self.today.isoformat(), "due": self.due, "outcomes": dict(self.outcomes or {}),
                "refusals": dict(self.refusals or {})}


class Scheduler:
    """Passes over what is due; one pass at start, then one every `interval` seconds until stop()."""

    def __init__(self, kafka: KafkaClients, dsn: str, ledger_client: Callable[[], LedgerClient],
                 rule_version: int, today: Callable[[], date], interval: float = 60.0,
                 batch_size: int = 200, once: bool = False, catalogue_version: int = 1) -> None:
        self.kafka = kafka
        self.dsn = dsn
        self.ledger_client = ledger_client  # a new client (signing as ledger-scheduler) per pass
        self.today = today
        self.interval = interval
        self.batch_size = batch_size
        self.once = once
        self.rule_version = rule_version  # of the publication periods
        self.catalogue_version = catalogue_version  # of the punishment catalogue (honour validity)
        self._stop = asyncio.Event()
        self.last: PassResult | None = None
        self.failed = False

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        log.info("scheduler running", interval_s=self.interval, batch_size=self.batch_size, once=self.once,
                 today=self.today().isoformat())
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.last = await self.run_pass()
                PASSES.labels("ok").inc()
            except Exception as exc:  # PostgreSQL or Kafka away: nothing half-done matters, the next pass redoes it
                PASSES.labels("error").inc()
                self.failed = True
                if retry.retriable(exc):  # the broker away: counted as a Kafka retry, no stack trace
                    retry.note(log, "scheduler", "pass", exc, None if self.once else self.interval)
                else:
                    log.exception("scheduler pass failed; retrying at the next pass")
            PASS_SECONDS.observe(time.monotonic() - started)
            if self.once:
                break
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass
        log.info("scheduler stopping")

    async def run_pass(self) -> PassResult:
        today = self.today()
        items = await due_items(self.dsn, today)
        DUE.set(len(items))
        result = PassResult(today, len(items), Tally(), Tally())
        log.info("scheduler pass", today=today.isoformat(), due=len(items))
        if not items:
            return result
        subjects = await read_subjects(self.kafka, items)
        client = self.ledger_client()
        await client.start()
        try:
            for start in range(0, len(items), self.batch_size):
                if self._stop.is_set():
                    break
                chunk = items[start:start + self.batch_size]
                records = [expiry_record(d, subjects[(d.partition, d.offset)],
                                         self.catalogue_version if d.list_kind == RED else self.rule_version)
                           for d in chunk]
                outcomes = await client.submit_many_and_wait(records, timeout=120.0)
                for d, rec, out in zip(chunk, records, outcomes, strict=True):
                    self._count(result, d, rec, out)
                log.info("expiries submitted", done=start + len(chunk), total=len(items),
                         outcomes=dict(result.outcomes or {}))
        finally:
            await client.stop()
        log.info("scheduler pass done", **result.summary())
        return result

    @staticmethod
    def _count(result: PassResult, d: Due, rec: dict[str, Any], out: dict[str, Any]) -> None:
        assert result.outcomes is not None and result.refusals is not None
        status = out["status"].lower()
        result.outcomes[status] += 1
        EXPIRIES.labels(status).inc()
        fields = {"event_id": rec["envelope"]["event_id"], "target_event_id": d.target_event_id,
                  "entity_id": d.entity_id, "list_kind": d.list_kind, "expired_on": d.ends.isoformat(),
                  "status": out["status"]}
        if out["status"] in ("ACCEPTED", "DUPLICATE"):
            log.info("expiry", **fields, ledger_position=f"{out['ledger_partition']}:{out['ledger_offset']}")
            return
        for r in out["reasons"]:
            result.refusals[r["code"]] += 1
            REFUSALS.labels(r["code"]).inc()
        log.warning("expiry refused", **fields, reasons=out["reasons"])
