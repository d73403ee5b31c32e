// Per-node figures drawn on the flow picture (GET /api/flows/{name}/analytics): each node of
// the picture filled by the chosen figure (five shades from the flow's lowest to its highest,
// grey where no call went), a legend, and every figure in a sortable table beside it. The
// period defaults to the server's last 7 days; From/To ask for whole days in this browser's
// time zone.
//
// A module of its own (index.html loads it). app.js draws the picture and says so with a
// "picture-drawn" event on #flow-picture; this module then fetches the figures and paints.

import { ApiError, getJSON } from "./api.js";
import { NA, count, el, fillRows, isoDay, percent, seconds } from "./format.js";

const $ = (id) => document.getElementById(id);
const SHADES = ["#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000"]; // low -> high
const DARK = 3; // shades from this one on take white text
const NO_CALLS = "#eceff3";
const SVG_NS = "http://www.w3.org/2000/svg";

/** Seconds with one decimal under a minute ("6.8 s"), else as format.js says. */
function time(s) {
  if (s === null || s === undefined) return NA;
  return s < 60 ? `${Number(s).toFixed(1)} s` : seconds(s);
}

// the figures: [key, column heading, format, legend unit]
const COLUMNS = [
  ["calls", "Calls", count, "calls"],
  ["visits", "Visits", count, "visits"],
  ["hangups", "Hang-ups", count, "hang-ups"],
  ["no_input_rate", "No-input", percent, "no-input"],
  ["no_match_rate", "No-match", percent, "no-match"],
  ["failed_in_ivr", "Failed in IVR", count, "failed in IVR"],
  ["avg_time_s", "Avg time", time, "on average"],
  ["p50_time_s", "Median time", time, "median"],
];
const COLUMN = new Map(COLUMNS.map((c) => [c[0], c]));

const state = {
  flow: "", // the flow the figures are of
  data: null, // its answer
  period: null, // {since, until} asked for ("" for the server's default)
  sort: { key: "calls", descending: true },
  loading: 0,
};

// --- the figures ----------------------------------------------------------------------------

function query() {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  if (!state.period) return "";
  return `?${new URLSearchParams({ ...state.period, tz })}`;
}

async function load(flow) {
  const ticket = ++state.loading;
  const status = $("heat-status");
  status.className = "muted";
  status.textContent = "Loading the figures…";
  try {
    const data = await getJSON(`/api/flows/${encodeURIComponent(flow)}/analytics${query()}`);
    if (ticket !== state.loading) return; // another flow or period was asked for meanwhile
    state.flow = flow;
    state.data = data;
    showPeriod(data);
    showDefinitions(data.definitions || {});
    status.textContent = "";
  } catch (err) {
    if (ticket !== state.loading) return;
    state.flow = flow;
    state.data = null;
    status.className = "bad";
    status.textContent = err instanceof ApiError && err.status === 404
      ? "No per-node figures: this server does not give them."
      : `No per-node figures: ${err.message}.`;
  }
  render();
}

function showPeriod(data) {
  const { since, until } = data.period || {};
  if (typeof since !== "number" || typeof until !== "number") return;
  const from = new Date(since * 1000);
  const to = new Date(until * 1000 - 1); // until is exclusive
  if (!state.period) {
    $("heat-since").value = isoDay(from);
    $("heat-until").value = isoDay(to);
  }
  $("heat-scope").textContent = `${count(data.calls)} finished calls of ${data.flow}, ` +
    `${from.toLocaleString("en-GB")} to ${new Date(until * 1000).toLocaleString("en-GB")}.`;
}

function showDefinitions(defs) {
  const list = $("heat-definitions");
  if (list.childElementCount) return;
  list.replaceChildren(...Object.entries(defs).flatMap(([key, text]) =>
    [el("dt", {}, key), el("dd", {}, text)]));
}

// --- the picture ----------------------------------------------------------------------------

/** The picture's node groups by node id (the Graphviz <title> of each ivr-node). */
function pictureNodes() {
  const out = new Map();
  for (const g of $("flow-picture").querySelectorAll("g.node.ivr-node")) {
    const id = g.querySelector("title")?.textContent;
    if (id) out.set(id, g);
  }
  return out;
}

function shapeOf(g) {
  return [...g.children].find((c) => ["path", "polygon", "ellipse"].includes(c.localName) &&
    c.getAttribute("fill") !== "none");
}

/** Put each node back as Graphviz drew it. */
function unpaint(g) {
  const shape = shapeOf(g);
  if (shape && shape.dataset.fill !== undefined) shape.setAttribute("fill", shape.dataset.fill);
  for (const text of g.querySelectorAll("text")) {
    if (text.dataset.fill !== undefined) text.setAttribute("fill", text.dataset.fill);
  }
  g.removeAttribute("data-heat");
}

function setFill(node, colour) {
  if (node.dataset.fill === undefined) node.dataset.fill = node.getAttribute("fill") ?? "";
  node.setAttribute("fill", colour);
}

