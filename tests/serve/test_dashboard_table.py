"""The dashboard with every game and a person at the table, in headless Chromium against a real
server: a person takes the retailer's seat of the single-price game, makes two counter-offers
with the form and one in free text (confirmed), accepts the agent's offer, and sees the result
against the equilibrium and against the agent in their seat; the stored session replays and the
JSONL export has their raw text. A multi-issue and a 3-party session are watched to the end
with their utility charts; the person's view works at phone width in dark mode. Screenshots go
to docs/screenshots/ with EQX_UPDATE_SCREENSHOTS=1 (else a temporary folder)."""

from __future__ import annotations

import json

import httpx
import pytest

pytest.importorskip("playwright.sync_api")

from dashboard_helpers import (  # noqa: E402 - after the importorskip
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    browser_fixture,
    chromium_path,
    login,
)
from playwright.sync_api import expect  # noqa: E402

if chromium_path() is None:
    pytest.skip("Chromium is missing: apt-get install -y chromium (make test does it)",
                allow_module_level=True)

API = "/api/v1"
USER = ("erin", "erin-password")


@pytest.fixture(scope="module")
def dash(server):
    server.add_user(*USER)
    server.token(*USER)
    return server


browser = pytest.fixture(scope="module", name="browser")(browser_fixture)


def new_page(browser, dash, viewport=DESKTOP, theme="light", scale=1):
    ctx = browser.new_context(viewport=viewport, color_scheme=theme, device_scale_factor=scale)
    p = ctx.new_page()
    p.set_default_timeout(30_000)
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.js_errors = errors
    login(p, dash.url, *USER)
    return ctx, p


def start(p, *, game="price", scenario=None, seats=(), seed="3", delay="0", rounds=None):
    p.select_option("#game", game)
    if scenario:
        p.select_option("#scenario", scenario)
    for i, who in enumerate(seats):
        if game == "price":
            p.select_option("#supplier_policy" if i == 0 else "#retailer_policy", who)
        else:
            p.select_option(f"#seat-policy-{i}", who)
    p.fill("#seed", seed)
    p.fill("#move_delay_s", delay)
    if rounds is not None:
        p.fill("#max_rounds", rounds)
    old = p.get_attribute("#live", "data-session-id")
    p.get_by_role("button", name="Start negotiation").click()
    p.wait_for_function("old => document.getElementById('live').dataset.sessionId !== old",
                        arg=old)
    return p.get_attribute("#live", "data-session-id")


def wait_turn(p, round_no: int) -> None:
    p.wait_for_function(
        "r => !document.getElementById('you-panel').hidden && "
        "document.getElementById('you-seat').textContent.includes('round ' + r + ' ')",
        arg=round_no)


