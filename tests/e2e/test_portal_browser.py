"""In a real browser (headless Chromium from the Debian package, driven by Playwright), against the
running stack: a visitor searches by part of a Chinese name, opens the entity and reads why it is
listed (list status, legal basis, end date, grade reasons); filters the black list with the form;
downloads the month's publication as CSV; follows the home page to the signed tree heads and
downloads one; downloads an entity's credit report (PDF and JSON) from its page and verifies it;
and the display pages work with JavaScript turned off.
Screenshots of every step are kept in artifacts/portal/ (git-ignored; CI keeps them)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pypdfium2
import pytest
from playwright.async_api import Page, expect

from ledger.audit import verify
from ledger.domain import identity
from ledger.domain.rules import ListingTerms
from ledger.rules import loader
from tests import browser, helpers, portal_world

ARTIFACTS = browser.ARTIFACTS / "portal"


@pytest.fixture(scope="module")
async def world(settings, services):  # type: ignore[no-untyped-def]
    return await portal_world.build(settings, "portal-browser")


@pytest.fixture
async def page(tmp_path: Path, settings) -> AsyncIterator[Page]:  # type: ignore[no-untyped-def]
    async for pg in browser.page(tmp_path, settings):
        yield pg


async def shot(page: Page, name: str) -> None:
    await browser.shot(page, ARTIFACTS, name)


async def test_search_by_part_of_a_name_then_read_why_it_is_listed(page: Page, world) -> None:
    await page.goto(page.base + "/")  # type: ignore[attr-defined]
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await page.get_by_label("主体名称 / 统一社会信用代码 / 身份证号码").fill(world["marker"] + "精密")
    await shot(page, "01-home-search")
    await page.get_by_role("button", name="查询").click()
    await expect(page.locator("p.count")).to_contain_text("共 1 个信用主体")
    await shot(page, "02-search-results")
    await page.get_by_role("link", name=world["company"].name).click()

    await expect(page).to_have_url(re.compile(re.escape("/entity/" + world["company_id"]) + "$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(world["company"].name)
    await expect(page.locator("#list-status")).to_contain_text("政府采购禁止参加名单")
    row = page.locator("#lists tbody tr", has_text=world["ban"]["decision_no"])
    await expect(row).to_have_count(1)
    await expect(row.locator("td.legal-basis")).to_contain_text("中华人民共和国政府采购法 第七十七条")
    end = loader.load_publication_periods().listing_window(
        "procurement_ban", world["ban_on"], ListingTerms(period_months=24)).automatic_end
    await expect(row.locator("td.legal-end")).to_have_text(end.isoformat())
    await expect(row).to_contain_text("有效")
    await expect(page.locator("#grade h2")).to_have_text(re.compile(r"信用等级：[ABCD] 级"))
    await expect(page.locator("#grade tbody tr", has_text=world["ban"]["decision_no"])).to_have_count(1)
    await shot(page, "03-entity-page")


async def test_a_person_is_shown_masked(page: Page, world) -> None:
    person = world["person"]
    await page.goto(page.base + "/")  # type: ignore[attr-defined]
    await page.get_by_label("主体名称 / 统一社会信用代码 / 身份证号码").fill(person.id)
    await page.get_by_role("button", name="查询").click()
    await expect(page).to_have_url(re.compile(re.escape("/entity/" + world["person_id"]) + "$"))
    await expect(page.locator("#public-id")).to_have_text(identity.mask_ric(person.id))
    assert person.id not in await page.content()
    await expect(page.locator("#publicity tbody tr")).to_have_count(2)
    await shot(page, "04-person-masked")


async def test_filter_the_lists_with_the_form(page: Page, world) -> None:
    await page.goto(page.base + "/lists")  # type: ignore[attr-defined]
    await page.get_by_label("名单类型").select_option("procurement_ban")
    await page.get_by_label("认定部门").select_option("xc-finance")
    await page.get_by_label("状态").select_option("active")
    first, last = world["ban_month_days"]
    await page.get_by_label("列入日期自").fill(first.isoformat())
    await page.get_by_label("至", exact=True).fill(last.isoformat())
    await page.get_by_role("button", name="筛选").click()
    await expect(page).to_have_url(re.compile(r"kind=procurement_ban.*department=xc-finance"))
    rows = page.locator("table.entries tbody tr")
    await expect(rows.filter(has_text=world["ban"]["decision_no"])).to_have_count(1)
    for text in await rows.all_inner_texts():
        assert "政府采购禁止参加名单" in text and f"{world['ban_month']}-" in text
    await expect(page.get_by_label("名单类型")).to_have_value("procurement_ban")
    await shot(page, "05-lists-filtered")


async def test_download_the_months_publication(page: Page, world) -> None:
    await page.goto(page.base + f"/publication?period={world['ban_month']}")  # type: ignore[attr-defined]
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"{world['ban_month_title']}列入名单（实时查询）")
    await expect(page.locator("table.entries")).to_contain_text(world["ban"]["decision_no"])
    await shot(page, "06-publication")
    async with page.expect_download() as info:
        await page.locator("#csv").click()
    download = await info.value
    assert download.suggested_filename == f"credit-publication-{world['ban_month']}.csv"
    raw = Path(await download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "主体名称" and len(rows) >= 2
    mine = [r for r in rows if r[6] == world["ban"]["decision_no"]]
    county = loader.load().divisions.county(world["company"].id[2:8]).name
    assert [r[:6] for r in mine] == [[world["company"].name, world["company"].id, "企业", county, "政府采购禁止参加名单",
                                      "黑名单"]]
    (ARTIFACTS / f"publication-{world['ban_month']}.csv").write_bytes(raw)


async def test_the_signed_tree_head_from_the_home_page(page: Page, settings, world) -> None:
    await page.goto(page.base + "/")  # type: ignore[attr-defined]
    await page.get_by_role("link", name="查看最新签名树头及核验方法").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("账本签名树头（完整性证明）")
    key = (settings.keys_dir / "notary" / "notary.pub").read_text().strip()
    await expect(page.locator("#public-key")).to_have_text(key)
    await expect(page.locator("#heads table tbody tr").first).to_be_visible(timeout=30_000)
    first = page.locator("#heads table tbody tr").first
    partition = await first.get_attribute("data-partition")
    await page.locator("details summary").first.click()
    await expect(page.locator("pre.message").first).to_contain_text("credit-ledger tree head v1")
    await shot(page, "08-tree-head")
    async with page.expect_download() as info:
        await first.get_by_role("link").click()
    download = await info.value
    assert re.fullmatch(rf"tree-head-p{partition}-[0-9]+\.json", download.suggested_filename)
    head = json.loads(Path(await download.path()).read_text())
    verify.check_head(head, key)  # raises when the downloaded head does not verify under the shown key
    assert str(head["partition"]) == partition


async def test_display_pages_work_without_javascript(tmp_path: Path, settings, world) -> None:
    base = f"http://127.0.0.1:{settings.portal_port}"
    async for ctx in browser.context(tmp_path / "nojs", java_script_enabled=False):
        page = await ctx.new_page()
        await page.goto(f"{base}/search?q={world['marker']}")
        await expect(page.locator("p.count")).to_contain_text("共 3 个信用主体")
        await page.get_by_role("link", name=world["honoured"].name).click()
        await expect(page.locator("#list-status")).to_contain_text("守信激励（红名单）")
        await page.goto(f"{base}/lists?colour=red&size=200")
        await expect(page.locator("table.entries")).to_contain_text(world["honoured"].name)
        await page.goto(f"{base}/dashboard")
        await expect(page.locator("#services")).to_contain_text("运行中")
        await shot(page, "07-dashboard-no-javascript")
        await page.goto(f"{base}/tree-head")
        await expect(page.locator("#how-to-verify")).to_contain_text("verify.py --head")


async def test_download_the_credit_report_from_the_entity_page(page: Page, settings, world) -> None:
    """The entity page links its credit report on the query API: the PDF downloads, says who and how to
    verify it; the JSON and the two public keys from the portal verify with the portal's verifier."""
    api = f"http://127.0.0.1:{settings.api_port}/entities/{world['company_id']}/report.json"
    async with aiohttp.ClientSession() as http:  # once the notary's head covers the company's records

        async def ready() -> bool:
            async with http.get(api) as r:
                return r.status == 200

        await helpers.wait_until(ready, timeout=90, interval=2, what="the company's credit report")
    await page.goto(page.base + f"/entity/{world['company_id']}")  # type: ignore[attr-defined]
    await expect(page.locator("#report")).to_contain_text("离线核验")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="下载信用报告（PDF）").click()
    download = await info.value
    number = download.suggested_filename.removesuffix(".pdf")
    assert verify.REPORT_NUMBER.fullmatch(number), download.suggested_filename
    pdf = pypdfium2.PdfDocument(Path(await download.path()).read_bytes())
    text = pdf[0].get_textpage().get_text_range()
    assert number in text and world["company"].name in text and "核验方法" in text
    (browser.ARTIFACTS / "reports").mkdir(parents=True, exist_ok=True)
    pdf[0].render(scale=1.6).to_pil().save(browser.ARTIFACTS / "reports" / "portal-report-p1.png")
    await shot(page, "09-entity-report-link")

    files = {}
    for name in ("可离线核验的 JSON 版", "report-issuer.pub", "notary.pub"):
        async with page.expect_download() as info:
            await page.locator("#report").get_by_role("link", name=name, exact=True).click()
        files[name] = Path(await (await info.value).path()).read_bytes()
    v = verify.verify_report(files["可离线核验的 JSON 版"], files["notary.pub"].decode().strip(),
                             files["report-issuer.pub"].decode().strip())
    assert v.number == number and v.subject["entity_id"] == world["company_id"]