/** The shade of `value` on 0..max: five equal steps; null without a value. */
function shade(value, max) {
  if (value === null || value === undefined) return null;
  if (!(max > 0)) return 0;
  return Math.min(SHADES.length - 1, Math.floor((value / max) * SHADES.length));
}

function paint() {
  const metric = $("heat-metric").value;
  const nodes = pictureNodes();
  const figures = state.data && state.flow === currentFlow() ? state.data.nodes || {} : null;
  for (const g of nodes.values()) unpaint(g);
  if (!metric || !figures) {
    $("heat-legend").replaceChildren();
    return;
  }
  const values = [...nodes.keys()].map((id) => figures[id]?.[metric]).filter((v) => v != null);
  const max = Math.max(0, ...values);
  for (const [id, g] of nodes) {
    const f = figures[id];
    const level = f && f.visits > 0 ? shade(f[metric], max) : null;
    const shape = shapeOf(g);
    if (shape) setFill(shape, level === null ? NO_CALLS : SHADES[level]);
    for (const text of g.querySelectorAll("text")) {
      if (level !== null && level >= DARK) setFill(text, "#ffffff");
    }
    g.dataset.heat = level === null ? "none" : String(level);
    const [, heading, format] = COLUMN.get(metric);
    g.setAttribute("aria-label", `${id}: ${heading} ${f ? format(f[metric]) : "no calls"}`);
  }
  legend(metric, max);
}

function swatch(colour) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "12");
  svg.setAttribute("aria-hidden", "true");
  const rect = document.createElementNS(SVG_NS, "rect");
  for (const [k, v] of Object.entries({ width: 18, height: 12, fill: colour, stroke: "#888" })) {
    rect.setAttribute(k, String(v));
  }
  svg.append(rect);
  return svg;
}

function legend(metric, max) {
  const [, heading, format, unit] = COLUMN.get(metric);
  $("heat-legend").replaceChildren(
    el("span", { class: "heat-name" }, `${heading}:`),
    el("span", {}, format(0)),
    el("span", { class: "heat-scale", "data-max": max }, SHADES.map(swatch)),
    el("span", {}, `${format(max)} ${unit}`),
    el("span", { class: "heat-none" }, swatch(NO_CALLS), " no calls"));
}

// --- the table ------------------------------------------------------------------------------

function currentFlow() {
  return $("flow-select").value;
}

function rows() {
  const figures = state.data?.nodes || {};
  const ids = new Set([...pictureNodes().keys(), ...Object.keys(figures)]);
  const out = [...ids].map((id) => ({ id, ...(figures[id] || { calls: 0, visits: 0 }) }));
  const { key, descending } = state.sort;
  const value = (r) => (key === "id" ? r.id : r[key] ?? -1);
  out.sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    const order = typeof x === "string" ? x.localeCompare(y) : x - y;
    return (descending ? -order : order) || a.id.localeCompare(b.id);
  });
  return out;
}

function renderTable() {
  const metric = $("heat-metric").value;
  const table = $("heat-table");
  for (const th of table.tHead.querySelectorAll("th[data-key]")) {
    const key = th.dataset.key;
    const sorted = state.sort.key === key;
    th.setAttribute("aria-sort", !sorted ? "none" : state.sort.descending
      ? "descending" : "ascending");
    th.classList.toggle("chosen", key === metric);
  }
  const inPicture = pictureNodes();
  if (!state.data) {
    fillRows(table.tBodies[0], [], COLUMNS.length + 1, "No figures.");
    return;
  }
  fillRows(table.tBodies[0], rows().map((r) => el("tr", { "data-node": r.id },
    el("th", { scope: "row" }, el("code", {}, r.id),
      inPicture.has(r.id) || !inPicture.size ? null
        : el("span", { class: "muted", title: "not in this picture: a sub-flow's node, or " +
          "one of an older version" }, " *")),
    ...COLUMNS.map(([key, , format]) => el("td", {
      class: key === metric ? "num chosen" : "num", "data-key": key,
    }, r.visits ? format(r[key]) : key === "calls" || key === "visits" ? "0" : "–")))),
  COLUMNS.length + 1, "No calls went through this flow in the period.");
}

function render() {
  paint();
  renderTable();
}

// --- start ----------------------------------------------------------------------------------

function init() {
  $("flow-picture").addEventListener("picture-drawn", (event) => {
    const flow = event.detail?.flow;
    if (flow && flow !== state.flow) load(flow);
    else render();
  });
  $("heat-metric").addEventListener("change", render);
  $("heat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const since = $("heat-since").value;
    const until = $("heat-until").value;
    if (since && until && since > until) {
      $("heat-status").className = "bad";
      $("heat-status").textContent = "From must not be after To.";
      return;
    }
    state.period = since && until ? { since, until } : null;
    if (currentFlow()) load(currentFlow());
  });
  $("heat-table").tHead.addEventListener("click", (event) => {
    const th = event.target.closest("th[data-key]");
    if (!th) return;
    const key = th.dataset.key;
    state.sort = { key, descending: state.sort.key === key ? !state.sort.descending : key !== "id" };
    renderTable();
  });
}

init();