def test_a_person_plays_the_retailer_of_the_price_game(browser, dash):
    ctx, p = new_page(browser, dash)
    try:
        start(p, seats=("boulware", "human"))
        # Round 2: a counter-offer with the form.
        wait_turn(p, 2)
        expect(p.locator("#you-deadline")).to_contain_text("s left for your move")
        p.fill("#you-offer-price", "5200")
        p.get_by_role("button", name="Make this offer").click()
        # Round 4: another with the form, using only the keyboard (Enter submits).
        wait_turn(p, 4)
        p.fill("#you-offer-price", "5300")
        p.press("#you-offer-price", "Enter")
        # Round 6: in words; an unclear text is asked about, a clear one confirmed.
        wait_turn(p, 6)
        p.fill("#you-text", "hmm, not sure")
        p.get_by_role("button", name="Send").click()
        expect(p.locator("#you-error")).to_contain_text("missing or unclear")
        p.fill("#you-text", "I can do 5,450 dollars")
        p.get_by_role("button", name="Send").click()
        expect(p.locator("#you-proposal-text")).to_contain_text("offer $5,450 a unit")
        p.get_by_role("button", name="Confirm").click()
        # Round 8: accept the agent's offer.
        wait_turn(p, 8)
        p.get_by_role("button", name="Accept their offer").click()
        p.wait_for_selector("#result .outcome")
        assert p.inner_text("#result .outcome").startswith("Deal reached at $")
        mine = p.locator("#chat li.you")
        expect(mine).to_have_count(4)
        expect(mine.nth(2)).to_contain_text("I can do 5,450 dollars")
        you = p.locator("#result .you-result")
        expect(you).to_contain_text("You (the retailer)")
        expect(you).to_contain_text("Equilibrium in your seat")
        expect(you).to_contain_text("conceder in your seat")
        expect(p.locator("#utility-chart .frontier")).to_have_count(1)
        expect(p.locator("#utility-chart .spe")).to_have_count(1)
        sid = p.get_attribute("#live", "data-session-id")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(SCREENSHOTS / "person-at-the-table-desktop-light.png"),
                     full_page=True)
        # The stored session replays, with the person's words.
        p.get_by_role("tab", name="Sessions & analytics").click()
        p.get_by_role("button", name="Refresh").click()
        p.locator(f'#sessions-table tr[data-session="{sid}"] button').click()
        p.get_by_role("button", name="Last move").click()
        expect(p.locator("#replay-chat li.you")).to_have_count(4)
        expect(p.locator("#replay-result .you-result")).to_contain_text("You (the retailer)")
        assert p.js_errors == []
    finally:
        ctx.close()
    # The class's data: the JSONL export has the raw text and the parsed move.
    h = dash.headers(USER[0])
    r = httpx.post(f"{dash.url}{API}/metrics/export",
                   json={"session_ids": [sid], "format": "jsonl"}, headers=h)
    lines = [json.loads(x) for x in httpx.get(dash.url + r.json()["download_url"],
                                              headers=h).text.splitlines()]
    said = [x for x in lines if x["raw_text"]]
    assert [x["raw_text"] for x in said] == ["I can do 5,450 dollars"]
    assert said[0]["parsed"] == {"action": "COUNTER", "offer": {"price": 5450.0}}
    assert [x["via"] for x in lines if x["human"]] == ["form", "form", "text", "form"]


@pytest.mark.parametrize(("game", "scenario", "shot"), [
    ("multi-issue", "supply-chain-4", "multi-issue"), ("group", "supply-chain-3p", "three-party")])
def test_watch_a_multi_issue_and_a_three_party_session(browser, dash, game, scenario, shot):
    ctx, p = new_page(browser, dash)
    try:
        start(p, game=game, scenario=scenario, seed="7")
        p.wait_for_selector("#result .outcome", timeout=60_000)
        items = p.locator("#chat li")
        assert items.count() >= 2
        first = items.first.inner_text()
        assert "a unit" in first and "units" in first  # every issue's value in the move
        agents = 3 if game == "group" else 2
        expect(p.locator("#utility-block")).to_be_visible()
        if agents == 2:
            expect(p.locator("#utility-chart .frontier")).to_have_count(1)
            expect(p.locator("#utility-chart .nash")).to_have_count(1)
        else:
            expect(p.locator("#utility-chart .p2-line")).to_have_count(1)
            expect(p.locator("#chat li.other").first).to_be_visible()
        expect(p.locator("#result")).to_contain_text("Equilibrium")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(SCREENSHOTS / f"{shot}-session-desktop-light.png"), full_page=True)
        assert p.js_errors == []
    finally:
        ctx.close()


def test_a_person_on_a_phone_in_dark_mode(browser, dash):
    ctx, p = new_page(browser, dash, viewport=PHONE, theme="dark", scale=2)
    try:
        start(p, game="price-quantity", seats=("boulware", "human"), seed="2")
        wait_turn(p, 2)
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"horizontal overflow: {width} px"
        p.fill("#you-offer-price", "70")
        p.fill("#you-offer-quantity", "110")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        p.locator("#you-panel").scroll_into_view_if_needed()
        p.screenshot(path=str(SCREENSHOTS / "person-at-the-table-phone-dark.png"),
                     full_page=True)
        p.get_by_role("button", name="Make this offer").click()
        wait_turn(p, 4)
        p.get_by_role("button", name="Walk away").click()
        p.wait_for_selector("#result .outcome")
        expect(p.locator("#result .outcome")).to_contain_text("walked away")
        expect(p.locator("#result .you-result")).to_contain_text("You (the retailer)")
        assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert p.js_errors == []
    finally:
        ctx.close()
