// EquilibriumX dashboard: plain ES module, talks only to this server's API (/api/v1).
import { plot, legend, fmtNum } from "/static/charts.js";
import {
  HUMAN, buildSeats, drawTermsOffers, drawUtility, endTurn, fillGames, isPrice, onGameChange,
  readTableBody, renderHuman, renderTableResult, showMoveError, showProposal, showTurn, termsText,
  wireTurn,
} from "/static/table.js";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// ------------------------------------------------------------------ state
const state = {
  token: sessionStorage.getItem("eqx-token"),
  user: sessionStorage.getItem("eqx-user"),
  policies: [],
  sessions: [],
  live: null, // {sessionId, request, moves, result, ws}
  replay: null, // {transcript, pos, timer}
  jobs: {}, // job_id -> {status, history: [[update, metrics]]}
  meta: null, // GET /api/v1/meta: negotiators, the default game, the request fields' bounds
};

// ------------------------------------------------------------------ API helpers
class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(formatDetail(status, detail, retryAfter));
    this.status = status; this.detail = detail;
  }
}

function formatDetail(status, detail, retryAfter) {
  if (status === 429) return `Too many requests: try again in ${retryAfter || "a few"} s.`;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`).join("; ");
  }
  if (typeof detail === "string") return detail;
  return `Request failed (HTTP ${status}).`;
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path.startsWith("/") ? path : `${API}/${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "The server cannot be reached. Is it running?");
  }
  if (r.status === 401 && state.token) {
    logout("Your session has expired; please log in again.");
    throw new ApiError(401, "not authenticated");
  }
  if (!r.ok) {
    let detail = null;
    try { detail = (await r.json()).detail; } catch (e) { /* not JSON */ }
    throw new ApiError(r.status, detail, r.headers.get("Retry-After"));
  }
  return raw ? r : r.json();
}

// ------------------------------------------------------------------ theme
function setTheme(t) {
  document.documentElement.dataset.theme = t;
  localStorage.setItem("eqx-theme", t);
  const b = $("theme-toggle");
  b.setAttribute("aria-pressed", String(t === "dark"));
  b.textContent = t === "dark" ? "Light mode" : "Dark mode";
  redrawAll();
}

// ------------------------------------------------------------------ login
function showApp(loggedIn) {
  $("login-view").hidden = loggedIn;
  $("app-view").hidden = !loggedIn;
  $("logout").hidden = !loggedIn;
  $("who").textContent = loggedIn ? `Signed in as ${state.user}` : "";
}

function logout(message = "") {
  state.token = null; state.user = null;
  sessionStorage.removeItem("eqx-token"); sessionStorage.removeItem("eqx-user");
  if (state.live && state.live.ws) state.live.ws.close();
  showApp(false);
  $("login-error").textContent = message;
  $("login-user").focus();
}

// The Log out button revokes the token on the server (POST /auth/logout) before forgetting it,
// so a copy of it (another tab, a log) stops working too.
async function revokeAndLogout() {
  const token = state.token;
  if (token) {
    try {
      await fetch(`${API}/auth/logout`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    } catch (e) { /* the server is gone: the token expires on its own */ }
  }
  logout();
}

async function onLogin(ev) {
  ev.preventDefault();
  const username = $("login-user").value.trim(), password = $("login-pass").value;
  const err = $("login-error");
  if (!username || !password) { err.textContent = "Enter your username and password."; return; }
  $("login-submit").disabled = true;
  err.textContent = "";
  try {
    const r = await fetch(`${API}/auth/login`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username, password }) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      err.textContent = r.status === 401 ? "Wrong username or password."
        : formatDetail(r.status, data.detail, r.headers.get("Retry-After"));
      return;
    }
    state.token = data.access_token; state.user = username;
    sessionStorage.setItem("eqx-token", state.token); sessionStorage.setItem("eqx-user", username);
    $("login-pass").value = "";
    await enterApp();
  } catch (e) {
    err.textContent = "The server cannot be reached. Is it running?";
  } finally {
    $("login-submit").disabled = false;
  }
}

// ------------------------------------------------------------------ server metadata
let metaRequest = null;

// The negotiators, the default game and the field bounds, fetched once (the server's rules,
// so the form checks here say what the server would).
function loadMeta() {
  if (!metaRequest) {
    metaRequest = api("meta").then((m) => { state.meta = m; applyMeta(); return m; })
      .catch((e) => { metaRequest = null; throw e; });
  }
  return metaRequest;
}

// Bounds of a request field for numberField: limits[group][field] of the metadata.
function limit(group, field) {
  const b = state.meta.limits[group][field];
  return { min: b.min, max: b.max, minInclusive: b.min_inclusive, maxInclusive: b.max_inclusive, integer: b.integer };
}

function applyMeta() {
  for (const el of document.querySelectorAll("[data-range]")) {
    const [group, field] = el.dataset.range.split(".");
    const b = state.meta.limits[group][field];
    el.textContent = `${b.min}–${b.max}`;
  }
}

const maxPrice = () => state.meta.game.max_price;

async function enterApp() {
  try {
    await loadMeta();
  } catch (e) {
    logout(`The dashboard could not load the server's settings: ${e.message}`);
    return;
  }
  showApp(true);
  loadJobs();
  fillGames(state.meta);
  await loadPolicies().catch((e) => { $("sim-error").textContent = e.message; });
  onGameChange(state.meta, state.policies);
  $("supplier_valuation").focus();
}

