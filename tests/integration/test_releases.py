"""Given the running stack, when the credit office drafts, reviews and approves the 红黑榜 of a month that
is over with its command, then the approval is a signed ledger event with the next number, carrying the
content and its digest; the portal publishes exactly that content (page, PDF with the Chinese font
embedded, CSV, JSON whose SHA-256 is the digest), byte for byte the same after the lists change; a
correction is a new release naming the one it corrects; and the ledger refuses a number given twice, a
content that is not its digest, a release from another department, and a second release of a period."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pypdfium2 as pdfium
import pytest

from ledger.client import submit_as_departments
from ledger.domain import identity, releases
from ledger.domain.rules import add_months
from ledger.rules import loader
from ops import workload
from projections.releases import content as release_content
from schemas import registry
from tests import helpers, portal_world, release_world
from tests.release_world import draft_id, release_command

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "releases"
@pytest.fixture(scope="module")
async def portal(settings, services):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield portal_world.Portal(session, f"http://127.0.0.1:{settings.portal_port}")


@pytest.fixture(scope="module")
async def world(settings, services):  # type: ignore[no-untyped-def]
    return await release_world.build(settings, "releases-http", months_back=13)


@pytest.fixture(scope="module")
def approved(world) -> int:  # type: ignore[no-untyped-def]
    return release_world.approve_first_release(world)


def _release_rows(settings: Any, number: int) -> list[tuple[Any, ...]]:
    return helpers.pg_rows(settings, "select release_no, period, corrects, entries, content_sha256, event_id, "
                           "kafka_partition, kafka_offset from views.releases where release_no = %s", (number,))


async def test_draft_review_and_approval_need_three_people_in_order(settings, world) -> None:
    drafted = release_command("draft", "--period", world["period"], "--by", "孙丽")
    d = draft_id(drafted)
    assert "status draft" in drafted and "content SHA-256" in drafted
    shown = release_command("show", str(d))
    assert "禹州市" in shown and "长葛市" in shown and "建安区" in shown  # the counties of the world's entries
    assert "审核人须是起草人以外的人" in release_command("review", str(d), "--by", "孙丽", expect=1)
    assert "尚未通过审核" in release_command("approve", str(d), "--by", "周杰", expect=1)
    assert "退回须写明理由" in release_command("review", str(d), "--by", "吴刚", "--reject", expect=1)
    release_command("review", str(d), "--by", "吴刚", "--reject", "--note", "红名单条目待核实")
    assert "只能审核待审核的草稿" in release_command("review", str(d), "--by", "郑芳", expect=1)
    assert "period" in release_command("draft", "--by", "孙丽", expect=2)  # neither --period nor --corrects
    not_over = f"{helpers.today():%Y-%m}"
    assert "周期结束后才能起草" in release_command("draft", "--period", not_over, "--by", "孙丽", expect=1)


async def test_the_approval_is_a_signed_ledger_event_with_the_content_and_its_digest(settings, portal, world,
                                                                                     approved) -> None:
    [(number, period, corrects, entries, digest, event_id, partition, offset)] = _release_rows(settings, approved)
    assert (number, period, corrects) == (approved, world["period"], None)
    office = f"uscc:{loader.load().releases.publisher_id}"
    ledger = (await helpers.ledger_entries(settings, {office}))[office]
    entry = next(e for e in ledger if e["event_id"] == event_id)
    assert (entry["_partition"], entry["_offset"], entry["department"]) == (partition, offset, "xc-credit-office")
    assert entry["event_type"] == "ListReleaseApproved" and entry["signature"] and entry["signer"] == ""
    _, record = registry.decode(entry["submission"], "ListReleaseApproved")
    assert record["release_no"] == approved and record["content_sha256"] == digest == releases.content_digest(record)
    assert len(record["entries"]) == entries and record["drafted_by"] == "李明" and record["approved_by"] == "张强"
    # the published content is the signed one: the JSON's SHA-256 is the digest on the ledger
    raw, kind = await portal.get(f"/releases/{approved}.json")
    assert kind.startswith("application/json") and hashlib.sha256(raw).hexdigest() == digest
    published = json.loads(raw)
    assert published["entries"] == releases.content_of(record)["entries"]
    mine = {e["entity_id"]: e for e in published["entries"] if e["entity_id"] in world["entity"].values()}
    for key, entity in world["entity"].items():
        if key != "late_entry":
            assert mine[entity]["county"] == world["counties"][key], key
    person = mine[world["entity"]["changge"]]
    assert person["public_id"] == identity.mask_ric(world["subjects"]["changge"].id)
    assert {e["colour"] for e in mine.values()} == {"black", "red"}


async def test_the_release_page_pdf_and_csv_show_what_was_approved(settings, portal, world, approved) -> None:
    body = await portal.page(f"/releases/{approved}")
    assert f"第{approved}期" in body and world["subjects"]["yuzhou"].name in body and "张强" in body
    [(_, _, _, entries, digest, _, partition, offset)] = _release_rows(settings, approved)
    assert digest in body and f"第 {partition} 分区第 {offset} 条" in body
    assert identity.mask_ric(world["subjects"]["changge"].id) in body
    county = await portal.page(f"/releases/{approved}", county="411081")
    assert world["subjects"]["yuzhou"].name in county and world["subjects"]["weidu"].name not in county
    index = await portal.page("/releases", county="411081")
    assert f'href="/releases/{approved}?county=411081"' in index
    raw, kind = await portal.get(f"/releases/{approved}.csv")
    assert kind.startswith("text/csv") and raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == [title for _, title in release_content.CSV_COLUMNS] and len(rows) == entries + 1
    assert any(world["subjects"]["old_county"].name in r and "建安区" in r for r in rows)
    pdf, kind = await portal.get(f"/releases/{approved}.pdf")
    assert kind == "application/pdf" and pdf.startswith(b"%PDF") and b"/FontFile2" in pdf  # the font embedded
    doc = pdfium.PdfDocument(pdf)
    # the text of every page, without the line breaks of wrapped cells
    text = re.sub(r"\s", "", "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc))))
    for key in ("yuzhou", "weidu", "honoured"):
        assert world["subjects"][key].name in text, key
    assert identity.mask_ric(world["subjects"]["changge"].id) in text and world["subjects"]["changge"].id not in text
    assert f"第{approved}期" in text and digest in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"release-{approved}.pdf").write_bytes(pdf)
    doc[0].render(scale=1.5).to_pil().save(ARTIFACTS / f"release-{approved}-page1.png")


@pytest.fixture(scope="module")
async def changed(settings, portal, world, approved):  # type: ignore[no-untyped-def]
    """The release's files as first published; then the court deletes a listing of the month made in
    error and a listing of the month arrives late (both after the release was drawn)."""
    before = {ext: (await portal.get(f"/releases/{approved}{ext}"))[0] for ext in (".json", ".csv", ".pdf")}
    before["page"] = (await portal.page(f"/releases/{approved}")).encode()
    first = world["first"]
    yuzhou, late = world["subjects"]["yuzhou"], world["subjects"]["late_entry"]
    changes = [workload.debtor_delisted(yuzhou, world["cases"][yuzhou.id], first + timedelta(days=20), reason="correction"),
               workload.debtor_listed(late, world["cases"][late.id], first + timedelta(days=12))]
    outcomes = await submit_as_departments(settings, changes)
    assert [o["status"] for o in outcomes] == ["ACCEPTED", "ACCEPTED"]
    await helpers.projected(settings)
    return before


async def test_the_release_stays_as_approved_when_the_lists_change(portal, world, approved, changed) -> None:
    yuzhou, late = world["subjects"]["yuzhou"], world["subjects"]["late_entry"]
    live = await portal.page("/publication", period=world["period"])
    assert late.name in live and f'href="/releases/{approved}"' in live  # the live query changed, and says so
    for ext in (".json", ".csv", ".pdf"):
        assert (await portal.get(f"/releases/{approved}{ext}"))[0] == changed[ext], ext
    again = await portal.page(f"/releases/{approved}")
    assert again.encode() == changed["page"] and yuzhou.name in again and late.name not in again


async def test_a_correction_is_a_new_release_naming_the_one_it_corrects(settings, portal, world, approved,
                                                                         changed) -> None:
    yuzhou, late = world["subjects"]["yuzhou"], world["subjects"]["late_entry"]
    assert "已发布为第" in release_command("draft", "--period", world["period"], "--by", "李明", expect=1)
    d = draft_id(release_command("draft", "--corrects", str(approved), "--by", "李明"))
    release_command("review", str(d), "--by", "王芳")
    assert "须写明更正说明" in release_command("approve", str(d), "--by", "张强", expect=1)
    note = f"撤回第{approved}期中{yuzhou.name}：法院已以列入错误删除；补列{late.name}（迟报）"
    out = release_command("approve", str(d), "--by", "张强", "--note", note)
    correction = int(out.split("期 approved")[0].rsplit("第", 1)[1])
    assert correction > approved
    [(_, period, corrects, _, _, _, _, _)] = _release_rows(settings, correction)
    assert (period, corrects) == (world["period"], approved)
    body = await portal.page(f"/releases/{correction}")
    assert f"本期更正第{approved}期" in body and note in body
    withdrawn = body.split('id="withdrawn"', 1)[1].split("</table>", 1)[0]
    assert yuzhou.name in withdrawn
    assert late.name in body.split('id="black-entries"', 1)[1]
    old = await portal.page(f"/releases/{approved}")
    assert f'已由<a href="/releases/{correction}">第{correction}期</a>更正' in old and yuzhou.name in old
    assert "已由第" in release_command("draft", "--corrects", str(approved), "--by", "李明", expect=1)


async def test_the_ledger_refuses_what_the_rules_forbid(settings, world, approved) -> None:
    await helpers.projected(settings)
    (last,) = helpers.pg_rows(settings, "select max(release_no) from views.releases")[0]
    month = add_months(world["first"], -37)  # a month no other test releases (50 months back)
    entry = release_world.entry_about(world["subjects"]["weidu"], month)
    period = f"{month:%Y-%m}"
    taken = workload.release_approved(approved, period, [entry], helpers.today())  # a number already given
    tampered = workload.release_approved(last + 1, period, [entry], helpers.today())
    tampered[1]["entries"][0]["reason"] = "改过的事由"  # the content is no longer the digest's
    again = workload.release_approved(last + 1, world["period"], [dict(entry, listed_on=world["first"].isoformat())],
                                      helpers.today())  # the world's month, released already
    foreign = ("xc-samr", workload.release_approved(last + 1, period, [dict(entry, ref="z")], helpers.today())[1])
    foreign[1]["envelope"]["source_department"] = "xc-samr"  # the market regulator speaking for itself
    outcomes = await submit_as_departments(settings,
                                           [taken, tampered, again, foreign])
    assert [(o["status"], o["reasons"][0]["code"], o["reasons"][0]["field"]) for o in outcomes] == [
        ("REJECTED", "release.number", "release_no"), ("REJECTED", "release.digest", "content_sha256"),
        ("REJECTED", "release.period_released", "period"), ("REJECTED", "department.not_authorized", "source_department")]
    assert helpers.pg_rows(settings, "select count(*) from views.releases where period = %s", (period,)) == [(0,)]
    assert helpers.pg_rows(settings, "select max(release_no) from views.releases") == [(last,)]


async def test_bad_requests_and_no_clear_id_number_anywhere(settings, portal, world, approved) -> None:
    assert "尚未发布第" in await portal.page("/releases/999999", expect=404)
    assert 'data-parameter="county"' in await portal.page(f"/releases/{approved}", expect=400, county="411099")
    assert 'data-parameter="bogus"' in await portal.page("/releases", expect=400, bogus="1")
    await portal.page("/dashboard")
    for key in ("changge", "old_county"):
        clear = world["subjects"][key].id
        assert portal.bodies and all(clear not in b for b in portal.bodies)
    log = (settings.stack_dir / "logs" / "portal.log").read_text(encoding="utf-8")
    assert all(world["subjects"][k].id not in log for k in ("changge", "old_county"))


async def test_a_release_of_the_largest_size_passes_the_whole_path(settings, portal, world, approved) -> None:
    """2,000 entries with long names and reasons (the rules' limit): about 0.7 MB through the client, the
    sequencer (which fetches 256 KiB per partition), the ledger, the projector and the portal."""
    limit = loader.load().releases.max_entries
    month = add_months(world["first"], -27)  # 40 months back: a month no other test releases
    entries = [{"colour": "black", "list_kind": "wage_arrears", "entity_id": f"uscc:91411002MA{i:07d}X",
                "public_id": f"91411002MA{i:07d}X", "subject_name": f"许昌市魏都区第{i}建筑劳务分包有限公司",
                "category": "enterprise", "county": "411002", "county_name": "魏都区",
                "ref": f"许人社欠薪〔{month.year}〕{i:06d}号", "reason": "拖欠农民工工资 865,000.00 元，经责令限期支付仍未支付",
                "department": "xc-hrss", "department_name": "许昌市人力资源和社会保障局", "listed_on": month.isoformat(),
                "legal_end": None, "listing_event_id": f"e{i}", "entity_version": 3} for i in range(limit)]
    await helpers.projected(settings)
    (last,) = helpers.pg_rows(settings, "select max(release_no) from views.releases")[0]
    big = workload.release_approved(last + 1, f"{month:%Y-%m}", entries, helpers.today())
    size = len(registry.encode("ListReleaseApproved", big[1]))
    assert 600_000 < size <= release_content.MAX_RECORD_BYTES
    [outcome] = await submit_as_departments(settings, [big], timeout=120)
    assert outcome["status"] == "ACCEPTED", outcome["reasons"]
    await helpers.projected(settings)
    assert helpers.pg_rows(settings, "select entries from views.releases where release_no = %s", (last + 1,)) == [(limit,)]
    raw, _ = await portal.get(f"/releases/{last + 1}.json")
    assert hashlib.sha256(raw).hexdigest() == big[1]["content_sha256"]
    pdf, kind = await portal.get(f"/releases/{last + 1}.pdf")
    assert kind == "application/pdf" and len(pdfium.PdfDocument(pdf)) > 50


async def test_stored_rows_that_are_not_the_approved_content_are_not_published(settings, portal, world,
                                                                               approved) -> None:
    """Someone with the database edits a published entry: the portal no longer finds the approved digest
    in the stored rows and publishes nothing of that release (page and files) until they are right again."""
    where = "release_no = %s and seq = 0"
    [(reason,)] = helpers.pg_rows(settings, f"select reason from views.release_entries where {where}", (approved,))
    helpers.pg_rows(settings, f"update views.release_entries set reason = '改过的事由' where {where} returning seq",
                    (approved,))
    try:
        assert "发布内容校验失败" in await portal.page(f"/releases/{approved}", expect=500)
        for ext in (".pdf", ".csv", ".json"):
            raw, _ = await portal.get(f"/releases/{approved}{ext}", expect=500)
            assert "改过的事由" not in raw.decode("utf-8")
    finally:
        helpers.pg_rows(settings, f"update views.release_entries set reason = %s where {where} returning seq",
                        (reason, approved))
    assert "改过的事由" not in await portal.page(f"/releases/{approved}")
