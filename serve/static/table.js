// Every game at the table: the game and seat pickers, the terms of a move in words, a person's
// turn (offer form, free text, confirmation, deadline), the result against the equilibrium and
// the charts in utility space. Used by app.js; the server's rules come from /meta.
import { fmtNum, legend, plot } from "./charts.js";

const $ = (id) => document.getElementById(id);
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
export const HUMAN = "human";
const COLORS = ["--supplier", "--retailer", "--party2", "--party3", "--party4", "--party5", "--party6", "--party7"];

export const isPrice = (game) => !game || game === "price";
const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const words = (name) => name.replace(/_/g, " ");

// ------------------------------------------------------------------ game and seat pickers
export function fillGames(meta) {
  const sel = $("game");
  if (sel.options.length) return;
  for (const [name, g] of Object.entries(meta.games || { price: { summary: "" } })) sel.add(new Option(name, name));
  sel.value = "price";
}

function agentsOf(meta) {
  const game = $("game").value, g = meta.games[game];
  if (!g.scenarios) return g.agents;
  const sc = g.scenarios.find((s) => s.name === $("scenario").value) || g.scenarios[0];
  return sc.agents;
}

// Policies a seat can be given: "you", the game's classic negotiators and the trained policies
// of that game (trained on the default game: the price game).
function seatOptions(sel, meta, policies, game, index) {
  const keep = sel.value;
  sel.innerHTML = "";
  sel.add(new Option("you (play this seat)", HUMAN));
  const gN = document.createElement("optgroup"); gN.label = "Classic negotiators";
  for (const n of meta.games[game].negotiators) gN.appendChild(new Option(n, n));
  sel.appendChild(gN);
  const mine = policies.filter((p) => (p.game && p.game.game ? p.game.game : (p.config && p.config.game) || "price") === game);
  if (mine.length) {
    const gT = document.createElement("optgroup"); gT.label = "Trained policies";
    for (const p of mine) gT.appendChild(new Option(p.agent_id, p.agent_id));
    sel.appendChild(gT);
  }
  sel.value = [...sel.options].some((o) => o.value === keep) ? keep : (index === 0 ? "boulware" : "conceder");
}

export function onGameChange(meta, policies) {
  const game = $("game").value, g = meta.games[game];
  $("game-summary").textContent = g.summary || "";
  $("price-fields").hidden = !isPrice(game);
  const scField = $("scenario-field");
  scField.hidden = !g.scenarios;
  if (g.scenarios) {
    const sel = $("scenario"), keep = sel.value;
    sel.innerHTML = "";
    for (const sc of g.scenarios) sel.add(new Option(`${sc.name} (${sc.agents.length} parties)`, sc.name));
    sel.value = g.scenarios.some((s) => s.name === keep) ? keep : g.default_scenario;
  }
  const rounds = $("max_rounds");
  if (isPrice(game)) { if (!rounds.value) rounds.value = "10"; rounds.placeholder = ""; }
  else { rounds.value = ""; rounds.placeholder = "game default"; }
  buildSeats(meta, policies);
}

export function buildSeats(meta, policies) {
  const game = $("game").value, box = $("seat-rows");
  $("seats").hidden = isPrice(game);
  if (isPrice(game)) return;
  const agents = agentsOf(meta);
  const old = [...box.querySelectorAll(".seat-policy")].map((s) => s.value);
  box.innerHTML = "";
  agents.forEach((agent, i) => {
    const f = document.createElement("div"); f.className = "field";
    f.innerHTML = `<label for="seat-policy-${i}">${cap(agent)} plays</label><select id="seat-policy-${i}" class="seat-policy" data-agent="${agent}"></select>`
      + `<label for="seat-style-${i}">${cap(agent)} style</label><select id="seat-style-${i}" class="seat-style"><option>aggressive</option><option selected>cooperative</option><option>analytical</option></select>`;
    box.appendChild(f);
    const sel = f.querySelector("select");
    if (old[i]) sel.value = old[i];
    seatOptions(sel, meta, policies, game, i);
    if (old[i] && [...sel.options].some((o) => o.value === old[i])) sel.value = old[i];
  });
}