// ------------------------------------------------------------------ tabs
const TABS = ["negotiate", "sessions", "replay", "training", "compare"];

function selectTab(name, focus = false) {
  for (const t of TABS) {
    const tab = $(`tab-${t}`), on = t === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${t}`).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (name === "sessions" || name === "replay") loadSessions().catch(() => {});
  if (name === "training") loadPolicies().catch(() => {});
  requestAnimationFrame(redrawAll);
}

function onTabKey(ev) {
  const i = TABS.indexOf(ev.target.id.replace("tab-", ""));
  let j = null;
  if (ev.key === "ArrowRight") j = (i + 1) % TABS.length;
  else if (ev.key === "ArrowLeft") j = (i + TABS.length - 1) % TABS.length;
  else if (ev.key === "Home") j = 0;
  else if (ev.key === "End") j = TABS.length - 1;
  if (j !== null) { ev.preventDefault(); selectTab(TABS[j], true); }
}

// ------------------------------------------------------------------ policies
async function loadPolicies() {
  state.policies = await api("agent/policies");
  for (const sel of document.querySelectorAll(".policy-select")) {
    const keep = sel.value;
    sel.innerHTML = "";
    if (!sel.hasAttribute("data-no-default")) sel.add(new Option("server default", ""));
    const gT = document.createElement("optgroup"); gT.label = "Trained policies";
    for (const p of state.policies) gT.appendChild(new Option(`${p.agent_id} (${p.roles.join(" & ")})`, p.agent_id));
    if (state.policies.length) sel.appendChild(gT);
    const gN = document.createElement("optgroup"); gN.label = "Classic negotiators";
    for (const n of state.meta.negotiators) gN.appendChild(new Option(n, n));
    sel.appendChild(gN);
    if (sel.classList.contains("seat-choice")) sel.add(new Option("you (play this seat)", HUMAN));
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }
  if (!$("seats").hidden) buildSeats(state.meta, state.policies);
  if (!$("cmp-b").dataset.init) {
    $("cmp-a").value = state.meta.fallback_policies.supplier; $("cmp-b").value = state.meta.fallback_policies.retailer;
    $("cmp-b").dataset.init = "1";
  }
  renderPolicies();
}

function renderPolicies() {
  const tb = $("policies-table").tBodies[0];
  tb.innerHTML = "";
  if (!state.policies.length) {
    tb.innerHTML = '<tr><td colspan="6" class="muted">No trained policy yet: start a training job above.</td></tr>';
    return;
  }
  for (const p of state.policies) {
    const tr = tb.insertRow();
    tr.dataset.policy = p.agent_id;
    const dr = p.performance_metrics && p.performance_metrics.deal_rate;
    for (const v of [p.agent_id, p.roles.join(", "), p.source, p.trained_at ? new Date(p.trained_at).toLocaleString() : "–",
      dr === undefined || dr === null ? "–" : `${(100 * dr).toFixed(0)}%`]) tr.insertCell().textContent = v;
    const b = document.createElement("button");
    b.type = "button"; b.textContent = "Download"; b.setAttribute("aria-label", `Download policy ${p.agent_id}`);
    b.addEventListener("click", () => download(p.download_url, `${p.agent_id}.eqx`).catch((e) => alert(e.message)));
    tr.insertCell().appendChild(b);
  }
}

async function download(url, filename) {
  const r = await api(url, { raw: true });
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = filename;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  return blob;
}

// ------------------------------------------------------------------ validation
function setFieldError(id, msg) {
  const input = $(id), p = $(`${id}-err`);
  if (p) p.textContent = msg || "";
  if (input) { if (msg) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid"); }
}

function numberField(id, { label, min, max, minInclusive = true, maxInclusive = true, integer = false, optional = false }, errors) {
  const raw = $(id).value.trim();
  if (raw === "") {
    if (optional) return undefined;
    errors[id] = `${label} is required.`; return undefined;
  }
  const v = Number(raw);
  const range = `${minInclusive ? "from" : "greater than"} ${fmtNum(min)} ${maxInclusive ? "to" : "and less than"} ${fmtNum(max)}`;
  if (!Number.isFinite(v)) { errors[id] = `${label} must be a number.`; return undefined; }
  if (integer && !Number.isInteger(v)) { errors[id] = `${label} must be a whole number ${range}.`; return undefined; }
  if ((minInclusive ? v < min : v <= min) || (maxInclusive ? v > max : v >= max)) {
    errors[id] = `${label} must be ${integer ? "a whole number " : ""}${range}.`; return undefined;
  }
  return v;
}

function showErrors(fieldIds, errors, summaryEl) {
  for (const id of fieldIds) setFieldError(id, errors[id]);
  const n = Object.keys(errors).length;
  summaryEl.textContent = n ? `Please fix ${n === 1 ? "the highlighted field" : `the ${n} highlighted fields`}: ${Object.values(errors).join(" ")}` : "";
  if (n) { const first = fieldIds.find((id) => errors[id]); if (first) $(first).focus(); }
  return n === 0;
}

// 422: a field is invalid; 404 with the same body: a field names a policy that does not exist.
function isFieldError(e) { return (e.status === 422 || e.status === 404) && Array.isArray(e.detail); }

function serverErrors(e, fieldIds, summaryEl) {
  const errors = {};
  if (isFieldError(e)) {
    for (const d of e.detail) {
      const f = (d.loc || [])[1];
      if (fieldIds.includes(f)) errors[f] = `${d.msg}`;
    }
  }
  for (const id of fieldIds) setFieldError(id, errors[id]);
  summaryEl.textContent = isFieldError(e) ? `The server refused the request: ${e.message}` : e.message;
}

// ------------------------------------------------------------------ negotiation
const SIM_FIELDS = ["supplier_valuation", "retailer_valuation", "max_rounds", "move_delay_s", "seed", "supplier_policy", "retailer_policy", "scenario", "policies", "settings"];

function readSimForm() {
  const errors = {};
  if (!isPrice($("game").value)) {
    const common = {
      max_rounds: numberField("max_rounds", { label: "Max rounds", ...limit("simulation", "max_rounds"), optional: true }, errors),
      move_delay_s: numberField("move_delay_s", { label: "Delay per move", ...limit("simulation", "move_delay_s") }, errors),
      seed: numberField("seed", { label: "Seed", ...limit("simulation", "seed"), optional: true }, errors),
    };
    return { body: readTableBody(common), errors };
  }
  const body = {
    supplier_valuation: numberField("supplier_valuation", { label: "Supplier valuation", ...limit("simulation", "supplier_valuation") }, errors),
    retailer_valuation: numberField("retailer_valuation", { label: "Retailer valuation", ...limit("simulation", "retailer_valuation") }, errors),
    max_rounds: numberField("max_rounds", { label: "Max rounds", ...limit("simulation", "max_rounds") }, errors),
    move_delay_s: numberField("move_delay_s", { label: "Delay per move", ...limit("simulation", "move_delay_s") }, errors),
    seed: numberField("seed", { label: "Seed", ...limit("simulation", "seed"), optional: true }, errors),
    supplier_style: $("supplier_style").value,
    retailer_style: $("retailer_style").value,
  };
  for (const side of ["supplier_policy", "retailer_policy"]) if ($(side).value) body[side] = $(side).value;
  if (body.seed === undefined) delete body.seed;
  return { body, errors };
}

async function onStart(ev) {
  ev.preventDefault();
  const { body, errors } = readSimForm();
  if (!showErrors(SIM_FIELDS, errors, $("sim-error"))) return;
  const btn = $("start-btn");
  btn.disabled = true;
  try {
    const r = await api("simulation/start", { method: "POST", body });
    startLive(r, body);
  } catch (e) {
    serverErrors(e, SIM_FIELDS, $("sim-error"));
  } finally {
    btn.disabled = false;
  }
}

function startLive(resp, request) {
  if (state.live && state.live.ws) { state.live.closing = true; state.live.ws.close(); }
  endTurn();
  const live = { sessionId: resp.session_id, request: { ...request, supplier_policy: resp.supplier_policy, retailer_policy: resp.retailer_policy }, moves: [], result: null, ended: false };
  live.agents = isPrice(request.game) ? ["supplier", "retailer"] : [...document.querySelectorAll(".seat-policy")].map((s) => s.dataset.agent);
  $("utility-block").hidden = true;
  state.live = live;
  $("chat").innerHTML = ""; $("result").innerHTML = "";
  $("live").dataset.sessionId = resp.session_id;
  setStatus("running");
  setTyping(live.agents[0]);
  drawOffers($("offers-chart"), $("offers-legend"), live.request, live.moves, null, live.agents);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  // The token goes in the first frame, never in the URL (URLs end up in logs). The frame is a
  // config frame without fields: authenticate, and start with the configuration just posted.
  const ws = new WebSocket(`${proto}://${location.host}${resp.websocket_url}`);
  live.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "config", token: state.token }));
  ws.onmessage = (m) => {
    if (state.live !== live) return;
    const msg = JSON.parse(m.data);
    if (msg.type === "MOVE") {
      live.moves.push(msg);
      endTurn();
      $("chat").appendChild(moveItem(msg));
      $("chat").scrollTop = $("chat").scrollHeight;
      const next = live.agents[(msg.seq + 1) % live.agents.length];
      setTyping(msg.done || (live.moves.length >= (live.request.max_rounds || 1e9)) ? null : next);
      drawOffers($("offers-chart"), $("offers-legend"), live.request, live.moves, null, live.agents);
    } else if (msg.type === "YOUR_TURN") {
      setTyping(null); setStatus("your move");
      showTurn(msg);
    } else if (msg.type === "PROPOSED_MOVE") {
      showProposal(msg);
    } else if (msg.type === "ERROR") {
      showMoveError(msg);
    } else if (msg.type === "SIMULATION_COMPLETE") {
      live.result = msg; live.ended = true;
      endTurn(); setTyping(null); setStatus("completed");
      drawOffers($("offers-chart"), $("offers-legend"), live.request, live.moves, msg, live.agents);
      drawUtility($("utility-block"), $("utility-chart"), $("utility-legend"), live.request, live.moves, msg);
      renderResult($("result"), msg, live.request);
    } else if (msg.type === "SIMULATION_FAILED" || msg.type === "SIMULATION_INTERRUPTED") {
      live.ended = true; setTyping(null); endTurn();
      setStatus(msg.type === "SIMULATION_FAILED" ? "failed" : "interrupted");
      $("result").innerHTML = "";
      const p = document.createElement("p"); p.className = "error"; p.setAttribute("role", "alert");
      p.textContent = `The session ${msg.type === "SIMULATION_FAILED" ? "failed" : "was interrupted"}: ${msg.error || "no detail"}`;
      $("result").appendChild(p);
    }
  };
  ws.onclose = (ev) => {
    if (state.live !== live || live.ended || live.closing) return;
    setTyping(null); setStatus("disconnected");
    const reasons = { 1008: "the server refused the connection", 1012: "the server restarted", 1013: "rate limited; try again shortly", 4404: "session not found" };
    $("result").innerHTML = "";
    const p = document.createElement("p"); p.className = "error"; p.setAttribute("role", "alert");
    const why = ev.reason || reasons[ev.code];
    p.textContent = `The live stream closed early (${ev.code}${why ? `: ${why}` : ""}). The session can still be replayed.`;
    $("result").appendChild(p);
  };
}

