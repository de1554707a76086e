"""The credit office's command for the numbered 红黑榜 releases: draft, review, approve.

    python -m projections.releases draft --period 2026-11 --by 李明            draw a draft (the period must be over)
    python -m projections.releases draft --corrects 3 --by 李明                a correction of release 3 (its period)
    python -m projections.releases review DRAFT --by 王芳 [--note TEXT]        pass a draft for approval
    python -m projections.releases review DRAFT --by 王芳 --reject --note WHY  send it back
    python -m projections.releases approve DRAFT --by 张强 [--note WHY]        approve it: 第N期 on the ledger
    python -m projections.releases list                                        the drafts and the releases
    python -m projections.releases show DRAFT                                  a draft's entries by list and county

Three different people draft, review and approve. Approving signs the release with the credit
office's key (``<keys dir>/xc-credit-office.key``) and submits it through the sequencer, which gives it
the next number or refuses it with the reason; once the views have it, the portal publishes it at
/releases/<N> (with its PDF and CSV). A correction needs --note on approval: what it corrects and why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import psycopg

from ledger.client import LedgerClient, OutcomeTimeout
from ledger.domain.local_time import CHINA
from ledger.domain.rulebook import RuleBook
from ledger.platform import config, logs
from ledger.platform.clock import SYSTEM, Clock
from ledger.rules import loader
from projections import queries, schema
from projections.releases import content as release_content
from projections.releases import drafts
from projections.releases.drafts import DraftError

__all__ = ["approve", "connect", "main"]

log = logs.get("releases")


def connect(settings: config.Settings) -> Any:
    """An autocommit connection to the stack's database, the views first on the search path."""
    return psycopg.AsyncConnection.connect(settings.pg_dsn, autocommit=True,
                                           options=f"-c search_path={schema.LIVE}")


async def approve(settings: config.Settings, rules: RuleBook, draft_id: int, approved_by: str, clock: Clock,
                  note: str | None = None, wait: float = 60.0) -> dict[str, Any]:
    """Approve a reviewed draft: the next number, the approval signed by the publisher and judged by the
    sequencer, the draft marked approved; then wait until the views have the release. Returns what
    happened (number, ledger position, digest); DraftError when the draft or the ledger refuses."""
    async with await connect(settings) as conn:
        draft = await drafts.get(conn, draft_id)
        if draft["status"] == "approved":
            raise DraftError(f"草稿 {draft_id} 已批准为第{draft['release_no']}期 (already approved as release "
                             f"{draft['release_no']})")
        if draft["status"] != "reviewed":
            raise DraftError(f"草稿 {draft_id} 尚未通过审核（{drafts.STATUS_TITLES[draft['status']]}）"
                             f"(draft {draft_id} must pass review first)")
        if approved_by.strip() in ("", draft["drafted_by"], draft["reviewed_by"]):
            raise DraftError("批准人须是起草人和审核人以外的人 (the approver must be someone other than the drafter and "
                             "the reviewer: --by)")
        if draft["corrects"] is not None and not (note or "").strip():
            raise DraftError(f"更正第{draft['corrects']}期须写明更正说明 (a correction says what it corrects and why: "
                             "--note)")
        number = await drafts.last_number(conn) + 1
        department, record = release_content.approval_record(
            rules, draft.content, release_no=number, drawn_at=draft["drawn_at"],
            drawn_positions={int(k): v for k, v in draft["drawn_positions"].items()},
            drafted_by=draft["drafted_by"], reviewed_by=draft["reviewed_by"],
            reviewed_on=draft["reviewed_at"].astimezone(CHINA).date(), approved_by=approved_by.strip(),
            approved_on=clock.today(), recorded_at=clock.now(), correction_note=(note or "").strip() or None)
        async with LedgerClient.of(settings, department) as client:
            try:
                outcome = await client.submit_and_wait(record, timeout=wait)
            except OutcomeTimeout:
                raise DraftError(f"{wait:g} 秒内没有收到账本的答复，请稍后重新批准（同一内容不会重复发布）"
                                 f"(no answer from the ledger within {wait:g} s; approve again later: the same "
                                 "content is never released twice)") from None
        if outcome["status"] not in ("ACCEPTED", "DUPLICATE"):
            log.warning("release refused by the ledger", event_id=record["envelope"]["event_id"], draft=draft_id,
                        release_no=number, codes=[r["code"] for r in outcome["reasons"]])
            reasons = "; ".join(f"{r['field']}: {r['message']}" for r in outcome["reasons"])
            hint = ("（视图可能尚未同步上一期，请稍候再试）(the views may not have the last release yet: try again in a "
                    "moment)") if any(r["code"] == "release.number" for r in outcome["reasons"]) else ""
            raise DraftError(f"账本拒绝了第{number}期：{reasons}{hint}")
        partition, offset = outcome["ledger_partition"], outcome["ledger_offset"]
        log.info("release approved", event_id=record["envelope"]["event_id"], draft=draft_id, release_no=number,
                 status=outcome["status"], partition=partition, offset=offset, content_sha256=record["content_sha256"])
        await drafts.mark_approved(conn, draft_id, number, approved_by.strip(), clock.now(),
                                   record["correction_note"], record["envelope"]["event_id"], partition, offset)
        projected = await _wait_projected(conn, partition, offset, wait)
    return {"release_no": number, "status": outcome["status"], "partition": partition, "offset": offset,
            "content_sha256": record["content_sha256"], "projected": projected, "event_id": record["envelope"]["event_id"]}