export function readTableBody(body) {
  const game = $("game").value;
  const out = { game, move_delay_s: body.move_delay_s };
  if (!$("scenario-field").hidden) out.scenario = $("scenario").value;
  if (body.max_rounds !== undefined && body.max_rounds !== null) out.max_rounds = body.max_rounds;
  if (body.seed !== undefined) out.seed = body.seed;
  out.policies = [...document.querySelectorAll(".seat-policy")].map((s) => s.value);
  out.styles = [...document.querySelectorAll(".seat-style")].map((s) => s.value);
  return out;
}

// ------------------------------------------------------------------ terms in words
function money(v) {
  const cents = Math.round(Number(v) * 100);
  return cents % 100 === 0 ? `$${(cents / 100).toLocaleString("en-US")}` : `$${(cents / 100).toLocaleString("en-US", { minimumFractionDigits: 2 })}`;
}

export function termsText(offer) {
  if (!offer) return "no offer";
  return Object.entries(offer).map(([k, v]) => {
    if (typeof v === "string") return `${words(k)} ${v}`;
    if (k === "price" || k === "unit_price") return `${money(v)} a unit`;
    if (k === "quantity") return `${fmtNum(v)} units`;
    const unit = k.match(/_(days|weeks|months)$/);
    if (unit) return `${words(k.replace(/_(days|weeks|months)$/, ""))} ${fmtNum(v)} ${unit[1]}`;
    return `${fmtNum(v)} ${words(k)}`;
  }).join(", ");
}

// ------------------------------------------------------------------ a person's turn
let countdown = null;
let currentTurn = null;

function issueInput(issue, value, pool) {
  const f = document.createElement("div"); f.className = "field";
  const id = `you-offer-${issue.name}`;
  const what = pool ? `${cap(words(issue.name))} you keep (0–${pool[issue.name]})` : cap(words(issue.name))
    + (issue.unit === "currency" ? " ($ a unit)" : issue.unit && issue.unit !== "items" ? ` (${issue.unit})` : "");
  const label = document.createElement("label"); label.htmlFor = id; label.textContent = what;
  let input;
  if (issue.values) {
    input = document.createElement("select");
    for (const v of issue.values) input.add(new Option(String(v), String(v)));
    if (value !== undefined && value !== null) input.value = String(value);
  } else {
    input = document.createElement("input"); input.type = "number"; input.step = pool ? "1" : "any";
    input.min = issue.low; input.max = pool ? pool[issue.name] : issue.high; input.inputMode = "decimal";
    if (value !== undefined && value !== null) input.value = String(value);
  }
  input.id = id; input.dataset.issue = issue.name; input.dataset.kind = issue.values ? "value" : "number";
  f.append(label, input);
  return f;
}

export function showTurn(turn) {
  currentTurn = turn;
  const panel = $("you-panel");
  panel.hidden = false;
  $("you-seat").textContent = `as the ${turn.agent} (round ${turn.round} of ${turn.max_rounds})`;
  $("you-standing").textContent = turn.standing_offer
    ? `On the table${turn.pool ? " (what you would keep)" : ""}: ${termsText(turn.standing_offer)}`
    : "No offer on the table yet: make the first one.";
  const box = $("you-issues"); box.innerHTML = "";
  for (const issue of turn.issues) box.appendChild(issueInput(issue, turn.standing_offer ? turn.standing_offer[issue.name] : undefined, turn.pool));
  $("you-accept").disabled = !turn.legal_actions.includes("ACCEPT");
  $("you-walk").hidden = !turn.legal_actions.includes("WALK_AWAY");
  $("you-proposal").hidden = true; $("you-error").textContent = ""; $("you-text").value = "";
  for (const b of ["you-counter", "you-say"]) $(b).disabled = false;
  clearInterval(countdown);
  const tick = () => {
    const left = Math.max(0, Math.round(turn.deadline_at - Date.now() / 1000));
    const d = $("you-deadline");
    d.textContent = left > 0 ? `${left} s left for your move` : "Time is up: your seat walks away.";
    d.dataset.left = String(left); d.dataset.low = left <= 10 ? "1" : "0";
    if (!left) clearInterval(countdown);
  };
  tick(); countdown = setInterval(tick, 250);
  const first = box.querySelector("input, select");
  if (first) first.focus();
}