function setStatus(s) { const b = $("live-status"); b.textContent = s; b.dataset.status = s; }

function setTyping(agent) {
  const t = $("typing");
  t.hidden = !agent;
  $("typing-text").textContent = agent ? `${agent.charAt(0).toUpperCase()}${agent.slice(1)} is typing…` : "";
}

function money(v) { return v === null || v === undefined ? "–" : `$${Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`; }

function moveItem(m) {
  const li = document.createElement("li");
  const side = ["supplier", "retailer"].includes(m.agent) ? m.agent : "other";
  li.className = `move ${side}${m.human ? " you" : ""}`;
  li.dataset.seq = m.seq; li.dataset.action = m.action; li.dataset.round = m.round;
  const meta = document.createElement("div"); meta.className = "meta";
  const terms = m.game && m.game !== "price" ? termsText(m.offer) : (m.price === null ? "no price" : money(m.price));
  const by = m.human ? `you${m.via === "text" ? " (in your words)" : m.deadline_expired ? " (time ran out)" : ""}` : `written by ${m.phraser}${m.fallback_reason ? ` (fallback: ${m.fallback_reason})` : ""}`;
  const parts = [["who", m.agent], ["act", m.action], ["price", terms],
    ["round", `round ${m.round}`], ["phraser", by]];
  for (const [cls, text] of parts) { const s = document.createElement("span"); s.className = cls; s.textContent = text; meta.appendChild(s); }
  const p = document.createElement("p"); p.className = "text"; p.textContent = m.message;
  li.append(meta, p);
  return li;
}

