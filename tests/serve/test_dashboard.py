"""The web dashboard (serve/static, docs/dashboard.md) end to end, in headless Chromium.

Debian's ``chromium`` driven by Python ``playwright`` (no browser download) against a real
``eqx serve`` started by the shared ``server`` fixture (template phrasing): log in, start a
negotiation and see every move arrive and the result, bad input messages (client-side and the
server's 422), replay, analytics + export, a tiny training job to completion (it appears as a
policy), a head-to-head comparison, keyboard and labels, contrast in both themes, phone width,
and the screenshots in docs/screenshots/.

One browser page is shared by the module's tests, in file order (the training job is started
early and checked near the end, so it trains while the other tests run).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

pytest.importorskip("playwright.sync_api")

from dashboard_helpers import (  # noqa: E402 - after the importorskip
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    chromium_path,
    contrast,
    launch,
    login,
    start_negotiation,
    wait_result,
)
from playwright.sync_api import expect, sync_playwright  # noqa: E402

if chromium_path() is None:
    pytest.skip("Chromium is missing: apt-get install -y chromium (make test does it)",
                allow_module_level=True)

API = "/api/v1"
USER = ("dana", "dana-password")
TINY = {"total_timesteps": "4096", "num_envs": "64", "num_steps": "16", "hidden": "16"}


@pytest.fixture(scope="module")
def dash(server):
    server.add_user(*USER)
    server.token(*USER)
    return server


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, dash):
    ctx = browser.new_context(viewport=DESKTOP)
    p = ctx.new_page()
    p.set_default_timeout(30_000)
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.js_errors = errors
    yield p
    ctx.close()


def api_get(dash, path):
    r = httpx.get(dash.url + API + path, headers=dash.headers(USER[0]), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------------- serving
def test_page_and_assets_are_served_without_a_cdn(dash):
    r = httpx.get(dash.url + "/", timeout=30)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert "/static/app.js" in html and "/static/style.css" in html
    # No inline script (the page works under a script-src 'self' policy).
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script src="/static/theme.js">', '<script type="module" src="/static/app.js">']
    for asset in ("app.js", "charts.js", "theme.js", "style.css"):
        a = httpx.get(f"{dash.url}/static/{asset}", timeout=30)
        assert a.status_code == 200, asset
        assert "https://" not in a.text and "http://" not in a.text.replace(
            "http://www.w3.org/2000/svg", ""), f"{asset} references the network"
    assert httpx.get(dash.url + "/static/nope.js", timeout=30).status_code == 404


def test_session_list_endpoint_is_authenticated_validated_and_owner_only(dash):
    r = httpx.get(dash.url + API + "/simulations", timeout=30)
    assert r.status_code == 401
    r = httpx.get(dash.url + API + "/simulations?limit=0", headers=dash.headers(USER[0]),
                  timeout=30)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]
    bob = httpx.get(dash.url + API + "/simulations", headers=dash.headers("bob"), timeout=30)
    assert bob.status_code == 200
    mine = {s["session_id"] for s in api_get(dash, "/simulations?limit=500")}
    assert not mine & {s["session_id"] for s in bob.json()}


# ---------------------------------------------------------------------------------- login
def test_login_with_a_wrong_password_says_so(page, dash):
    page.goto(dash.url + "/")
    page.get_by_label("Username").fill(USER[0])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    expect(page.locator("#app-view")).to_be_hidden()


def test_login_keeps_the_token_for_the_session(page, dash):
    login(page, dash.url, *USER)
    expect(page.locator("#who")).to_have_text(f"Signed in as {USER[0]}")
    assert page.evaluate("sessionStorage.getItem('eqx-token')").count(".") == 2
    page.reload()
    expect(page.locator("#app-view")).to_be_visible()  # still logged in after a reload
    # The policy pickers offer the classic negotiators (the server's list, GET /meta, which the
    # page fetches after the reload: wait for it).
    expect(page.locator("#supplier_policy option[value='boulware']")).to_have_count(1)
    opts = page.eval_on_selector_all("#supplier_policy option", "os => os.map(o => o.value)")
    assert {"boulware", "conceder", "linear", "tit_for_tat", "midpoint", "random"} <= set(opts)
    negotiators = httpx.get(dash.url + API + "/meta", timeout=30).json()["negotiators"]
    assert [o for o in opts if o in negotiators] == negotiators


def test_start_a_tiny_training_job(page):
    """Started early so that it trains while the other tests run (checked at the end)."""
    page.get_by_role("tab", name="Training").click()
    page.fill("#hidden", "16, x")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#hidden-err")).to_have_text(
        "Hidden layers must be whole numbers from 1 to 4096, separated by commas (e.g. 64, 64).")
    # What only the server checks comes back as its 422 message.
    page.fill("#hidden", "16")
    page.fill("#total_timesteps", "100")  # fewer than one rollout (64 envs x 16 steps)
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#train-error")).to_contain_text("The server refused the training job")
    expect(page.locator("#total_timesteps-err")).to_contain_text("total_timesteps must be >=")
    expect(page.locator("#jobs li[data-job]")).to_have_count(0)
    for field, value in TINY.items():
        page.fill(f"#{field}", value)
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#jobs li[data-job]")).to_have_count(1)
    page.get_by_role("tab", name="Negotiate").click()


# ---------------------------------------------------------------------------------- negotiate
def test_negotiation_streams_every_move_and_the_result(page, dash):
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    start_negotiation(page, delay="0.25", seed="7")
    expect(page.locator("#typing")).to_be_visible()  # someone is typing before the first move
    outcome = wait_result(page)
    sid = page.get_attribute("#live", "data-session-id")
    t = api_get(dash, f"/simulation/{sid}")
    moves = t["messages"]
    items = page.locator("#chat li.move")
    expect(items).to_have_count(len(moves))
    seqs = page.eval_on_selector_all("#chat li.move", "ls => ls.map(l => +l.dataset.seq)")
    assert seqs == list(range(len(moves)))
    # Each message shows its agent, action, price, round and phraser.
    for i, m in enumerate(moves):
        meta = items.nth(i).locator(".meta").text_content()
        assert m["agent"] in meta and m["action"] in meta and f"round {m['round']}" in meta
        assert f"written by {m['phraser']}" in meta
        assert items.nth(i).locator(".text").inner_text() == m["message"]
    expect(page.locator("#typing")).to_be_hidden()
    expect(page.locator("#live-status")).to_have_text("completed")
    # The result panel: deal, price, rewards, nash distance, Pareto score, equilibrium.
    res = t["result"]
    assert res["deal_reached"] and outcome.startswith("Deal reached at $")
    assert f"{res['final_price']:,.2f}" in outcome
    assert page.inner_text('#result dd[data-key="Rounds"]') == str(res["total_rounds"])
    for key in ("Supplier reward", "Retailer reward", "Welfare efficiency",
                "Price of private information", "Nash distance (founding design)",
                "Pareto score (founding design)"):
        assert page.inner_text(f'#result dd[data-key="{key}"]') not in ("", "–")
    assert f"{res['equilibrium_price']:,.2f}" in page.inner_text(
        '#result dd[data-key="Equilibrium price"]')
    # The chart: one point per counter-offer, ZOPA band, midpoint, equilibrium and the deal.
    counters = sum(m["action"] == "COUNTER" for m in moves)
    assert page.get_attribute("#offers-chart", "data-points") == str(counters)
    for sel in (".zopa", ".mid", ".eq", ".deal"):
        expect(page.locator(f"#offers-chart {sel}")).to_have_count(1)
    legend = page.inner_text("#offers-legend")
    assert "ZOPA $5,000.00–$8,000.00" in legend and "midpoint $6,500.00" in legend
    assert page.js_errors == []
    # The token travels in the first frame, never in the URL (URLs are logged).
    assert sockets and all("token" not in u and dash.token(USER[0]) not in u for u in sockets)


@pytest.mark.parametrize("field,value,message", [
    ("#supplier_valuation", "0", "Supplier valuation must be from 0.01 and less than 10,000."),
    ("#retailer_valuation", "12000",
     "Retailer valuation must be from 0.01 and less than 10,000."),
    ("#max_rounds", "2.5", "Max rounds must be a whole number from 1 to 100."),
    ("#max_rounds", "", "Max rounds is required."),
    ("#move_delay_s", "9", "Delay per move must be from 0 to 5."),
    ("#seed", "-1", "Seed must be a whole number from 0 to 2,147,483,647."),
])
def test_bad_input_shows_a_clear_message(page, field, value, message):
    before = page.locator("#chat li.move").count()
    page.fill(field, value)
    page.get_by_role("button", name="Start negotiation").click()
    err_id = field[1:] + "-err"
    expect(page.locator(f"#{err_id}")).to_have_text(message)
    expect(page.locator("#sim-error")).to_contain_text(message)
    assert page.get_attribute(field, "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == field[1:]  # focus moves to the field
    assert page.locator("#chat li.move").count() == before  # nothing was started
    page.fill(field, {"#seed": "3", "#max_rounds": "10", "#move_delay_s": "0"}.get(
        field, "5000" if "supplier" in field else "8000"))


def test_server_field_error_is_shown_next_to_the_field(page, dash):
    """A retailer-only trained policy would be refused as supplier; here the server refuses a
    policy id the browser cannot know is unknown (injected as an option)."""
    page.evaluate("""() => { const s = document.getElementById('supplier_policy');
        s.add(new Option('no-such-policy', 'no-such-policy')); s.value = 'no-such-policy'; }""")
    page.get_by_role("button", name="Start negotiation").click()
    expect(page.locator("#sim-error")).to_contain_text("The server refused the request:")
    expect(page.locator("#sim-error")).to_contain_text("supplier_policy")
    expect(page.locator("#supplier_policy-err")).not_to_be_empty()
    page.evaluate("document.querySelector('#supplier_policy option[value=\"no-such-policy\"]')"
                  ".remove()")
    page.select_option("#supplier_policy", "boulware")


# ---------------------------------------------------------------------------------- replay
def test_replay_a_past_session_move_by_move(page, dash):
    sid = page.get_attribute("#live", "data-session-id")
    moves = api_get(dash, f"/simulation/{sid}")["messages"]
    page.get_by_role("tab", name="Sessions & analytics").click()
    row = page.locator(f'#sessions-table tr[data-session="{sid}"]')
    expect(row).to_be_visible()
    row.get_by_role("button", name="Replay").click()
    expect(page.locator("#panel-replay")).to_be_visible()
    expect(page.locator("#replay-counter")).to_have_text(f"0 / {len(moves)}")
    for i in range(1, len(moves) + 1):
        page.get_by_role("button", name="Next move").click()
        expect(page.locator("#replay-chat li.move")).to_have_count(i)
        assert page.locator("#replay-chat li.move").nth(i - 1).locator(".text").inner_text() \
            == moves[i - 1]["message"]
    expect(page.locator("#replay-result .outcome")).to_contain_text("Deal reached")
    page.get_by_role("button", name="Previous move").click()
    expect(page.locator("#replay-chat li.move")).to_have_count(len(moves) - 1)
    expect(page.locator("#replay-result .outcome")).to_have_count(0)
    page.get_by_role("button", name="First move").click()
    page.get_by_role("button", name="▶ Play").click()  # plays to the end by itself
    expect(page.locator("#replay-result .outcome")).to_be_visible(timeout=20_000)
    expect(page.locator("#replay-counter")).to_have_text(f"{len(moves)} / {len(moves)}")


# ---------------------------------------------------------------------------------- analytics
def test_analytics_charts_and_export(page, dash):
    page.get_by_role("tab", name="Negotiate").click()
    start_negotiation(page, sv="4000", rv="9000", seed="11", supplier="linear",
                      retailer="midpoint")
    wait_result(page)
    page.get_by_role("tab", name="Sessions & analytics").click()
    rows = page.locator("#sessions-table tbody tr[data-session]")
    expect(rows).to_have_count(2)
    expect(page.locator("#deal-rate-text")).to_contain_text("completed sessions")
    for chart in ("#chart-deal .bar", "#chart-rounds .bar", "#chart-split .pt", "#chart-eq .pt"):
        assert page.locator(chart).count() >= 1, chart
    # Nothing selected: a clear message.
    page.get_by_role("button", name="Export selected (CSV)").click()
    expect(page.locator("#export-status")).to_have_text("Select at least one session to export.")
    page.get_by_role("button", name="Select all").click()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export selected (CSV)").click()
    csv_text = open(dl.value.path()).read()
    assert csv_text.splitlines()[0].startswith("session_id,status,created_at")
    assert len(csv_text.strip().splitlines()) == 3
    expect(page.locator("#export-status")).to_contain_text("Exported 2 session(s) as CSV")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export selected (JSON)").click()
    doc = json.loads(open(dl.value.path()).read())
    assert len(doc["sessions"]) == 2 and all(s["result"] for s in doc["sessions"])


# ---------------------------------------------------------------------------------- compare
def test_head_to_head_comparison_with_confidence_intervals(page):
    page.get_by_role("tab", name="Compare").click()
    page.select_option("#cmp-a", "boulware")
    page.select_option("#cmp-b", "random")
    page.fill("#cmp-n", "5")
    page.get_by_role("button", name="Run comparison").click()
    expect(page.locator("#cmp-n-err")).to_have_text(
        "Episodes per pairing must be a whole number from 10 to 5,000.")
    page.fill("#cmp-n", "200")
    page.get_by_role("button", name="Run comparison").click()
    expect(page.locator("#cmp-progress")).to_contain_text("Done", timeout=90_000)
    rows = page.locator("#cmp-table tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).get_attribute("data-pairing") == "boulware|random"
    assert rows.nth(1).get_attribute("data-pairing") == "random|boulware"
    cells = rows.nth(0).locator("td").all_inner_texts()
    assert cells[2] == "200" and "%" in cells[3] and "[" in cells[3] and "±" in cells[5]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    theme = page.evaluate("document.documentElement.dataset.theme")
    page.screenshot(path=str(SCREENSHOTS / f"compare-desktop-{theme}.png"), full_page=True)


def test_tournament_endpoint(dash):
    h = dash.headers(USER[0])
    url = dash.url + API + "/tournament"
    assert httpx.post(url, json={"policy_a": "boulware", "policy_b": "conceder"},
                      timeout=30).status_code == 401
    # A well-formed name that is no policy is a 404 naming its field; malformed input a 422.
    for body, field, status in [({"policy_a": "nope", "policy_b": "conceder"}, "policy_a", 404),
                                ({"policy_a": "linear", "policy_b": "no such"}, "policy_b", 422),
                                ({"policy_a": "linear", "policy_b": "linear", "num_episodes": 9},
                                 "num_episodes", 422),
                                ({"policy_a": "linear", "policy_b": "linear", "extra": 1},
                                 "extra", 422)]:
        r = httpx.post(url, json=body, headers=h, timeout=30)
        assert r.status_code == status and r.json()["detail"][0]["loc"] == ["body", field], r.text
    r = httpx.post(url, json={"policy_a": "linear", "policy_b": "linear", "num_episodes": 50,
                              "seed": 4}, headers=h, timeout=120)
    assert r.status_code == 200, r.text
    (row,) = r.json()["pairings"]  # the same player twice: one pairing
    assert row["episodes"] == 50 and row["deal_rate"]["n"] == 50
    d = row["deal_rate"]
    assert 0 <= d["low"] <= d["mean"] <= d["high"] <= 1
    again = httpx.post(url, json={"policy_a": "linear", "policy_b": "linear",
                                  "num_episodes": 50, "seed": 4}, headers=h, timeout=120)
    assert again.json()["pairings"] == r.json()["pairings"]  # same seed, same result


# ---------------------------------------------------------------------------------- access
def test_keyboard_and_labels(page):
    page.get_by_role("tab", name="Negotiate").click()
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('input, select, button')]
        .filter(e => !e.closest('[hidden]') || true)
        .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label')
                       || (e.tagName === 'BUTTON' && e.textContent.trim())))
        .map(e => e.id || e.outerHTML.slice(0, 60))""")
    assert unlabeled == []
    tab = page.get_by_role("tab", name="Negotiate")
    tab.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Sessions & analytics")).to_be_focused()
    expect(page.locator("#panel-sessions")).to_be_visible()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Compare")).to_be_focused()
    page.keyboard.press("Home")
    expect(tab).to_have_attribute("aria-selected", "true")
    # The control panel works from the keyboard: tab into it, Enter submits.
    old = page.get_attribute("#live", "data-session-id")
    page.focus("#seed")
    page.keyboard.press("Enter")
    expect(page.locator("#live")).not_to_have_attribute("data-session-id", old)
    expect(page.locator("#live-status")).to_have_text("completed", timeout=30_000)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_contrast_meets_wcag_aa(page, theme):
    if page.evaluate("document.documentElement.dataset.theme") != theme:
        page.get_by_role("button", name="Dark mode" if theme == "dark" else "Light mode").click()
    assert page.evaluate("document.documentElement.dataset.theme") == theme
    pairs = page.evaluate("""() => {
        const cs = (e) => getComputedStyle(e);
        const bg = (e) => { for (; e; e = e.parentElement) {
            const c = cs(e).backgroundColor;
            if (c && !c.endsWith(', 0)') && c !== 'transparent') return c; }
          return 'rgb(255,255,255)'; };
        const sel = ['h1', '#controls-title', 'label[for=supplier_valuation]',
          '#supplier_valuation', '#start-btn', '[role=tab][aria-selected=true]',
          '[role=tab][aria-selected=false]',
          '#who', '#chat .meta', '#chat .text', '#result dt', '#result dd', '.legend li',
          '#sim-error', '#theme-toggle'];
        return sel.map(s => document.querySelector(s)).filter(Boolean)
          .map(e => [e.id || e.tagName, cs(e).color, bg(e)]); }""")
    assert len(pairs) >= 12
    page.evaluate("document.getElementById('sim-error').textContent = 'x'")
    err = page.evaluate("""() => { const e = document.getElementById('sim-error');
        return [getComputedStyle(e).color,
                getComputedStyle(e.closest('.card')).backgroundColor]; }""")
    page.evaluate("document.getElementById('sim-error').textContent = ''")
    for name, fg, bg in [*pairs, ("error", *err)]:
        assert contrast(fg, bg) >= 4.5, (theme, name, fg, bg, contrast(fg, bg))