export function endTurn() {
  clearInterval(countdown); countdown = null; currentTurn = null;
  $("you-panel").hidden = true;
}

export function showProposal(msg) {
  const m = msg.move;
  const what = m.action === "COUNTER" ? `offer ${termsText(m.offer)}` : m.action === "ACCEPT" ? "accept the offer on the table" : "walk away";
  $("you-proposal-text").textContent = `I read “${msg.text}” as: ${what}. Confirm?`;
  $("you-proposal").hidden = false; $("you-error").textContent = "";
  $("you-confirm").focus();
}

export function showMoveError(msg) {
  $("you-error").textContent = msg.message + (msg.missing && msg.missing.length ? ` (missing or unclear: ${msg.missing.map(words).join(", ")})` : "");
}

function formOffer() {
  const offer = {};
  for (const input of $("you-issues").querySelectorAll("[data-issue]")) {
    const v = input.value.trim();
    if (input.dataset.kind === "value") offer[input.dataset.issue] = Number.isNaN(Number(v)) ? v : Number(v);
    else offer[input.dataset.issue] = v === "" ? null : Number(v);
  }
  return offer;
}

export function wireTurn(send) {
  $("you-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!currentTurn) return;
    const offer = formOffer();
    const blank = Object.entries(offer).filter(([, v]) => v === null || Number.isNaN(v)).map(([k]) => k);
    if (blank.length) { $("you-error").textContent = `Give a value for ${blank.map(words).join(", ")}.`; return; }
    send({ type: "move", action: "COUNTER", offer });
  });
  $("you-accept").addEventListener("click", () => currentTurn && send({ type: "move", action: "ACCEPT" }));
  $("you-walk").addEventListener("click", () => currentTurn && send({ type: "move", action: "WALK_AWAY" }));
  $("you-say-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("you-text").value.trim();
    if (!currentTurn) return;
    if (!text) { $("you-error").textContent = "Type what you want to say first."; return; }
    send({ type: "say", text });
  });
  $("you-confirm").addEventListener("click", () => { send({ type: "confirm" }); $("you-proposal").hidden = true; });
  $("you-cancel").addEventListener("click", () => { $("you-proposal").hidden = true; $("you-text").focus(); });
}

// ------------------------------------------------------------------ the result
function row(dl, k, v) {
  const dt = document.createElement("dt"); dt.textContent = k;
  const dd = document.createElement("dd"); dd.textContent = v; dd.dataset.key = k;
  dl.append(dt, dd);
}

export function renderTableResult(div, r) {
  div.innerHTML = "";
  const h = document.createElement("p"); h.className = "outcome"; h.id = div.id + "-outcome";
  const ends = { walk_away: "No deal: a party walked away", timeout: "No deal: out of rounds", chance_end: "No deal: the game ended by chance", none: "No deal" };
  h.textContent = r.deal_reached ? `Deal: ${termsText(r.agreement)}` : (ends[r.end] || "No deal");
  div.appendChild(h);
  const dl = document.createElement("dl");
  row(dl, "Rounds", r.total_rounds);
  for (const a of r.agents) {
    row(dl, `${cap(a)} utility`, r.utilities ? fmtNum(r.utilities[a]) : "–");
    row(dl, `${cap(a)} reward`, fmtNum(r.rewards[a]));
  }
  const eq = r.equilibrium;
  row(dl, "Equilibrium", `${eq.outcome} at round ${eq.round}${eq.agreement ? `: ${termsText(eq.agreement)}` : ""}`);
  if (eq.utilities) row(dl, "Equilibrium utilities", r.agents.map((a) => `${a} ${fmtNum(eq.utilities[a])}`).join(", "));
  for (const [k, v] of Object.entries(r.optimality || {})) row(dl, cap(words(k)), typeof v === "boolean" ? (v ? "yes" : "no") : fmtNum(v));
  row(dl, "Players", r.agents.map((a) => `${a}: ${r.policies[a]}`).join(", "));
  row(dl, "Seed", r.seed);
  div.appendChild(dl);
  renderHuman(div, r);
}

