"""Rows of the PostgreSQL read models, built from ledger entries, and their set-based writes.

No natural person's ID number is ever written to PostgreSQL: subjects are stored with the masked
form (`Identity.display`), and the ledger copy's payload carries the masked form too; the clear
value stays only in the Kafka ledger, for auditors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg

from ledger.domain import identity
from schemas import registry


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return v


def public_record(record: dict[str, Any]) -> dict[str, Any]:
    """The submission record with the subject's identifier in its public (masked) form."""
    env = record["envelope"]
    subject = env["subject"]
    if subject["id_type"] == "RIC":
        subject = {**subject, "id": identity.mask_ric(identity.normalise(subject["id"]))}
    return {**record, "envelope": {**env, "subject": subject}}


@dataclass
class Rows:
    ledger_copy: list[tuple[Any, ...]] = field(default_factory=list)
    penalties: list[tuple[Any, ...]] = field(default_factory=list)
    count: int = 0

    def add(self, entry: dict[str, Any], partition: int, offset: int) -> None:
        self.count += 1
        _, rec = registry.decode(entry["submission"])
        rec = public_record(rec)
        env = rec["envelope"]
        self.ledger_copy.append((
            entry["entity_id"], entry["entity_version"], entry["event_id"], entry["event_type"], entry["category"],
            entry["department"], partition, offset, entry["hash"], entry["sequenced_at"],
            json.dumps(_jsonable(rec), ensure_ascii=False),
        ))
        if entry["event_type"] == "AdministrativePenaltyImposed":
            self.penalties.append((
                entry["event_id"], entry["entity_id"], entry["entity_version"], env["subject"]["name"],
                env["subject"]["id"], entry["category"], rec["decision_no"], rec["violation_type"],
                rec["penalty_categories"], rec["fine_fen"], rec["severity"], rec["decision_date"], rec["authority"],
                entry["department"], entry["sequenced_at"],
            ))


async def write(conn: psycopg.AsyncConnection[Any], rows: Rows) -> int:
    """Insert the rows; what is already there (same entity and version) is skipped. Returns new events."""
    async with conn.cursor() as cur:
        await cur.execute("create temp table if not exists _incoming_copy (like ledger_copy) on commit delete rows")
        async with cur.copy("copy _incoming_copy (entity_id, entity_version, event_id, event_type, category, "
                            "department, kafka_partition, kafka_offset, hash, sequenced_at, payload) "
                            "from stdin") as copy:
            for r in rows.ledger_copy:
                await copy.write_row(r)
        await cur.execute("insert into ledger_copy select * from _incoming_copy "
                          "on conflict (entity_id, entity_version) do nothing")
        inserted = cur.rowcount
        if rows.penalties:
            await cur.executemany(
                "insert into admin_penalties (event_id, entity_id, entity_version, subject_name, subject_id_public, "
                "category, decision_no, violation_type, penalty_categories, fine_fen, severity, decision_date, "
                "authority, department, sequenced_at) values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "on conflict (event_id) do nothing", rows.penalties)
    return inserted
