"""Issuing a credit report: one snapshot of the views, the records it names read from the log
itself, their inclusion proofs in the notary's signed tree, the number and the issuer's signature;
and every issued report kept exactly as issued (schema `reports`, projections/migrations/008_reports.sql),
so that its number always returns the same file (docs/domain-notes.md §10.2: verification returns
the frozen copy, never a new rendering of today's data).

The same entity, at the same state of its views, on the same day gives the same body, hence the
same number: a report asked for twice (its JSON, then its PDF) is one report. The tree head is the
oldest published head covering every record of the entity (`reads.first_head`), so it does not move
while the entity does not.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from ledger.audit import verify
from ledger.audit.log_reader import LogReader
from ledger.audit.merkle import leaf_hash
from ledger.domain.rulebook import RuleBook
from ledger.platform import signing
from projections import queries
from projections.audit import reads
from projections.report import document
from projections.report.sections import SECTIONS, Context, list_change_events
from schemas import registry, subjects

ISSUER = "report-issuer"  # the issuer key's name: LEDGER_KEYS_DIR/report-issuer/report-issuer.{key,pub}


def issuer_keys_dir(keys_dir: Path) -> Path:
    """Where the report issuer's key pair lives: apart from the departments' and the notary's keys."""
    return keys_dir / ISSUER


def issuer_public_key(keys_dir: Path) -> str | None:
    return signing.public_key(issuer_keys_dir(keys_dir), ISSUER)


def load_issuer(keys_dir: Path) -> document.Issuer | None:
    public = issuer_public_key(keys_dir)
    if public is None:
        return None
    return document.Issuer(signing.private_key(issuer_keys_dir(keys_dir), ISSUER), public)


class ReportError(Exception):
    """No report can be issued now; `status` is the HTTP answer, the message says why in Chinese
    (with the English in brackets)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass
class Snapshot:
    subject: dict[str, Any]
    version: int
    last_change: str
    history: list[dict[str, Any]]
    sections: list[document.Section]


_ENTITY_SQL = "select category, id_type, public_id, name, version, last_change from entities where entity_id = %s"


async def snapshot(conn: psycopg.AsyncConnection[Any], entity_id: str, today: date, rules: RuleBook) -> Snapshot | None:
    """The entity, its ledger copy and every section, read in one repeatable-read transaction (one
    state of the views); None when the views do not know the entity."""
    async with conn.transaction():
        await conn.execute("set transaction isolation level repeatable read")
        cur = await conn.execute(_ENTITY_SQL, (entity_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        category, id_type, public_id, name, version, last_change = row
        history = await reads.history(conn, entity_id)
        ctx = Context(entity_id, today, rules, history, list_change_events(entity_id, history, rules))
        sections = [await section(conn, ctx) for section in SECTIONS]
    subject = {"entity_id": entity_id, "name": name, "public_id": public_id, "id_type": id_type,
               "category": category, "category_title": queries.CATEGORY_TITLES.get(category, category)}
    return Snapshot(subject, int(version), queries.plain(last_change), history, sections)


async def _head_covering(conn: psycopg.AsyncConnection[Any], partition: int, offsets: list[int],
                         wait_s: float) -> tuple[Any, dict[int, tuple[int, bytes]]]:
    """The oldest published head covering every one of `offsets` and their leaves, waiting up to
    `wait_s` for the notary; ReportError 503 after that."""
    deadline = time.monotonic() + wait_s
    while True:
        leaves = await reads.leaves_at(conn, partition, offsets)
        if len(leaves) == len(offsets):
            head = await reads.first_head(conn, partition, max(i for i, _ in leaves.values()) + 1)
            if head is not None:
                return head, leaves
        if time.monotonic() >= deadline:
            raise ReportError(503, f"公证服务尚未签署覆盖该主体全部记录的树头（已入树 {len(leaves)}/{len(offsets)} 条），"
                              "请稍后再试 (the notary has not yet signed a tree head covering the entity's records; "
                              "retry shortly)", retry_after=10)
        await asyncio.sleep(0.5)


async def build(conn: psycopg.AsyncConnection[Any], reader: LogReader, entity_id: str, today: date,
                rules: RuleBook, issuer: document.Issuer, wait_s: float = 15.0) -> document.Issued:
    """Issue the report of `entity_id` dated `today`. ReportError 404 for an entity the views do not
    know; 503 while the notary has not yet signed a head covering its records."""
    snap = await snapshot(conn, entity_id, today, rules)
    if snap is None:
        raise ReportError(404, "没有这个信用主体的公示信息 (unknown entity)")
    partitions = {h["partition"] for h in snap.history}
    if len(partitions) != 1:
        raise ReportError(500, f"该主体的账本副本跨越多个分区 {sorted(partitions)} (the ledger copy is inconsistent)")
    partition = partitions.pop()
    head, leaves = await _head_covering(conn, partition, [h["offset"] for h in snap.history], wait_s)
    wanted = {e for s in snap.sections for row in s.rows for e in row.event_ids}
    shown = [h for h in snap.history if h["event_id"] in wanted]
    raw = await reader.records(partition, [h["offset"] for h in shown])
    person = snap.subject["id_type"] == "RIC"
    records, schemas = [], {}
    for h in shown:
        data = raw.get(h["offset"])
        index, leaf = leaves[h["offset"]]
        if data is None or leaf_hash(data) != leaf:
            raise ReportError(500, f"账本记录与公证树不一致（分区 {partition} 位置 {h['offset']}），不能出具报告 "
                              "(the log's record and the notary's leaf differ)")
        sid = registry.schema_id_of(verify.parse_ledger_entry(data)["submission"])
        schemas[str(sid)] = subjects.schema_text(sid)
        records.append(document.proven_record(
            data, offset=h["offset"], leaf_index=index,
            proof=await reads.inclusion_proof(conn, partition, index, head.tree_size), schemas=schemas,
            person=person, public_id=snap.subject["public_id"]))
    body = document.body(
        issued_on=today, subject=snap.subject, head=head.to_json(), sections=snap.sections, records=records,
        schemas=schemas, issuer=issuer, departments={d: x.name for d, x in rules.departments.departments.items()},
        ledger={"topic": registry.EVENTS.name, "partition": partition, "entity_version": snap.version,
                "last_change": snap.last_change})
    return document.issue(body, issuer)


async def keep(conn: psycopg.AsyncConnection[Any], issued: document.Issued, entity_id: str, today: date) -> bool:
    """Store an issued report as issued; True when it is new (the same number issued before holds the
    same body: its digest is checked)."""
    cur = await conn.execute(
        "insert into reports.issued (report_number, entity_id, issued_on, body_sha256, document) "
        "values (%s, %s, %s, %s, %s) on conflict (report_number) do nothing returning report_number",
        (issued.number, entity_id, today, issued.digest, issued.document))
    if await cur.fetchone() is not None:
        return True
    cur = await conn.execute("select body_sha256 from reports.issued where report_number = %s", (issued.number,))
    row = await cur.fetchone()
    if row is None or bytes(row[0]) != issued.digest:
        raise ReportError(500, f"报告编号 {issued.number} 已用于另一份报告 (the report number is taken by another body)")
    return False


async def fetch(conn: psycopg.AsyncConnection[Any], number: str) -> bytes | None:
    """The report file issued under `number`, exactly as issued; None when there is none."""
    cur = await conn.execute("select document from reports.issued where report_number = %s", (number,))
    row = await cur.fetchone()
    return bytes(row[0]) if row else None