// The person's result: against the equilibrium and against an agent in their seat.
export function renderHuman(div, r) {
  for (const me of r.human || []) {
    const box = document.createElement("div"); box.className = "you-result"; box.id = `${div.id}-you-${me.seat}`;
    const b = me.benchmark;
    const h = document.createElement("p"); h.className = "you-outcome";
    h.textContent = `You (the ${me.agent}): utility ${fmtNum(me.utility)}, reward ${fmtNum(me.reward)}.`;
    const dl = document.createElement("dl");
    row(dl, "Equilibrium in your seat", `utility ${fmtNum(me.equilibrium.utility)}, payoff ${fmtNum(me.equilibrium.payoff)}`);
    row(dl, `${b.policy} in your seat`, `utility ${fmtNum(b.utility)}, reward ${fmtNum(b.reward)}${b.deal ? `, deal in round ${b.round}` : ", no deal"}`);
    const better = me.reward - b.reward;
    row(dl, "You vs the agent", `${better >= 0 ? "+" : ""}${fmtNum(better)} reward`);
    box.append(h, dl);
    div.appendChild(box);
  }
}

// ------------------------------------------------------------------ charts
// Offers of a game beyond one price over rounds: the price-like issue of every agent's offers.
export function drawTermsOffers(svg, legendEl, req, moves, agents) {
  const names = agents && agents.length ? agents : [...new Set(moves.map((m) => m.agent))];
  const lines = names.map((a, i) => ({ pts: moves.filter((m) => m.agent === a && m.action === "COUNTER" && m.price !== null && m.price !== undefined).map((m) => [m.round, m.price]), cls: `p${i % 8}-line`, dotCls: `p${i % 8}-dot` }));
  const ys = lines.flatMap((l) => l.pts.map((p) => p[1]));
  const lo = ys.length ? Math.min(...ys) : 0, hi = ys.length ? Math.max(...ys) : 1, pad = Math.max(0.05, (hi - lo) * 0.1, Math.abs(hi) * 0.05);
  const last = Math.max(2, req && req.max_rounds ? req.max_rounds : 2, ...moves.map((m) => m.round));
  plot(svg, { x: [1, last], y: [Math.max(0, lo - pad), hi + pad], xInt: true, xLabel: "round", yLabel: "unit price ($)", lines });
  svg.dataset.points = String(ys.length);
  legend(legendEl, names.map((a, i) => [`${a} offers`, css(COLORS[i % 8]), i % 3 === 1]));
}

function priceUtilities(req, moves, r) {
  const vs = req.supplier_valuation, vr = req.retailer_valuation, S = vr - vs;
  const pts = moves.filter((m) => m.action === "COUNTER" && m.price !== null).map((m) => ({ agent: m.agent, u: [m.price - vs, vr - m.price] }));
  const spe = r && r.equilibrium_price !== null && r.equilibrium_price !== undefined ? [r.equilibrium_price - vs, vr - r.equilibrium_price] : null;
  const deal = r && r.deal_reached ? [r.final_price - vs, vr - r.final_price] : null;
  return { agents: ["supplier", "retailer"], pts, frontier: S > 0 ? [[0, S], [S, 0]] : [], nash: S > 0 ? [S / 2, S / 2] : null, spe, deal };
}