function drawOffers(svg, legendEl, req, moves, result, agents) {
  if (req && !isPrice(req.game)) { drawTermsOffers(svg, legendEl, req, moves, agents); return; }
  if (!req) { plot(svg, { x: [1, 10], y: [0, maxPrice()], xInt: true, xLabel: "round", yLabel: "price ($)" }); return; }
  const sv = req.supplier_valuation, rv = req.retailer_valuation, mid = (sv + rv) / 2;
  const eq = result ? result.equilibrium_price : null;
  const pts = { supplier: [], retailer: [] };
  let deal = null;
  for (const m of moves) {
    if (m.action === "COUNTER" && m.price !== null) pts[m.agent].push([m.round, m.price]);
    if (m.action === "ACCEPT" && m.price !== null) deal = [m.round, m.price, `deal at ${money(m.price)}`];
  }
  const ys = [sv, rv, mid, ...pts.supplier.map((p) => p[1]), ...pts.retailer.map((p) => p[1])];
  if (eq !== null && eq !== undefined) ys.push(eq);
  const lo = Math.min(...ys), hi = Math.max(...ys), pad = Math.max(50, (hi - lo) * 0.08);
  const lastRound = Math.max(req.max_rounds || 1, ...moves.map((m) => m.round));
  plot(svg, {
    x: [1, Math.max(2, lastRound)], y: [Math.max(0, lo - pad), hi + pad], xInt: true,
    xLabel: "round", yLabel: "price ($)",
    bands: sv < rv ? [{ y0: sv, y1: rv, cls: "zopa" }] : [],
    hlines: [{ y: mid, cls: "mid", label: "midpoint" }, { y: eq, cls: "eq", label: "equilibrium" }],
    lines: [{ pts: pts.supplier, cls: "s-line", dotCls: "s-dot" }, { pts: pts.retailer, cls: "r-line", dotCls: "r-dot" }],
    points: deal ? [{ pts: [deal], cls: "deal", r: 7 }] : [],
  });
  svg.dataset.points = String(pts.supplier.length + pts.retailer.length);
  legend(legendEl, [["supplier offers", css("--supplier")], ["retailer offers", css("--retailer"), true],
    [`ZOPA ${sv < rv ? `${money(sv)}–${money(rv)}` : "(none: no agreement possible)"}`, css("--ok")],
    [`midpoint ${money(mid)}`, css("--mid"), true],
    [`equilibrium ${eq === null || eq === undefined ? "(with the result)" : money(eq)}`, css("--eq"), true],
    ...(deal ? [[`deal ${money(deal[1])}`, css("--ok")]] : [])]);
}

