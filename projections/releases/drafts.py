"""The credit office's drafts of 红黑榜 releases, kept in PostgreSQL (``office.release_drafts``, migration
008): draw a draft from the views, review it, and record its approval once the ledger has it.

A draft is drawn once its period is over: the red and black entries listed in the period and still in
force, each with the entity's ledger version, and the views' positions in the ledger at that moment
(docs/domain-notes.md §11.2). Its content is kept as the exact canonical bytes its digest covers, so
what is reviewed is what is approved: the approval carries those entries and that digest, and the
sequencer checks the one against the other. A correction is drawn the same way for the period of the
release it corrects.

Every refusal is a ``DraftError`` saying, in the office's words, what is wrong and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ledger.domain import releases
from ledger.domain.local_time import CHINA
from ledger.domain.rulebook import RuleBook
from projections import queries
from projections.releases import content as release_content

__all__ = ["Draft", "DraftError", "draw", "get", "last_number", "mark_approved", "recent", "review"]

_COLUMNS = ("id, period, title, corrects, content, content_sha256, entries, black, red, drawn_at, drawn_positions, "
            "drafted_by, status, reviewed_by, reviewed_at, review_note, release_no, approved_by, approved_at, "
            "correction_note, event_id, ledger_partition, ledger_offset")
STATUS_TITLES = {"draft": "待审核", "reviewed": "已审核，待批准", "rejected": "审核未通过", "approved": "已批准发布"}


class DraftError(Exception):
    """A draft cannot be drawn, reviewed or approved; the message says why (Chinese, then English)."""


@dataclass(frozen=True)
class Draft:
    row: Mapping[str, Any]

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def content(self) -> dict[str, Any]:
        return json.loads(self.row["content"])

    def __getitem__(self, key: str) -> Any:
        return self.row[key]


async def draw(conn: psycopg.AsyncConnection[Any], rules: RuleBook, period_text: str, drafted_by: str,
               now: datetime, corrects: int | None = None) -> Draft:
    """Draw a draft of the period (or of the period of release ``corrects``, for a correction) from the
    live views and keep it; DraftError when the period is not one, not over, or the release to correct
    is unknown or already corrected."""
    if not drafted_by.strip():
        raise DraftError("起草人不能为空 (say who drafts: --by)")
    if corrects is not None:
        corrected = await _one(conn, "select period, release_no from views.releases where release_no = %s", (corrects,))
        if corrected is None:
            raise DraftError(f"没有第{corrects}期红黑榜 (there is no release {corrects} in the views)")
        later = await _one(conn, "select release_no from views.releases where corrects = %s", (corrects,))
        if later is not None:
            raise DraftError(f"第{corrects}期已由第{later['release_no']}期更正，请更正第{later['release_no']}期 "
                             f"(release {corrects} was corrected by {later['release_no']}; correct that one)")
        period_text = corrected["period"]
    try:
        period = releases.period_of(period_text)
    except ValueError as exc:
        raise DraftError(f"发布周期应为月（2026-11）或季度（2026-Q4） (--period: {exc})") from None
    if period.kind not in rules.releases.cadences:
        raise DraftError(f"不按{period.kind}发布 (releases are made per {' or '.join(rules.releases.cadences)})")
    if corrects is None:
        done = await _one(conn, "select min(release_no) as n from views.releases where period = %s", (period.text,))
        if done is not None and done["n"] is not None:
            raise DraftError(f"{period.label}已发布为第{done['n']}期；如需更改请起草更正（--corrects {done['n']}） "
                             f"(the period was released as number {done['n']}: draft a correction instead)")
    if now.astimezone(CHINA).date() <= period.end:
        raise DraftError(f"{period.label}到 {period.end} 才结束，周期结束后才能起草 "
                         f"(the period ends on {period.end}: draw the release once it is over)")
    rows = await _all(
        conn, "select l.colour, l.list_kind, l.entity_id, l.public_id, l.subject_name, l.category, l.county, l.ref, "
        "l.reason, l.department, l.listed_on, l.legal_end, l.event_id, e.version from views.list_entries l "
        "join views.entities e using (entity_id) where l.listed_on between %s and %s and l.status = 'active'",
        (period.start, period.end))
    entries = release_content.ordered(release_content.entry_of(r, rules) for r in rows)
    if not entries and corrects is None:
        raise DraftError(f"{period.label}没有仍在名单内的列入记录，无需发布 (nothing listed in {period.text} is "
                         "still in force: there is nothing to release)")
    if len(entries) > rules.releases.max_entries:
        raise DraftError(f"{period.label}有 {len(entries)} 条，一期最多 {rules.releases.max_entries} 条：请按月发布 "
                         f"(at most {rules.releases.max_entries} entries per release; release by month)")
    body = {"period": period.text, "title": release_content.title_of(rules, period, corrects), "corrects": corrects,
            "entries": entries}
    content = releases.content_of(body)
    size = release_content.encoded_size(rules, content)
    if size > release_content.MAX_RECORD_BYTES:
        raise DraftError(f"{period.label}的内容有 {size:,} 字节，超过一条账本记录可容纳的 "
                         f"{release_content.MAX_RECORD_BYTES:,} 字节：请按月发布 (the release would take {size:,} bytes; "
                         f"a ledger record holds at most {release_content.MAX_RECORD_BYTES:,}: release by month)")
    positions = await queries.positions(conn)
    row = await _one(
        conn, "insert into office.release_drafts (period, title, corrects, content, content_sha256, entries, black, "
        "red, drawn_at, drawn_positions, drafted_by) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        f"returning {_COLUMNS}",
        (period.text, body["title"], corrects, releases.canonical_bytes(content).decode(), releases.content_digest(body),
         len(entries), sum(e["colour"] == "black" for e in entries), sum(e["colour"] == "red" for e in entries),
         now, json.dumps({str(p): o for p, o in positions.items()}), drafted_by.strip()))
    assert row is not None
    return Draft(row)


async def get(conn: psycopg.AsyncConnection[Any], draft_id: int) -> Draft:
    row = await _one(conn, f"select {_COLUMNS} from office.release_drafts where id = %s", (draft_id,))
    if row is None:
        raise DraftError(f"没有编号为 {draft_id} 的草稿 (no draft {draft_id}; `list` shows them)")
    return Draft(row)


async def review(conn: psycopg.AsyncConnection[Any], draft_id: int, reviewed_by: str, now: datetime,
                 note: str | None = None, reject: bool = False) -> Draft:
    """Review a draft: passed (status reviewed) or sent back (rejected, with the reason in the note)."""
    draft = await get(conn, draft_id)
    if draft["status"] != "draft":
        raise DraftError(f"草稿 {draft_id} 的状态是“{STATUS_TITLES[draft['status']]}”，只能审核待审核的草稿 "
                         f"(draft {draft_id} is {draft['status']}; only a draft awaiting review is reviewed)")
    if not reviewed_by.strip() or reviewed_by.strip() == draft["drafted_by"]:
        raise DraftError("审核人须是起草人以外的人 (the reviewer must be someone other than the drafter: --by)")
    if reject and not (note or "").strip():
        raise DraftError("退回须写明理由 (say why the draft is sent back: --note)")
    row = await _one(conn, "update office.release_drafts set status = %s, reviewed_by = %s, reviewed_at = %s, "
                     f"review_note = %s where id = %s returning {_COLUMNS}",
                     ("rejected" if reject else "reviewed", reviewed_by.strip(), now, note, draft_id))
    assert row is not None
    return Draft(row)


async def last_number(conn: psycopg.AsyncConnection[Any]) -> int:
    """The highest release number the views or the office's own records know (0 before the first)."""
    row = await _one(conn, "select greatest((select max(release_no) from views.releases), "
                     "(select max(release_no) from office.release_drafts)) as n")
    return int(row["n"]) if row and row["n"] is not None else 0