function tableUtilities(r) {
  const a = r.agents;
  const pts = (r.offer_utilities || []).map((o) => ({ agent: o.agent, round: o.round, u: a.map((x) => o.utilities[x]) }));
  const spe = r.equilibrium && r.equilibrium.utilities ? a.map((x) => r.equilibrium.utilities[x]) : null;
  const deal = r.utilities ? a.map((x) => r.utilities[x]) : null;
  return { agents: a, pts, frontier: r.frontier ? r.frontier.pareto : [], nash: r.frontier ? r.frontier.nash : null, spe, deal };
}

// At the end of a session: two parties, every offer as a point (supplier utility, retailer
// utility) with the Pareto frontier, the equilibrium and the Nash point; N parties, each
// agent's utility of the offer on the table over the rounds.
export function drawUtility(block, svg, legendEl, req, moves, r) {
  if (!r || r.type !== "SIMULATION_COMPLETE") { block.hidden = true; return; }
  const U = isPrice(r.game) ? priceUtilities(req, moves, r) : tableUtilities(r);
  block.hidden = false;
  if (U.agents.length === 2) {
    const all = [...U.pts.map((p) => p.u), ...U.frontier, U.spe, U.nash, U.deal].filter(Boolean);
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const pad = (v) => Math.max(1e-3, (Math.max(...v) - Math.min(...v)) * 0.08);
    const by = (a) => U.pts.filter((p) => p.agent === a).map((p) => p.u);
    plot(svg, {
      x: [Math.min(...xs) - pad(xs), Math.max(...xs) + pad(xs)], y: [Math.min(...ys) - pad(ys), Math.max(...ys) + pad(ys)],
      xLabel: `${U.agents[0]} utility`, yLabel: `${U.agents[1]} utility`,
      lines: [{ pts: U.frontier, cls: "frontier" }],
      points: [{ pts: by(U.agents[0]), cls: "p0-dot", r: 5 }, { pts: by(U.agents[1]), cls: "p1-dot", r: 5 },
        ...(U.nash ? [{ pts: [[...U.nash, "Nash point"]], cls: "nash", r: 7 }] : []),
        ...(U.spe ? [{ pts: [[...U.spe, "equilibrium"]], cls: "spe", r: 7 }] : []),
        ...(U.deal ? [{ pts: [[...U.deal, "deal"]], cls: "deal", r: 6 }] : [])],
    });
    svg.setAttribute("aria-label", "Every offer in utility space with the Pareto frontier, the equilibrium and the Nash point");
    legend(legendEl, [[`${U.agents[0]} offers`, css(COLORS[0])], [`${U.agents[1]} offers`, css(COLORS[1])],
      ["Pareto frontier", css("--ok")], ["equilibrium", css("--eq")], ["Nash point", css("--eq"), true], ...(U.deal ? [["deal", css("--ok")]] : [])]);
    svg.dataset.points = String(U.pts.length);
    return;
  }
  const lines = U.agents.map((a, i) => ({ pts: U.pts.map((p) => [p.round, p.u[i]]), cls: `p${i % 8}-line`, dotCls: `p${i % 8}-dot` }));
  const ys = U.pts.flatMap((p) => p.u).concat(U.spe || []);
  const last = Math.max(2, ...U.pts.map((p) => p.round), r.total_rounds || 2);
  plot(svg, { x: [1, last], y: [Math.min(0, ...ys), Math.max(1, ...ys)], xInt: true, xLabel: "round", yLabel: "utility of the offer on the table",
    lines, points: U.spe ? U.spe.map((u, i) => ({ pts: [[r.equilibrium.round, u, `equilibrium: ${U.agents[i]}`]], cls: "spe", r: 5 })) : [] });
  svg.setAttribute("aria-label", "Each agent's utility of every offer made, over the rounds, with the equilibrium utilities");
  legend(legendEl, [...U.agents.map((a, i) => [a, css(COLORS[i % 8]), i % 3 === 1]), ["equilibrium", css("--eq")]]);
  svg.dataset.points = String(U.pts.length);
}
