"""In a real browser (headless Chromium, Playwright), against the running stack: once the credit office
has approved the 红黑榜 of a month with its command, a visitor follows the home page to the releases,
opens 第N期, narrows it to one county with the form, downloads its PDF (the Chinese font embedded, the
entries in it) and its CSV; follows the navigation to the counties and opens one county's page with its
figures and the lists' trend; and the release page works with JavaScript off.
Screenshots in artifacts/releases/ and artifacts/counties/ (git-ignored), with the PDF's first page."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from playwright.async_api import Page, expect

from ledger.domain import identity
from tests import browser, release_world

RELEASES = browser.ARTIFACTS / "releases"
COUNTIES = browser.ARTIFACTS / "counties"


@pytest.fixture(scope="module")
async def world(settings, services):  # type: ignore[no-untyped-def]
    built = await release_world.build(settings, "releases-browser", months_back=15)
    built["release"] = release_world.approve_first_release(built)
    return built


@pytest.fixture
async def page(tmp_path: Path, settings) -> AsyncIterator[Page]:  # type: ignore[no-untyped-def]
    async for pg in browser.page(tmp_path, settings):
        yield pg


async def test_open_a_release_from_the_home_page_and_narrow_it_to_a_county(page: Page, world) -> None:
    n, s = world["release"], world["subjects"]
    await page.goto(page.base + "/")  # type: ignore[attr-defined]
    await page.get_by_role("link", name="红黑榜（信用办按期批准发布，第N期）").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("诚信“红黑榜”")
    await browser.shot(page, RELEASES, "01-releases")
    await page.get_by_role("link", name=f"第{n}期", exact=True).click()
    await expect(page).to_have_url(re.compile(rf"/releases/{n}$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text(f"第{n}期")
    black = page.locator("#black-entries table tbody tr")
    await expect(black.filter(has_text=s["yuzhou"].name)).to_have_count(1)
    await expect(black.filter(has_text=s["old_county"].name)).to_contain_text("建安区")
    await expect(black.filter(has_text=s["changge"].name)).to_contain_text(identity.mask_ric(s["changge"].id))
    await expect(page.locator("#red-entries")).to_contain_text(s["honoured"].name)
    await expect(page.locator("#digest")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    assert s["changge"].id not in await page.content()
    await browser.shot(page, RELEASES, "02-release")
    await page.get_by_label("县（市、区）").select_option("411081")
    await page.get_by_role("button", name="筛选").click()
    await expect(page).to_have_url(re.compile(rf"/releases/{n}\?county=411081$"))
    await expect(black).to_have_count(1)
    await expect(black).to_contain_text(s["yuzhou"].name)
    await expect(page.locator("p.count")).to_contain_text("禹州市 1 条")
    await browser.shot(page, RELEASES, "03-release-one-county")


async def test_download_the_releases_pdf_and_csv(page: Page, world) -> None:
    n, s = world["release"], world["subjects"]
    await page.goto(page.base + f"/releases/{n}")  # type: ignore[attr-defined]
    async with page.expect_download() as info:
        await page.locator("#pdf").click()
    download = await info.value
    assert download.suggested_filename == f"credit-release-{n}.pdf"
    pdf = Path(await download.path()).read_bytes()
    assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf
    RELEASES.mkdir(parents=True, exist_ok=True)
    (RELEASES / f"release-{n}-downloaded.pdf").write_bytes(pdf)
    doc = pdfium.PdfDocument(pdf)
    text = re.sub(r"\s", "", "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc))))
    assert f"第{n}期" in text and s["yuzhou"].name in text and s["honoured"].name in text
    doc[0].render(scale=1.5).to_pil().save(RELEASES / "04-release-pdf-page1.png")
    async with page.expect_download() as info:
        await page.locator("#csv").click()
    raw = Path(await (await info.value).path()).read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["红黑名单", "名单类型", "主体名称"]
    assert any(r[2] == s["weidu"].name and r[5] == "魏都区" for r in rows[1:])


async def test_a_countys_page_from_the_navigation(page: Page, world) -> None:
    s = world["subjects"]
    await page.goto(page.base + "/")  # type: ignore[attr-defined]
    await page.get_by_role("navigation", name="主导航").get_by_role("link", name="县区").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("许昌市各县（市、区）信用信息")
    for name in ("魏都区", "建安区", "禹州市", "长葛市", "许昌经济技术开发区", "市外"):
        await expect(page.locator("#counties")).to_contain_text(name)
    await browser.shot(page, COUNTIES, "01-counties")
    await page.get_by_role("link", name="禹州市", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/county/411081$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("禹州市")
    await expect(page.locator("#trend-table tbody tr")).to_have_count(12)
    await expect(page.locator("#trend-chart svg polyline")).to_have_count(3)  # black, red listed; black ended
    await expect(page.locator("#coverage-key-persons")).to_contain_text("重点自然人合计")
    await expect(page.locator("#in-releases")).to_contain_text(f"第{world['release']}期")
    await browser.shot(page, COUNTIES, "02-county-yuzhou")
    await page.locator("#in-releases").get_by_role("link").first.click()
    await expect(page.locator("#black-entries table tbody tr").filter(has_text=s["yuzhou"].name)).to_have_count(1)


async def test_the_release_page_works_without_javascript(tmp_path: Path, settings, world) -> None:
    async for ctx in browser.context(tmp_path / "nojs", java_script_enabled=False):
        page = await ctx.new_page()
        await page.goto(f"http://127.0.0.1:{settings.portal_port}/releases/{world['release']}?county=411003")
        await expect(page.locator("#black-entries")).to_contain_text(world["subjects"]["old_county"].name)
        await expect(page.locator("#red-entries")).to_contain_text(world["subjects"]["honoured"].name)
        await browser.shot(page, RELEASES, "05-release-no-javascript")