async def mark_approved(conn: psycopg.AsyncConnection[Any], draft_id: int, release_no: int, approved_by: str,
                        approved_at: datetime, correction_note: str | None, event_id: str, partition: int,
                        offset: int) -> Draft:
    row = await _one(
        conn, "update office.release_drafts set status = 'approved', release_no = %s, approved_by = %s, "
        "approved_at = %s, correction_note = %s, event_id = %s, ledger_partition = %s, ledger_offset = %s "
        f"where id = %s returning {_COLUMNS}",
        (release_no, approved_by, approved_at, correction_note, event_id, partition, offset, draft_id))
    assert row is not None
    return Draft(row)


async def recent(conn: psycopg.AsyncConnection[Any], limit: int = 20) -> list[dict[str, Any]]:
    """The newest drafts (without their content), for the dashboard and the command's list."""
    return await _all(conn, "select id, period, title, corrects, content_sha256, entries, black, red, drawn_at, "
                      "drafted_by, status, reviewed_by, reviewed_at, review_note, release_no, approved_by, approved_at "
                      "from office.release_drafts order by id desc limit %s", (limit,))


async def _all(conn: psycopg.AsyncConnection[Any], sql: str, params: Any = ()) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall())


async def _one(conn: psycopg.AsyncConnection[Any], sql: str, params: Any = ()) -> dict[str, Any] | None:
    rows = await _all(conn, sql, params)
    return rows[0] if rows else None
