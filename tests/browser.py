"""The browser tests' Chromium: the Debian package driven by Playwright (never `playwright install`), a
fresh profile per test, the portal's base URL on the page, and full-page screenshots kept under
artifacts/ (git-ignored; CI keeps them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, async_playwright

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"  # Debian package chromium (ops/bootstrap); never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


async def context(profile: Path, **options: Any) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as p:
        ctx = await p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, accept_downloads=True,
            locale="zh-CN", viewport={"width": 1280, "height": 900}, **options)
        try:
            yield ctx
        finally:
            await ctx.close()


async def page(tmp: Path, settings: Any) -> AsyncIterator[Page]:
    """A page of a fresh browser profile, with ``page.base`` the portal's URL."""
    async for ctx in context(tmp / "profile"):
        pg = await ctx.new_page()
        pg.set_default_timeout(20_000)
        pg.base = f"http://127.0.0.1:{settings.portal_port}"  # type: ignore[attr-defined]
        yield pg


async def shot(page: Page, directory: Path, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(directory / f"{name}.png"), full_page=True)
