"""Helpers of the dashboard's browser tests (test_dashboard.py): headless Debian Chromium driven
by Python playwright (``executable_path=/usr/bin/chromium``; no browser download)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM = os.environ.get("EQX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# The README's screenshots are rewritten only on request (EQX_UPDATE_SCREENSHOTS=1), so that a
# test run does not modify tracked files; otherwise they go to a temporary folder.
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
               if os.environ.get("EQX_UPDATE_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "eqx-screenshots")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")


def launch(pw):
    return pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)


def browser_fixture():
    """A module's headless Chromium (a generator for ``pytest.fixture(scope="module")``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


def login(page, base_url: str, user: str, password: str) -> None:
    page.goto(base_url + "/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#app-view:not([hidden])")


def start_negotiation(page, *, sv="5000", rv="8000", rounds="10", delay="0", seed="3",
                      supplier="boulware", retailer="conceder") -> None:
    form = page.locator("#sim-form")
    form.get_by_label("Supplier valuation ($)").fill(sv)
    form.get_by_label("Retailer valuation ($)").fill(rv)
    form.get_by_label("Max rounds (1–100)").fill(rounds)
    form.get_by_label("Delay per move (s, 0–5)").fill(delay)
    form.get_by_label("Seed (optional)").fill(seed)
    page.select_option("#supplier_policy", supplier)
    page.select_option("#retailer_policy", retailer)
    old = page.get_attribute("#live", "data-session-id")
    page.get_by_role("button", name="Start negotiation").click()
    # Wait for the new session (so a previous session's result is never mistaken for it).
    page.wait_for_function("old => document.getElementById('live').dataset.sessionId !== old",
                           arg=old)


def wait_result(page, timeout_ms: int = 60_000) -> str:
    page.wait_for_selector("#result .outcome", timeout=timeout_ms)
    return page.inner_text("#result .outcome")


def _lum(rgb: tuple[float, ...]) -> float:
    def ch(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = rgb[:3]
    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b)


def parse_rgb(s: str) -> tuple[float, ...]:
    inner = s[s.index("(") + 1:s.index(")")].replace(",", " ").replace("/", " ").split()
    return tuple(float(x) for x in inner[:3])


def contrast(fg: str, bg: str) -> float:
    a, b = _lum(parse_rgb(fg)), _lum(parse_rgb(bg))
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)
