"""In a real browser (headless Chromium from the Debian package, driven by Playwright; JavaScript off,
so the forms work without it), against the running stack: a member of the public opens a company's
page on the portal, follows "提出异议" beside a penalty to the public intake's form, fills it in (a
mistake first: the form names it in Chinese), files it and gets a receipt number; follows the
objection on the portal by that number and sees the record marked 异议处理中 on the company's page;
the market regulator withdraws the penalty and answers CORRECTED; the follow page shows 已更正 with
every step's date and the penalty is no longer on public display. Screenshots of every step are kept
in artifacts/objections/ (git-ignored)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from ledger.client import submit_as_departments
from ops import workload
from ops import workload_objections as wo
from tests import browser, helpers

ARTIFACTS = browser.ARTIFACTS / "objections"


async def shot(page: Page, name: str) -> None:
    await browser.shot(page, ARTIFACTS, name)


async def _accepted(settings, *pairs: wo.Pair) -> None:  # type: ignore[no-untyped-def]
    for pair in pairs:
        [out] = await submit_as_departments(settings, [pair])
        assert out["status"] == "ACCEPTED", out["reasons"]
    await helpers.projected(settings)


async def test_file_an_objection_follow_it_see_it_marked_then_corrected(tmp_path: Path, settings, services) -> None:
    rng = helpers.rng("objection-browser")
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    today = helpers.today()
    penalty = workload.workload_penalty(rng, subject, "xc-samr", f"许市监罚〔{today.year}〕E{rng.randrange(10**6)}号",
                                        today - timedelta(days=40), "general")
    await _accepted(settings, penalty)
    portal = f"http://127.0.0.1:{settings.portal_port}"
    async for ctx in browser.context(tmp_path / "profile", java_script_enabled=False):
        page = await ctx.new_page()
        page.set_default_timeout(20_000)
        await page.goto(f"{portal}/entity/uscc:{subject.id}")
        row = page.locator("#publicity tbody tr", has_text=penalty[1]["decision_no"])
        await expect(row).to_have_count(1)
        await shot(page, "01-entity-page")
        await row.get_by_role("link", name="提出异议").click()

        await expect(page.get_by_role("heading", level=1)).to_have_text("信用信息异议申请")
        await expect(page.get_by_label("记录编号")).to_have_value(wo.event_id(penalty))
        await expect(page.get_by_label("统一社会信用代码 / 居民身份证号码")).to_have_value(subject.id)
        await page.get_by_label("异议类型").select_option("error")
        await page.get_by_label("异议理由").fill("决定书载明罚款五千元，公示为五万元，请予更正。")
        await page.get_by_label("联系人").fill("王伟")
        await page.get_by_label("联系电话").fill("0374-55")  # too short: the form says so
        await shot(page, "02-objection-form")
        await page.get_by_role("button", name="提交异议").click()
        await expect(page.locator(".problems")).to_contain_text("联系电话格式有误")
        await shot(page, "03-form-with-a-problem")
        await page.get_by_label("联系电话").fill("0374-5551234")
        await page.get_by_role("button", name="提交异议").click()

        await expect(page.get_by_role("heading", level=1)).to_have_text("信用信息异议申请已受理")
        receipt = (await page.locator("#receipt").inner_text()).strip()
        assert re.fullmatch(r"YY\d{8}-[0-9A-Z]{8}", receipt), receipt
        await shot(page, "04-receipt")
        await helpers.projected(settings)
        await page.get_by_role("link", name="查询办理进度").click()
        await expect(page.locator("#status")).to_contain_text("异议处理中")
        await expect(page.locator("#steps")).to_contain_text("受理（异议标注）")
        await shot(page, "05-follow-filed")
        await page.get_by_role("link", name=subject.name).click()
        await expect(page.locator("#publicity tbody tr", has_text=penalty[1]["decision_no"])).to_contain_text("异议处理中")
        await shot(page, "06-entity-marked")

        withdrawal = workload.penalty_revoked(subject, penalty[1]["decision_no"], today)
        await _accepted(settings, wo.objection_forwarded(subject, receipt, "xc-samr", today), withdrawal,
                        wo.objection_answered(subject, receipt, "xc-samr", "CORRECTED", today, wo.event_id(withdrawal)))
        await page.goto(f"{portal}/follow")
        await page.get_by_label("受理编号").fill(receipt)
        await page.get_by_role("button", name="查询").click()
        await expect(page.locator("#result")).to_have_text("已更正")
        await expect(page.locator("#steps tbody tr")).to_have_count(4)
        await expect(page.locator("#steps")).not_to_contain_text("待办")
        await shot(page, "07-follow-corrected")
        await page.get_by_role("link", name=subject.name).click()
        await expect(page.locator("#publicity tbody tr", has_text=penalty[1]["decision_no"])).to_have_count(0)
        await expect(page.locator(".tag.objection")).to_have_count(0)
        await shot(page, "08-entity-corrected")
