"""In a real browser (headless Chromium, as tests/e2e/test_portal_browser.py drives it), against the
running stack with the department supervision counting: an operator opens the dashboard and sees the
charts (throughput, lag and refusals over the last hours; late double publicity and scores per
department and month) drawn as SVG on the server, reads the month's assessment of the departments,
picks another month with the form, downloads the assessment as CSV, and sees the same pictures with
JavaScript turned off. Screenshots of the page and of each chart are kept in artifacts/dashboard/
(git-ignored)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from ledger.client import submit_as_departments
from ops import workload
from projections import supervision as reads
from tests import browser, helpers

ARTIFACTS = browser.ARTIFACTS / "dashboard"
CHARTS = ("throughput", "lag", "rejections", "lateness", "scores")


@pytest.fixture(scope="module")
async def counted(settings, supervision) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """This month's penalties of the market regulator, some late, and a refused one, counted by the
    supervision; returns the market regulator's month as the supervision has it."""
    rng = helpers.rng("dashboard-browser")
    today = helpers.today()
    subjects = workload.subjects(rng, 12, persons_share=0.0)
    pairs = [("xc-samr", workload.penalty(rng, s, "xc-samr", 9000 + i, decided=today - timedelta(days=[0, 20][i % 2])))
             for i, s in enumerate(subjects[:10])]
    pairs.append(("xc-samr", workload.penalty(rng, subjects[10], "xc-samr", 9100, decided=today + timedelta(days=2))))
    outcomes = await submit_as_departments(settings, pairs)
    assert [o["status"] for o in outcomes].count("REJECTED") == 1
    start = reads.month_start(today)

    def month() -> dict[str, int]:
        return {measure: int(n) for measure, n in helpers.pg_rows(
            settings, "select measure, sum(count) from supervision.counts where period = 'month' "
                      "and period_start = %s and department = 'xc-samr' group by 1", (start,))}

    seen: list[dict[str, int]] = [{}]

    def settled() -> bool:  # this stream counted, and nothing of the session's earlier ones still coming in
        before, seen[0] = seen[0], month()
        now = seen[0]
        return now == before and now.get("status.REJECTED", 0) >= 1 and now.get("publicity.late", 0) >= 5

    await helpers.wait_until(settled, timeout=180, interval=3, what="the supervision to count the penalties")
    return seen[0]


@pytest.fixture
async def page(tmp_path: Path, settings) -> AsyncIterator[Page]:  # type: ignore[no-untyped-def]
    async for pg in browser.page(tmp_path, settings):  # a fresh user-data directory per test
        yield pg


async def shot(page: Page, name: str, selector: str | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if selector is None:
        await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    else:
        await page.locator(selector).screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def test_the_operator_sees_the_charts_and_the_assessment_and_downloads_it(page: Page, counted) -> None:
    await page.goto(page.base + "/dashboard")  # type: ignore[attr-defined]
    for i, chart in enumerate(CHARTS, start=2):
        svg = page.locator(f"#chart-{chart} svg")
        await expect(svg).to_be_visible()
        box = await svg.bounding_box()
        assert box and box["width"] > 400 and box["height"] > 60, (chart, box)
        await shot(page, f"{i:02d}-chart-{chart}", f"#chart-{chart}")
    # the refused penalty is in the refusals chart's last bars, the late ones in the lateness grid
    await expect(page.locator("#chart-rejections svg rect title").first).to_contain_text("退回")
    await expect(page.locator("#chart-lateness svg")).to_contain_text("许昌市市场监督管理局")
    row = page.locator('#assessment-table tr[data-department="xc-samr"]')
    await expect(row.locator("td.submissions")).to_have_text(str(counted["submissions"]))
    on_time, late = counted.get("publicity.on_time", 0), counted["publicity.late"]
    await expect(row.locator("td.timeliness")).to_contain_text(f"{on_time}/{on_time + late}")
    await expect(row.locator("td.reasons")).to_contain_text("time.future")
    await shot(page, "01-dashboard")

    today = helpers.today()
    previous = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    await page.get_by_label("考核月份").fill(f"{previous.year:04d}-{previous.month:02d}")
    await page.locator("#assessment form button").click()
    await expect(page.get_by_role("heading", name=f"部门目标考核（{previous.year}年{previous.month}月）")).to_be_visible()
    await shot(page, "07-previous-month", "#assessment")
    await page.goto(page.base + "/dashboard")  # type: ignore[attr-defined]
    async with page.expect_download() as info:
        await page.get_by_role("link", name="下载 CSV").click()
    download = await info.value
    assert download.suggested_filename == f"department-assessment-{today.year:04d}-{today.month:02d}.csv"
    rows = list(csv.reader(io.StringIO(Path(await download.path()).read_bytes().decode("utf-8-sig"))))
    assert rows[0] == [title for _, title in reads.CSV_COLUMNS]
    samr = next(r for r in rows if r[1] == "xc-samr")
    assert samr[2] == "许昌市市场监督管理局" and int(samr[3]) == counted["submissions"]


async def test_the_charts_need_no_javascript(tmp_path: Path, settings, counted) -> None:  # type: ignore[no-untyped-def]
    async for ctx in browser.context(tmp_path / "nojs", java_script_enabled=False):
        page = await ctx.new_page()
        await page.goto(f"http://127.0.0.1:{settings.portal_port}/dashboard?hours=1")
        for chart in CHARTS:
            await expect(page.locator(f"#chart-{chart} svg")).to_be_visible()
        await expect(page.locator("#charts h2")).to_have_text("近 1 小时")
        await shot(page, "08-dashboard-no-javascript")