function renderResult(div, r, req) {
  if (r && r.game && r.game !== "price") { renderTableResult(div, r); return; }
  div.innerHTML = "";
  const h = document.createElement("p"); h.className = "outcome"; h.id = div.id + "-outcome";
  const ends = { deal: "Deal reached", walk_away: "No deal: an agent walked away", timeout: "No deal: out of rounds", none: "No deal" };
  h.textContent = r.deal_reached ? `Deal reached at ${money(r.final_price)}` : (ends[r.end] || "No deal");
  div.appendChild(h);
  const dl = document.createElement("dl");
  const rows = [
    ["Final price", money(r.final_price)], ["Rounds", r.total_rounds],
    ["Supplier reward", fmtNum(r.rewards && r.rewards.supplier)], ["Retailer reward", fmtNum(r.rewards && r.rewards.retailer)],
    ["Welfare efficiency", fmtNum(r.welfare_efficiency)],
    ["Price of private information", r.price_of_private_information ? `supplier ${fmtNum(r.price_of_private_information.supplier)} / retailer ${fmtNum(r.price_of_private_information.retailer)}` : "–"],
    ["Nash distance (founding design)", fmtNum(r.nash_distance)], ["Pareto score (founding design)", fmtNum(r.pareto_efficiency)],
    ["Equilibrium price", money(r.equilibrium_price)], ["Equilibrium round", r.equilibrium_round ?? "–"],
    ["Players", `${r.supplier_policy} vs ${r.retailer_policy}`], ["Seed", r.seed],
  ];
  if (req) rows.splice(2, 0, ["Midpoint", money((req.supplier_valuation + req.retailer_valuation) / 2)]);
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v; dd.dataset.key = k;
    dl.append(dt, dd);
  }
  div.appendChild(dl);
  renderHuman(div, r);
}

// ------------------------------------------------------------------ sessions, analytics, export
async function loadSessions() {
  state.sessions = await api("simulations?limit=200");
  renderSessions(); renderAnalytics(); fillReplaySelect();
}

function sessionLabel(s) {
  return `${new Date(s.created_at).toLocaleTimeString()} · ${s.supplier_policy} vs ${s.retailer_policy} · ${s.status}${s.deal_reached ? ` · ${money(s.final_price)}` : ""}`;
}

function renderSessions() {
  const tb = $("sessions-table").tBodies[0];
  tb.innerHTML = "";
  if (!state.sessions.length) { tb.innerHTML = '<tr><td colspan="9" class="muted">No session yet: start one on the Negotiate tab.</td></tr>'; return; }
  for (const s of state.sessions) {
    const tr = tb.insertRow(); tr.dataset.session = s.session_id;
    const cb = document.createElement("input"); cb.type = "checkbox"; cb.className = "sel"; cb.value = s.session_id;
    cb.setAttribute("aria-label", `Select session ${s.session_id.slice(0, 8)} for export`);
    tr.insertCell().appendChild(cb);
    for (const v of [new Date(s.created_at).toLocaleString(), `${s.game && s.game !== "price" ? `${s.game}${s.scenario ? ` (${s.scenario})` : ""}: ` : ""}${s.supplier_policy} vs ${s.retailer_policy}`,
      `${money(s.supplier_valuation)} / ${money(s.retailer_valuation)}`, s.status,
      s.deal_reached === null ? "–" : s.deal_reached ? "yes" : "no", money(s.final_price), s.total_rounds ?? "–"]) tr.insertCell().textContent = v;
    const b = document.createElement("button"); b.type = "button"; b.textContent = "Replay";
    b.setAttribute("aria-label", `Replay session ${s.session_id.slice(0, 8)}`);
    b.addEventListener("click", () => { selectTab("replay"); $("replay-select").value = s.session_id; loadReplay(s.session_id); });
    tr.insertCell().appendChild(b);
  }
}

function renderAnalytics() {
  const done = state.sessions.filter((s) => s.status === "completed");
  const deals = done.filter((s) => s.deal_reached);
  const rate = done.length ? deals.length / done.length : null;
  $("deal-rate-text").textContent = done.length ? `${deals.length} deals in ${done.length} completed sessions (${(100 * rate).toFixed(0)}%).` : "No completed session yet.";
  plot($("chart-deal"), { x: [0, 3], y: [0, 1], yLabel: "share of sessions",
    bars: [{ x: 1, y: rate || 0, w: 0.8, cls: "bar", label: `deal ${deals.length}` }, { x: 2, y: done.length ? 1 - rate : 0, w: 0.8, cls: "bar2", label: `no deal ${done.length - deals.length}` }],
    xLabels: { 1: "deal", 2: "no deal" }, xInt: true });
  const byRounds = {};
  for (const s of deals) byRounds[s.total_rounds] = (byRounds[s.total_rounds] || 0) + 1;
  const maxR = Math.max(2, ...deals.map((s) => s.total_rounds));
  plot($("chart-rounds"), { x: [0, maxR + 1], y: [0, Math.max(1, ...Object.values(byRounds))], xInt: true, xLabel: "rounds to deal", yLabel: "sessions",
    bars: Object.entries(byRounds).map(([r, n]) => ({ x: +r, y: n, w: 0.8, label: `${n} deal(s) in ${r} rounds` })) });
  const split = deals.filter((s) => s.retailer_valuation > s.supplier_valuation)
    .map((s, i) => [i + 1, (s.final_price - s.supplier_valuation) / (s.retailer_valuation - s.supplier_valuation), `supplier share ${fmtNum((s.final_price - s.supplier_valuation) / (s.retailer_valuation - s.supplier_valuation))}`]);
  plot($("chart-split"), { x: [0, Math.max(2, split.length + 1)], y: [0, 1], xInt: true, xLabel: "deal (oldest → newest)", yLabel: "supplier share of surplus",
    hlines: [{ y: 0.5, cls: "mid" }], points: [{ pts: split.reverse().map((p, i) => [i + 1, p[1], p[2]]), cls: "pt" }] });
  const eqPts = deals.filter((s) => s.equilibrium_price !== null).map((s) => [s.equilibrium_price, s.final_price, `equilibrium ${money(s.equilibrium_price)}, price ${money(s.final_price)}`]);
  const vals = eqPts.flatMap((p) => [p[0], p[1]]);
  const lo = vals.length ? Math.min(...vals) * 0.95 : 0, hi = vals.length ? Math.max(...vals) * 1.05 : maxPrice();
  plot($("chart-eq"), { x: [lo, hi], y: [lo, hi], xLabel: "equilibrium price ($) · dotted: price = equilibrium", yLabel: "deal price ($)", diag: "eq", points: [{ pts: eqPts, cls: "pt" }] });
}

