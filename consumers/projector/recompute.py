"""Recompute the provisional deadlines after a holiday notice was added to the calendar.

    python -m consumers.projector.recompute [--schema views] [--dry-run]

A deadline counted over a year whose State Council holiday notice was not yet in
``ledger/rules/workdays.v<N>.json`` was computed on the provisional calendar (statutory holidays and
make-up days, no 调休; docs/domain-notes.md §16.1) and is marked ``provisional`` in the views
(``publicity`` and ``short_deadlines``). Once ``python -m ledger.rules.make_workdays add <year>`` has
written the next version of the file, this command (and the projector itself, each time it starts)
computes every provisional row again with the calendar the rules loader now gives, updates it in one
transaction, and lists each change: event id, department, what was measured, old and new deadline,
lateness before and after. Rows whose deadline and lateness stay the same are updated silently (they
may stop being provisional) and counted.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from prometheus_client import Counter
from psycopg import sql

from ledger.domain.workdays import WorkdayCalendar
from ledger.platform import config, logs
from ledger.rules import loader
from projections import publicity, schema

log = logs.get("recompute")
RECOMPUTED = Counter("ledger_provisional_deadlines_recomputed_total",
                     "Provisional deadlines computed again with a newer calendar", ["outcome"])

# table -> (trigger column, done column, working days allowed: a column or the 7 of double publicity)
_TABLES = {"publicity": ("decision_date", "ledger_date", str(publicity.DEADLINE_WORKING_DAYS), "kind"),
           "short_deadlines": ("trigger_date", "done_date", "allowed", "rule")}


@dataclass(frozen=True)
class Change:
    """One provisional row computed again."""

    table: str
    event_id: str
    department: str
    what: str  # licence | penalty (7-working-day publication), or the short deadline's rule id
    old_deadline: date | None
    new_deadline: date | None
    late_before: bool | None
    late_after: bool | None
    provisional: bool  # still provisional (the next year's notice is still missing)

    @property
    def changed(self) -> bool:
        return (self.old_deadline, self.late_before) != (self.new_deadline, self.late_after)

    def line(self) -> str:
        return (f"{self.event_id} {self.department} {self.what}: deadline {self.old_deadline} -> {self.new_deadline}, "
                f"late {_late(self.late_before)} -> {_late(self.late_after)}"
                + (" (still provisional)" if self.provisional else ""))


def _late(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def recompute(conn: psycopg.Connection[Any], calendar: WorkdayCalendar, schema_name: str = schema.LIVE,
              dry_run: bool = False) -> list[Change]:
    """Every provisional row of ``schema_name`` computed again with ``calendar`` and updated (not
    with ``dry_run``), in the caller's transaction. Returns every row, changed or not."""
    out: list[Change] = []
    for table, (start, done, allowed, what) in _TABLES.items():
        rows = conn.execute(sql.SQL(
            "select event_id, department, {what}, {start}, {done}, {allowed}, deadline, late "
            "from {schema}.{table} where provisional order by event_id").format(
                what=sql.Identifier(what), start=sql.Identifier(start), done=sql.Identifier(done),
                allowed=sql.SQL(allowed), schema=sql.Identifier(schema_name), table=sql.Identifier(table))).fetchall()
        for event_id, department, kind, first, last, days, old_deadline, late_before in rows:
            now = publicity.lateness(calendar, first, last, days)
            out.append(Change(table, event_id, department, kind, old_deadline, now.deadline, late_before,
                              now.late, now.provisional))
            if not dry_run:
                conn.execute(sql.SQL("update {schema}.{table} set deadline = %s, working_days = %s, late = %s, "
                                     "provisional = %s where event_id = %s").format(
                    schema=sql.Identifier(schema_name), table=sql.Identifier(table)),
                    (now.deadline, now.working_days_taken, now.late, now.provisional, event_id))
    return out


def run(dsn: str, calendar: WorkdayCalendar, schema_name: str = schema.LIVE, dry_run: bool = False) -> list[Change]:
    """``recompute`` in one transaction; each change logged (and counted in the metric)."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        changes = recompute(conn, calendar, schema_name, dry_run)
    for c in changes:
        RECOMPUTED.labels("changed" if c.changed else "confirmed").inc()
        if c.changed:
            log.info("provisional deadline recomputed", event_id=c.event_id, department=c.department,
                     measured=c.what, old_deadline=str(c.old_deadline), new_deadline=str(c.new_deadline),
                     late_before=c.late_before, late_after=c.late_after, still_provisional=c.provisional,
                     calendar_version=calendar.version, dry_run=dry_run)
    log.info("provisional deadlines recomputed", rows=len(changes), changed=sum(c.changed for c in changes),
             calendar_version=calendar.version, dry_run=dry_run)
    return changes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m consumers.projector.recompute", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schema", default=schema.LIVE, help="the schema of views (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="list what would change, change nothing")
    args = p.parse_args(argv)
    logs.configure()
    s = config.load()
    calendar = loader.load().calendar
    changes = run(s.pg_dsn, calendar, args.schema, args.dry_run)
    changed = [c for c in changes if c.changed]
    print(f"calendar {calendar.file} (version {calendar.version}): {len(changes)} provisional deadline(s) "
          f"computed again, {len(changed)} changed{' (dry run: nothing written)' if args.dry_run else ''}")
    for c in changed:
        print("  " + c.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
