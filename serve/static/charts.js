// Hand-written SVG charts (no library): one plot() for line, point, bar and band layers.
const NS = "http://www.w3.org/2000/svg";

export function el(name, attrs = {}, parent = null, text = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, "");
  return (+v.toFixed(3)).toString();
}

/**
 * plot(svg, {x: [lo, hi], y: [lo, hi], xLabel, yLabel, xInt, bands: [{y0, y1, cls}],
 *   hlines: [{y, cls, label}], lines: [{pts: [[x, y]], cls, dotCls}], points: [{pts, cls, r}],
 *   bars: [{x, y, w, cls, label}], diag: cls})
 */
export function plot(svg, o) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = svg.clientWidth || 600, H = svg.clientHeight || 300;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const m = { l: 58, r: 12, t: 10, b: 40 };
  const [x0, x1] = o.x, [y0, y1] = o.y;
  const sx = (v) => m.l + ((v - x0) / ((x1 - x0) || 1)) * (W - m.l - m.r);
  const sy = (v) => H - m.b - ((v - y0) / ((y1 - y0) || 1)) * (H - m.t - m.b);
  const clampY = (v) => Math.max(y0, Math.min(y1, v));
  const g = el("g", { class: "axis" }, svg);
  for (const t of niceTicks(y0, y1)) {
    el("line", { x1: m.l, x2: W - m.r, y1: sy(t), y2: sy(t), class: "gridline" }, g);
    el("text", { x: m.l - 6, y: sy(t) + 4, "text-anchor": "end" }, g, fmtNum(t));
  }
  let xt = niceTicks(x0, x1, Math.min(8, Math.max(2, Math.floor((W - 80) / 60))));
  if (o.xInt) xt = xt.filter((t) => Number.isInteger(t));
  if (o.xLabels) xt = Object.keys(o.xLabels).map(Number);
  for (const t of xt) el("text", { x: sx(t), y: H - m.b + 16, "text-anchor": "middle" }, g, o.xLabels ? o.xLabels[t] : fmtNum(t));
  el("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }, g);
  el("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }, g);
  if (o.xLabel) el("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle" }, g, o.xLabel);
  if (o.yLabel) el("text", { x: 12, y: (m.t + H - m.b) / 2, transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`, "text-anchor": "middle" }, g, o.yLabel);
  for (const b of o.bands || []) {
    const a = sy(clampY(b.y1)), c = sy(clampY(b.y0));
    el("rect", { x: m.l, width: W - m.l - m.r, y: a, height: Math.max(0, c - a), class: b.cls }, svg);
  }
  if (o.diag) el("line", { x1: sx(Math.max(x0, y0)), y1: sy(Math.max(x0, y0)), x2: sx(Math.min(x1, y1)), y2: sy(Math.min(x1, y1)), class: o.diag }, svg);
  for (const h of o.hlines || []) {
    if (h.y === null || h.y === undefined || h.y < y0 || h.y > y1) continue;
    el("line", { x1: m.l, x2: W - m.r, y1: sy(h.y), y2: sy(h.y), class: h.cls, "data-label": h.label || "" }, svg);
  }
  for (const b of o.bars || []) {
    const top = sy(Math.max(b.y, y0)), base = sy(Math.max(0, y0));
    const bw = Math.max(2, (b.w / ((x1 - x0) || 1)) * (W - m.l - m.r) - 2);
    const r = el("rect", { x: sx(b.x) - bw / 2, y: Math.min(top, base), width: bw, height: Math.abs(base - top), class: b.cls || "bar" }, svg);
    if (b.label) el("title", {}, r, b.label);
  }
  for (const L of o.lines || []) {
    if (!L.pts.length) continue;
    el("path", { d: L.pts.map(([x, y], i) => `${i ? "L" : "M"}${sx(x)},${sy(clampY(y))}`).join(" "), class: L.cls }, svg);
    if (L.dotCls) for (const [x, y] of L.pts) el("circle", { cx: sx(x), cy: sy(clampY(y)), r: 4, class: L.dotCls }, svg);
  }
  for (const P of o.points || []) {
    for (const p of P.pts) {
      const c = el("circle", { cx: sx(p[0]), cy: sy(clampY(p[1])), r: P.r || 4, class: P.cls }, svg);
      if (p[2]) el("title", {}, c, p[2]);
    }
  }
  return { sx, sy };
}

export function legend(ul, items) {
  ul.innerHTML = "";
  for (const [label, color, dash] of items) {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "sw";
    sw.style.background = dash ? `repeating-linear-gradient(90deg, ${color} 0 5px, transparent 5px 8px)` : color;
    li.append(sw, label);
    ul.appendChild(li);
  }
}
