"""The search page in a real browser (Debian's Chromium, driven by Playwright): sign in
with a token, search a customer's number, open a message, see its timeline and raw
records; at desktop and phone widths; no console errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright, expect

from archiver.db.store import Store
from tests.api.conftest import EVERYTHING, ReadSide
from tests.api.test_search import archive  # noqa: F401 - the same archive as the API tests

CHROMIUM = os.environ.get("ARCHIVER_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        await launched.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("width, height, name", [(1280, 800, "search-page.png"), (390, 844, "search-page-phone.png")])
async def test_sign_in_search_by_phone_and_read_the_timeline(width: int, height: int, name: str, browser: Browser,
                                                             archive: Store, read_side: ReadSide,  # noqa: F811
                                                             tmp_path: Path) -> None:
    """A support agent's path through the page, with no console error on the way."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    await page.goto(read_side.base_url + "/")
    await page.fill("#token", EVERYTHING)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#results tbody tr")
    cookie = next(c for c in await context.cookies() if c["name"] == "archiver_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    await page.fill("#phone", "+49 170 123-4567")
    await page.click("#search button[type=submit]")
    await expect(page.locator("#results tbody tr")).to_have_count(3)
    assert "wamid.OUT1" in await page.inner_html("#results tbody")
    await page.click("tr[data-id='wamid.OUT1']")
    await page.wait_for_selector("#message ol.timeline li")
    timeline = await page.inner_text("#message ol.timeline")
    assert timeline.index("sent") < timeline.index("delivered") < timeline.index("read")
    assert '"recipient_id": "491701234567"' in await page.inner_text("#message")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the page fits the screen's width"
    await page.screenshot(path=str(tmp_path / name), full_page=True)
    if os.environ.get("ARCHIVER_UPDATE_SCREENSHOTS"):
        shutil.copy(tmp_path / name, SCREENSHOTS / name)
    assert problems == []
    await context.close()