async def _wait_projected(conn: Any, partition: int, offset: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if (await queries.positions(conn)).get(partition, 0) > offset:
            return True
        await asyncio.sleep(0.2)
    return False


def _print_draft(d: drafts.Draft) -> None:
    print(f"draft {d.id}: {d['title']} ({d['period']}), {d['entries']} entries (black {d['black']}, red {d['red']}), "
          f"status {d['status']} ({drafts.STATUS_TITLES[d['status']]})")
    print(f"  drawn {d['drawn_at']:%Y-%m-%d %H:%M:%S %Z} by {d['drafted_by']}, views at {json.dumps(d['drawn_positions'])}")
    print(f"  content SHA-256 {d['content_sha256']}")
    if d["reviewed_by"]:
        print(f"  reviewed by {d['reviewed_by']}" + (f": {d['review_note']}" if d["review_note"] else ""))
    if d["release_no"]:
        print(f"  approved by {d['approved_by']} as 第{d['release_no']}期, ledger position "
              f"{d['ledger_partition']}:{d['ledger_offset']}")


async def _run(args: argparse.Namespace, settings: config.Settings, rules: RuleBook) -> int:
    if args.action == "approve":
        done = await approve(settings, rules, args.draft, args.by, SYSTEM, args.note, args.wait)
        print(f"第{done['release_no']}期 approved ({done['status']}): ledger position {done['partition']}:"
              f"{done['offset']}, content SHA-256 {done['content_sha256']}")
        print(f"  published at http://127.0.0.1:{settings.portal_port}/releases/{done['release_no']}"
              + ("" if done["projected"] else " once the views have it (they had not yet)"))
        return 0
    async with await connect(settings) as conn:
        if args.action == "draft":
            d = await drafts.draw(conn, rules, args.period or "", args.by, SYSTEM.now(), args.corrects)
            _print_draft(d)
            print(f"  next: python -m projections.releases review {d.id} --by <reviewer>")
        elif args.action == "review":
            d = await drafts.review(conn, args.draft, args.by, SYSTEM.now(), args.note, args.reject)
            _print_draft(d)
        elif args.action == "show":
            d = await drafts.get(conn, args.draft)
            _print_draft(d)
            entries = d.content["entries"]
            for what, key in (("list", "list_kind"), ("county", "county_name")):
                counts = Counter(e[key] for e in entries)
                print(f"  by {what}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        else:
            for row in await drafts.recent(conn, 50):
                number = f" -> 第{row['release_no']}期" if row["release_no"] else ""
                print(f"draft {row['id']:>4}  {row['period']:<8} {row['entries']:>5} entries  "
                      f"{drafts.STATUS_TITLES[row['status']]}{number}  {row['title']}")
            cur = await conn.execute("select release_no, period, entries, approved_on, corrects from releases "
                                     "order by release_no")
            for n, period, count, on, corrects in await cur.fetchall():
                print(f"第{n}期  {period:<8} {count:>5} entries  approved {on}"
                      + (f"  (corrects 第{corrects}期)" if corrects else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m projections.releases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("draft", help="draw a draft of a month or quarter that is over (or a correction)")
    p.add_argument("--period", help="2026-11 (a month) or 2026-Q4 (a quarter)")
    p.add_argument("--corrects", type=int, help="the number of the release this draft corrects (its period is used)")
    p.add_argument("--by", required=True, help="the drafter's name")
    p = sub.add_parser("review", help="pass a draft for approval, or send it back with --reject")
    p.add_argument("draft", type=int)
    p.add_argument("--by", required=True, help="the reviewer's name (not the drafter)")
    p.add_argument("--note", help="the review's remark; required with --reject")
    p.add_argument("--reject", action="store_true", help="send the draft back instead of passing it")
    p = sub.add_parser("approve", help="approve a reviewed draft: the next number, signed and put on the ledger")
    p.add_argument("draft", type=int)
    p.add_argument("--by", required=True, help="the approver's name (neither the drafter nor the reviewer)")
    p.add_argument("--note", help="for a correction: what it corrects and why (required)")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the ledger and the views (60)")
    p = sub.add_parser("show", help="a draft's entries by list and by county")
    p.add_argument("draft", type=int)
    sub.add_parser("list", help="the drafts and the approved releases")
    args = parser.parse_args(argv)
    if args.action == "draft" and (args.period is None) == (args.corrects is None):
        parser.error("give --period for a release or --corrects N for a correction")
    settings = config.load()
    try:
        return asyncio.run(_run(args, settings, loader.load()))
    except DraftError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