# ---------------------------------------------------------------------------------- training
def test_training_job_finishes_and_appears_as_a_policy(page, dash):
    page.get_by_role("tab", name="Training").click()
    job = page.locator("#jobs li[data-job]").first
    expect(job).to_have_attribute("data-status", re.compile("^(completed|failed|interrupted)$"),
                                  timeout=240_000)
    jid = job.get_attribute("data-job")
    assert job.get_attribute("data-status") == "completed", (
        job.inner_text(), api_get(dash, f"/agent/jobs/{jid}"))
    expect(job).to_contain_text(f"Policy {jid} is ready")
    assert job.locator("progress").evaluate("p => p.value") == 1
    # Learning curves drew at least one update; the policy is listed and selectable.
    assert int(page.get_attribute("#curves-chart", "data-updates")) >= 1
    expect(page.locator(f'#policies-table tr[data-policy="{jid}"]')).to_be_visible()
    theme = page.evaluate("document.documentElement.dataset.theme")
    page.screenshot(path=str(SCREENSHOTS / f"training-desktop-{theme}.png"), full_page=True)
    job.get_by_role("button", name="Use it as supplier").click()
    assert page.input_value("#supplier_policy") == jid
    assert jid in page.eval_on_selector_all("#retailer_policy option",
                                            "os => os.map(o => o.value)")
    # It plays.
    page.select_option("#retailer_policy", "boulware")
    page.fill("#move_delay_s", "0")
    old = page.get_attribute("#live", "data-session-id")
    page.get_by_role("button", name="Start negotiation").click()
    expect(page.locator("#live")).not_to_have_attribute("data-session-id", old)
    expect(page.locator("#live-status")).to_have_text("completed", timeout=60_000)
    res = api_get(dash, f"/simulation/{page.get_attribute('#live', 'data-session-id')}")
    assert res["result"]["supplier_policy"] == jid
    assert page.js_errors == []


# ---------------------------------------------------------------------------------- screenshots
@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_screenshots_and_phone_layout(browser, dash, size, theme):
    viewport = DESKTOP if size == "desktop" else PHONE
    ctx = browser.new_context(viewport=viewport, color_scheme=theme,
                              device_scale_factor=1 if size == "desktop" else 2)
    p = ctx.new_page()
    try:
        login(p, dash.url, *USER)
        assert p.evaluate("document.documentElement.dataset.theme") == theme
        start_negotiation(p, seed="5", delay="0")
        wait_result(p)
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"horizontal overflow: {width} px"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(SCREENSHOTS / f"dashboard-{size}-{theme}.png"), full_page=True)
        if size == "desktop":
            p.get_by_role("tab", name="Sessions & analytics").click()
            expect(p.locator("#chart-eq .pt").first).to_be_visible()
            p.screenshot(path=str(SCREENSHOTS / f"analytics-{size}-{theme}.png"),
                         full_page=True)
    finally:
        ctx.close()