async function exportSelected(format) {
  const ids = [...document.querySelectorAll("#sessions-table .sel:checked")].map((c) => c.value);
  const st = $("export-status");
  if (!ids.length) { st.textContent = "Select at least one session to export."; st.className = "error"; return; }
  st.className = "muted"; st.textContent = "Exporting…";
  try {
    const r = await api("metrics/export", { method: "POST", body: { session_ids: ids, format } });
    await download(r.download_url, `eqx-sessions-${r.export_id.slice(0, 8)}.${format}`);
    st.textContent = `Exported ${r.sessions} session(s) as ${format.toUpperCase()} (link valid until ${new Date(r.expires_at).toLocaleTimeString()}).`;
    st.dataset.exportId = r.export_id;
  } catch (e) { st.className = "error"; st.textContent = e.message; }
}

// ------------------------------------------------------------------ replay
function fillReplaySelect() {
  const sel = $("replay-select"), keep = sel.value;
  sel.innerHTML = "";
  for (const s of state.sessions) sel.add(new Option(sessionLabel(s), s.session_id));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

async function loadReplay(id) {
  stopReplay();
  $("replay-error").textContent = "";
  if (!id) { $("replay-error").textContent = "Choose a session to replay."; return; }
  try {
    const t = await api(`simulation/${encodeURIComponent(id)}`);
    state.replay = { transcript: t, pos: 0, timer: null };
    $("replay-pos").max = t.messages.length;
    $("replay-chart").dataset.sessionId = id;
    showReplay(0);
  } catch (e) { $("replay-error").textContent = e.message; }
}

function showReplay(pos) {
  const R = state.replay; if (!R) return;
  const msgs = R.transcript.messages.filter((m) => m.type === "MOVE");
  R.pos = Math.max(0, Math.min(msgs.length, pos));
  const chat = $("replay-chat"); chat.innerHTML = "";
  for (const m of msgs.slice(0, R.pos)) chat.appendChild(moveItem(m));
  chat.scrollTop = chat.scrollHeight;
  $("replay-pos").value = R.pos;
  $("replay-counter").textContent = `${R.pos} / ${msgs.length}`;
  const atEnd = R.pos === msgs.length;
  const result = atEnd ? R.transcript.result : null;
  const agents = R.transcript.game && R.transcript.game.agents ? R.transcript.game.agents : ["supplier", "retailer"];
  drawOffers($("replay-chart"), $("replay-legend"), R.transcript.request, msgs.slice(0, R.pos), result, agents);
  drawUtility($("replay-utility-block"), $("replay-utility-chart"), $("replay-utility-legend"), R.transcript.request, msgs, result);
  const div = $("replay-result"); div.innerHTML = "";
  if (atEnd && result) renderResult(div, result, R.transcript.request);
  else if (atEnd && R.transcript.status !== "completed") div.textContent = `Session ${R.transcript.status}${R.transcript.error ? `: ${R.transcript.error}` : ""}.`;
}

function stopReplay() {
  if (state.replay && state.replay.timer) { clearInterval(state.replay.timer); state.replay.timer = null; }
  $("replay-play").textContent = "▶ Play";
}

function togglePlay() {
  const R = state.replay; if (!R) return;
  if (R.timer) { stopReplay(); return; }
  if (R.pos >= R.transcript.messages.length) showReplay(0);
  $("replay-play").textContent = "⏸ Pause";
  R.timer = setInterval(() => {
    if (R.pos >= R.transcript.messages.length) { stopReplay(); return; }
    showReplay(R.pos + 1);
  }, 600);
}

// ------------------------------------------------------------------ training
const TRAIN_FIELDS = ["total_timesteps", "num_envs", "num_steps", "hidden", "lr"];
const jobsKey = () => `eqx-jobs-${state.user}`;

function loadJobs() {
  state.jobs = {};
  for (const id of JSON.parse(localStorage.getItem(jobsKey()) || "[]")) state.jobs[id] = { status: "?", history: [] };
  renderJobs(); pollJobs();
}

async function onTrain(ev) {
  ev.preventDefault();
  const errors = {};
  const cfg = {
    total_timesteps: numberField("total_timesteps", { label: "Total timesteps", ...limit("training", "total_timesteps") }, errors),
    num_envs: numberField("num_envs", { label: "Parallel environments", min: 1, max: 65536, integer: true }, errors),
    num_steps: numberField("num_steps", { label: "Steps per update", min: 1, max: 4096, integer: true }, errors),
  };
  const lr = numberField("lr", { label: "Learning rate", min: 0, max: 1, minInclusive: false, optional: true }, errors);
  if (lr !== undefined) cfg.lr = lr;
  const hidden = $("hidden").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (!hidden.length || hidden.some((h) => !/^\d+$/.test(h) || +h < 1 || +h > 4096)) errors.hidden = "Hidden layers must be whole numbers from 1 to 4096, separated by commas (e.g. 64, 64).";
  else cfg.hidden = hidden.map(Number);
  if (!showErrors(TRAIN_FIELDS, errors, $("train-error"))) return;
  $("train-btn").disabled = true;
  try {
    const r = await api("agent/train", { method: "POST", body: { agent_type: $("agent_type").value, algorithm: "ppo", training_config: cfg } });
    state.jobs[r.job_id] = { status: "queued", history: [], estimate: r.estimated_duration_minutes };
    localStorage.setItem(jobsKey(), JSON.stringify(Object.keys(state.jobs)));
    renderJobs(); pollJobs();
  } catch (e) {
    serverErrors(e, TRAIN_FIELDS, $("train-error"));
    if (e.status === 422) {
      $("train-error").textContent = `The server refused the training job: ${e.message}`;
      // training_config errors name the PPOConfig field first ("lr must be > 0, got -1").
      for (const d of Array.isArray(e.detail) ? e.detail : []) {
        const f = String(d.msg || "").split(/\s/)[0];
        if ((d.loc || [])[1] === "training_config" && TRAIN_FIELDS.includes(f)) setFieldError(f, d.msg);
      }
    }
  } finally { $("train-btn").disabled = false; }
}

let polling = false;
async function pollJobs() {
  if (polling || !state.token) return;
  polling = true;
  try {
    while (state.token) {
      const active = Object.entries(state.jobs).filter(([, j]) => !["completed", "failed", "interrupted", "gone"].includes(j.status));
      if (!active.length) break;
      for (const [id, j] of active) {
        try {
          const st = await api(`agent/jobs/${id}`);
          const was = j.status;
          Object.assign(j, { status: st.status, progress: st.progress, updates: st.updates_done, total: st.total_updates, policy: st.policy_id, error: st.error });
          if (st.last_metrics && !j.history.some((h) => h[0] === st.updates_done)) j.history.push([st.updates_done, st.last_metrics]);
          if (st.status === "completed" && was !== "completed") await loadPolicies();
        } catch (e) { if (e.status === 404) j.status = "gone"; }
      }
      renderJobs();
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally { polling = false; }
}

function renderJobs() {
  const ul = $("jobs"); ul.innerHTML = "";
  const ids = Object.keys(state.jobs);
  if (!ids.length) { ul.innerHTML = '<li class="muted">No job started from this browser yet.</li>'; }
  for (const id of ids.slice().reverse()) {
    const j = state.jobs[id];
    const li = document.createElement("li"); li.dataset.job = id; li.dataset.status = j.status;
    const head = document.createElement("div");
    head.textContent = `Job ${id.slice(0, 8)}: ${j.status}${j.total ? ` (update ${j.updates}/${j.total})` : ""}${j.error ? ` – ${j.error}` : ""}`;
    const pr = document.createElement("progress"); pr.max = 1; pr.value = j.progress || 0;
    pr.setAttribute("aria-label", `Progress of job ${id.slice(0, 8)}`);
    li.append(head, pr);
    if (j.policy) {
      const p = document.createElement("p");
      p.textContent = `Policy ${j.policy} is ready. `;
      const b = document.createElement("button"); b.type = "button"; b.textContent = "Use it as supplier";
      b.addEventListener("click", () => { $("supplier_policy").value = j.policy; selectTab("negotiate"); $("supplier_policy").focus(); });
      p.appendChild(b); li.appendChild(p);
    }
    ul.appendChild(li);
  }
  drawCurves();
}

function drawCurves() {
  const ids = Object.keys(state.jobs).filter((id) => state.jobs[id].history.length);
  const svg = $("curves-chart");
  if (!ids.length) { plot(svg, { x: [0, 4], y: [0, 1], xInt: true, xLabel: "PPO update", yLabel: "rate / score" }); legend($("curves-legend"), []); return; }
  const j = state.jobs[ids[ids.length - 1]];
  const h = j.history.slice().sort((a, b) => a[0] - b[0]);
  const series = [["deal_rate", "l1", "--primary"], ["pareto_score", "l2", "--supplier"], ["nash_distance", "l3", "--eq"]]
    .filter(([k]) => h.some(([, m]) => typeof m[k] === "number"));
  const all = series.flatMap(([k]) => h.map(([, m]) => m[k]).filter((v) => typeof v === "number"));
  plot(svg, { x: [0, Math.max(1, j.total || h[h.length - 1][0])], y: [0, Math.max(1, ...all)], xInt: true, xLabel: "PPO update", yLabel: "rate / score",
    lines: series.map(([k, cls]) => ({ pts: h.filter(([, m]) => typeof m[k] === "number").map(([u, m]) => [u, m[k]]), cls, dotCls: "pt" })) });
  svg.dataset.updates = String(h.length);
  legend($("curves-legend"), series.map(([k, , c], i) => [k.replace("_", " "), css(c), i > 0]));
}

// ------------------------------------------------------------------ compare (head to head)
const CMP_FIELDS = ["cmp-a", "cmp-b", "cmp-n", "cmp-rounds", "cmp-seed"];

function fmtCI(c, f = fmtNum) {
  if (!c || c.mean === null) return "–";
  return `${f(c.mean)} ± ${f((c.high - c.low) / 2)}`;
}

async function onCompare(ev) {
  ev.preventDefault();
  const errors = {};
  const n = numberField("cmp-n", { label: "Episodes per pairing", ...limit("tournament", "num_episodes") }, errors);
  const rounds = numberField("cmp-rounds", { label: "Max rounds", ...limit("tournament", "max_rounds") }, errors);
  const seed = numberField("cmp-seed", { label: "Seed", ...limit("tournament", "seed") }, errors);
  if (!showErrors(CMP_FIELDS, errors, $("cmp-error"))) return;
  $("cmp-btn").disabled = true;
  $("cmp-progress").textContent = "Playing… (the first comparison of a pair compiles for a few seconds)";
  const tb = $("cmp-table").tBodies[0]; tb.innerHTML = "";
  try {
    const r = await api("tournament", { method: "POST", body: {
      policy_a: $("cmp-a").value, policy_b: $("cmp-b").value, num_episodes: n, max_rounds: rounds,
      seed, deterministic: $("cmp-det").checked } });
    for (const p of r.pairings) {
      const tr = tb.insertRow(); tr.dataset.pairing = `${p.supplier}|${p.retailer}`;
      if (p.skipped) {
        tr.insertCell().textContent = p.supplier; tr.insertCell().textContent = p.retailer;
        const td = tr.insertCell(); td.colSpan = 8; td.textContent = `skipped: ${p.skipped}`;
        continue;
      }
      const d = p.deal_rate;
      for (const v of [p.supplier, p.retailer, p.episodes,
        d.mean === null ? "–" : `${(100 * d.mean).toFixed(1)}% [${(100 * d.low).toFixed(1)}–${(100 * d.high).toFixed(1)}%]`,
        fmtCI(p.price, (v) => money(v)), fmtCI(p.supplier_reward), fmtCI(p.retailer_reward),
        fmtCI(p.rounds), fmtCI(p.nash_distance), fmtCI(p.pareto_score)]) tr.insertCell().textContent = v;
    }
    $("cmp-progress").textContent = `Done in ${r.wall_s} s.`;
  } catch (e) {
    $("cmp-progress").textContent = "";
    const ids = { policy_a: "cmp-a", policy_b: "cmp-b", num_episodes: "cmp-n", max_rounds: "cmp-rounds", seed: "cmp-seed" };
    if (isFieldError(e)) {
      for (const d of e.detail) { const id = ids[(d.loc || [])[1]]; if (id) setFieldError(id, d.msg); }
    }
    $("cmp-error").textContent = isFieldError(e) ? `The server refused the comparison: ${e.message}` : e.message;
  } finally { $("cmp-btn").disabled = false; }
}

// ------------------------------------------------------------------ wiring
function redrawAll() {
  if ($("app-view").hidden) return;
  const L = state.live;
  drawOffers($("offers-chart"), $("offers-legend"), L && L.request, L ? L.moves : [], L && L.result, L && L.agents);
  if (L && L.result) drawUtility($("utility-block"), $("utility-chart"), $("utility-legend"), L.request, L.moves, L.result);
  if (state.replay) showReplay(state.replay.pos);
  if (!$("panel-sessions").hidden) renderAnalytics();
  if (!$("panel-training").hidden) drawCurves();
}

function init() {
  setTheme(document.documentElement.dataset.theme || "light");
  $("theme-toggle").addEventListener("click", () => setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));
  $("logout").addEventListener("click", () => revokeAndLogout());
  $("login-form").addEventListener("submit", onLogin);
  $("sim-form").addEventListener("submit", onStart);
  $("train-form").addEventListener("submit", onTrain);
  $("compare-form").addEventListener("submit", onCompare);
  for (const t of TABS) {
    $(`tab-${t}`).addEventListener("click", () => selectTab(t));
    $(`tab-${t}`).addEventListener("keydown", onTabKey);
  }
  $("refresh-sessions").addEventListener("click", () => loadSessions().catch((e) => { $("export-status").textContent = e.message; }));
  $("select-all").addEventListener("click", () => document.querySelectorAll("#sessions-table .sel").forEach((c) => { c.checked = true; }));
  $("export-csv").addEventListener("click", () => exportSelected("csv"));
  $("export-json").addEventListener("click", () => exportSelected("json"));
  $("export-jsonl").addEventListener("click", () => exportSelected("jsonl"));
  $("game").addEventListener("change", () => onGameChange(state.meta, state.policies));
  $("scenario").addEventListener("change", () => buildSeats(state.meta, state.policies));
  wireTurn((frame) => { const L = state.live; if (L && L.ws && L.ws.readyState === 1) L.ws.send(JSON.stringify(frame)); });
  $("replay-load").addEventListener("click", () => loadReplay($("replay-select").value));
  $("replay-first").addEventListener("click", () => { stopReplay(); showReplay(0); });
  $("replay-prev").addEventListener("click", () => { stopReplay(); showReplay(state.replay ? state.replay.pos - 1 : 0); });
  $("replay-next").addEventListener("click", () => { stopReplay(); showReplay(state.replay ? state.replay.pos + 1 : 0); });
  $("replay-last").addEventListener("click", () => { stopReplay(); showReplay(state.replay ? state.replay.transcript.messages.length : 0); });
  $("replay-play").addEventListener("click", togglePlay);
  $("replay-pos").addEventListener("input", (e) => { stopReplay(); showReplay(+e.target.value); });
  let rt = null;
  window.addEventListener("resize", () => { clearTimeout(rt); rt = setTimeout(redrawAll, 150); });
  loadMeta().catch(() => {}); // early, so that logging in does not wait for it
  if (state.token) enterApp(); else showApp(false);
  document.body.dataset.ready = "1";
}

init();
