// IVR operations dashboard: KPI tiles with daily trends, live calls, queues, the nodes
// (nodes.js), recent calls and surveys, flows with their pictures, and a flow validator.
// Plain ES modules, no framework.

import { ApiError, getJSON, getText, request } from "./api.js";
import {
  NA, clock, count, el, fillRows, isoDay, percent, seconds, toDate, when,
} from "./format.js";
import { loadMessages } from "./messages.js";
import { loadNodes } from "./nodes.js";
import { loadWebhooks } from "./webhooks.js";

const LIVE_MS = 5000; // live calls, recent calls, queues, nodes
const SLOW_MS = 60000; // KPIs, surveys, flows
const TREND_DAYS = 14;

const TILES = {
  agent_answer_rate: {
    colour: "#0b5cad",
    sub: (k) => `${count(k.agent_requests)} agent requests`,
  },
  self_service_rate: {
    colour: "#1e6b32",
    sub: (k) => `reached a served node · of ${count(k.calls)} finished calls`,
  },
  containment_rate: {
    colour: "#0f6e6e",
    sub: (k) => `never handed to an agent or queue · ${percent(k.failed_in_ivr_rate)}` +
      " failed in IVR",
  },
  satisfaction: {
    colour: "#6a3fa0",
    sub: (k) => `top box, ${count(k.satisfaction_answers)} answers`,
  },
  abandon_rate: {
    colour: "#a3161b",
    sub: (k) => `of callers who waited · avg wait ${seconds(k.avg_wait_s)}`,
  },
};

// [label, figure from K, the definition shown as its tooltip]
const MINOR = [
  ["Calls", (k) => count(k.calls), "calls"],
  ["In progress", (k) => count(k.in_progress), "in_progress"],
  ["Failed in IVR", (k) => percent(k.failed_in_ivr_rate), "failed_in_ivr_rate"],
  ["Agent requests", (k) => count(k.agent_requests), "agent_requests"],
  ["Avg wait", (k) => seconds(k.avg_wait_s), "avg_wait_s"],
  ["Median wait", (k) => seconds(k.p50_wait_s), "p50_wait_s"],
  ["90th pct wait", (k) => seconds(k.p90_wait_s), "p90_wait_s"],
  ["Surveys offered", (k) => count(k.surveys_offered), "surveys_offered"],
  ["Survey responses", (k) => percent(k.survey_response_rate), "survey_response_rate"],
  ["Callbacks asked / placed / connected", (k) => [k.callbacks_requested, k.callbacks_placed,
    k.callbacks_connected].map(count).join(" / "), "callbacks_requested"],
];

const OUTCOMES = {
  self_service: ["self-service", "pill-good"],
  failed_in_ivr: ["failed in IVR", "pill-warn"],
  transferred: ["transferred", "pill-muted"],
  abandoned: ["abandoned", "pill-warn"],
  error: ["error", "pill-bad"],
};

const $ = (id) => document.getElementById(id);

const state = {
  kpis: null,
  charts: new Map(),
  live: [],
  flows: [],
  picture: { flow: "", version: "", loading: false },
};

// --- problems banner ------------------------------------------------------------------------

const problems = new Map();

function report(key, err) {
  const text = err instanceof ApiError ? err.message : `${key}: ${err?.message ?? err}`;
  problems.set(key, text);
  renderProblems();
}

function clear(key) {
  if (problems.delete(key)) renderProblems();
}

function renderProblems() {
  const box = $("problems");
  box.hidden = problems.size === 0;
  box.replaceChildren(...(problems.size ? [
    el("strong", {}, "Some figures could not be refreshed:"),
    el("ul", {}, [...problems.values()].map((p) => el("li", {}, p))),
  ] : []));
}

/** Run `task` now and then every `ms`, never two at once; errors go to the banner. */
function every(ms, key, task) {
  const run = async () => {
    try {
      await task();
      clear(key);
    } catch (err) {
      report(key, err);
    } finally {
      setTimeout(run, ms);
    }
  };
  run();
}

// --- KPIs -----------------------------------------------------------------------------------

function initRange() {
  const until = new Date();
  const since = new Date(until);
  since.setDate(since.getDate() - (TREND_DAYS - 1));
  $("since").value = isoDay(since);
  $("until").value = isoDay(until);
  $("range").addEventListener("submit", (event) => {
    event.preventDefault();
    loadKpis().then(() => clear("kpis"), (err) => report("kpis", err));
  });
  $("kpi-flow").addEventListener("change", renderKpis);
}

async function loadKpis() {
  const since = $("since").value;
  const until = $("until").value;
  const query = new URLSearchParams({ since, until });
  state.kpis = await getJSON(`/api/kpis?${query}`);
  state.kpis.range = { since, until };
  renderKpis();
}

function renderKpis() {
  const data = state.kpis;
  if (!data) return;
  const select = $("kpi-flow");
  const names = Object.keys(data.flows || {}).sort();
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "All flows"),
    ...names.map((n) => el("option", { value: n }, n)));
  select.value = names.includes(chosen) ? chosen : "";
  const flow = select.value;
  const k = (flow ? data.flows[flow] : data.overall) || {};
  const defs = data.definitions || {};
  const tz = data.timezone ? ` (days in ${data.timezone})` : "";
  $("kpi-scope").textContent = `${flow || "All flows"}, ${data.range.since} to ` +
    `${data.range.until}${tz}.` + (flow ? " Daily trends are for all flows." : "");

  const days = everyDay(data.days || []);
  for (const tile of document.querySelectorAll(".tile[data-kpi]")) {
    const key = tile.dataset.kpi;
    const value = percent(k[key]);
    const figure = tile.querySelector('[data-role="value"]');
    figure.textContent = value;
    figure.classList.toggle("na", value === NA);
    tile.querySelector('[data-role="sub"]').textContent = TILES[key].sub(k);
    if (defs[key]) tile.title = defs[key];
    drawTrend(tile, key, days);
  }

  $("minor-kpis").replaceChildren(...MINOR.map(([label, figure, key]) =>
    el("div", { title: defs[key] || null }, el("dt", {}, label), el("dd", {}, figure(k)))));

  const list = $("definitions");
  if (!list.childElementCount) {
    list.replaceChildren(...Object.entries(defs).flatMap(([key, text]) =>
      [el("dt", {}, key), el("dd", {}, text)]));
  }
}

// The API lists only days with calls; a day without any still takes its place on the axis.
function everyDay(days) {
  if (days.length < 2) return days;
  const byDay = new Map(days.map((d) => [d.day, d]));
  const out = [];
  const last = new Date(`${days[days.length - 1].day}T00:00:00Z`);
  for (let d = new Date(`${days[0].day}T00:00:00Z`); d <= last && out.length < 1000;
    d.setUTCDate(d.getUTCDate() + 1)) {
    const day = d.toISOString().slice(0, 10);
    out.push(byDay.get(day) || { day });
  }
  return out;
}

function dayLabel(day) {
  const d = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return day;
  return d.toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });
}

function drawTrend(tile, key, days) {
  const canvas = tile.querySelector("canvas");
  const labels = days.map((d) => dayLabel(d.day));
  const values = days.map((d) => (d[key] === null || d[key] === undefined
    ? null : Math.round(d[key] * 1000) / 10));
  const name = tile.querySelector("h3").textContent;
  canvas.setAttribute("aria-label", `Daily ${name.toLowerCase()}: ` + (days.length
    ? days.map((d, i) => `${labels[i]} ${values[i] === null ? NA : `${values[i]} %`}`)
      .join(", ")
    : "no days in the range"));
  const ChartJS = globalThis.Chart;
  if (!ChartJS) return; // the vendored library did not load: the figures still show
  let chart = state.charts.get(key);
  if (chart) {
    chart.data.labels = labels;
    chart.data.datasets[0].data = values;
    chart.update("none");
    return;
  }
  const colour = TILES[key].colour;
  chart = new ChartJS(canvas, {
    type: "line",
    data: {
      labels,
      datasets: [{
        label: name, data: values, borderColor: colour, backgroundColor: `${colour}1f`,
        fill: "origin", tension: 0.3, borderWidth: 2, pointRadius: 2.5, pointHoverRadius: 5,
        spanGaps: true,
      }],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: { label: (ctx) => (ctx.raw === null ? NA : `${ctx.raw.toFixed(1)} %`) },
        },
      },
      scales: {
        x: {
          grid: { display: false },
          ticks: { maxTicksLimit: 5, maxRotation: 0, color: "#4f5965", font: { size: 10 } },
        },
        y: {
          min: 0, max: 100,
          grid: { color: "#e5e9ef" },
          ticks: { stepSize: 50, color: "#4f5965", font: { size: 10 }, callback: (v) => `${v} %` },
        },
      },
    },
  });
  state.charts.set(key, chart);
}

// --- live and recent calls ------------------------------------------------------------------

async function loadCalls() {
  const data = await getJSON("/api/calls?live=1&limit=50");
  state.live = Array.isArray(data.live) ? data.live : [];
  renderLive();
  renderRecent(Array.isArray(data.recent) ? data.recent : []);
  markCallers();
  $("updated").textContent = `Updated ${when(Date.now() / 1000)}`;
}

function renderLive() {
  const now = Date.now() / 1000;
  const calls = [...state.live].sort((a, b) => (a.started_at || 0) - (b.started_at || 0));
  const n = calls.length;
  const pill = $("live-count");
  pill.textContent = `${n} in progress`;
  pill.className = `pill ${n ? "pill-good" : "pill-muted"}`;
  fillRows($("live-table").tBodies[0], calls.map((c) => {
    const started = toDate(c.started_at);
    return el("tr", { "data-call-id": c.call_id },
      el("td", { class: "mono" }, c.caller || "unknown"),
      el("td", {}, c.flow || "–"),
      el("td", {}, el("code", {}, c.node || "–")),
      el("td", { class: "num", title: started ? started.toLocaleString("en-GB") : null },
        started ? clock(now - started.getTime() / 1000) : "–"),
      el("td", {}, c.language || "–"),
      el("td", { class: "mono muted" }, c.call_id));
  }), 6, "No calls in progress.");
}

function renderRecent(records) {
  fillRows($("recent-table").tBodies[0], records.map((r) => {
    const [label, cls] = OUTCOMES[r.outcome] || [r.outcome || "in progress", "pill-muted"];
    const start = toDate(r.started_at);
    const end = toDate(r.ended_at);
    const duration = start && end ? seconds((end - start) / 1000) : "–";
    return el("tr", { "data-call-id": r.call_id },
      el("td", {}, when(r.started_at)),
      el("td", { class: "mono" }, r.caller || "unknown"),
      el("td", {}, r.flow),
      el("td", {}, el("span", { class: `pill ${cls}` }, label)),
      el("td", {}, r.end_node ? el("code", {}, r.end_node) : "–"),
      el("td", { class: "num" }, duration),
      el("td", {}, queueText(r.queue)),
      el("td", {}, r.survey ? surveyText(r.survey) : "–"));
  }), 8, "No finished calls yet.");
}

function queueText(q) {
  if (!q) return "–";
  const parts = [`${q.queue}: ${String(q.result).replace("_", " ")}`];
  if (q.wait_s) parts.push(`after ${seconds(q.wait_s)}`);
  if (q.agent) parts.push(`by ${q.agent}`);
  return parts.join(" ");
}

function answerText(a) {
  if (!a || a.value === null || a.value === undefined) return "no answer";
  if (a.scale === "yes-no") return a.value ? "yes" : "no";
  const top = String(a.scale || "").split("-")[1];
  return top ? `${a.value}/${top}` : String(a.value);
}

/** The survey's satisfaction: the answer to its satisfaction question (or a given figure). */
function satisfactionText(s) {
  if (typeof s.satisfaction === "number") {
    return s.satisfaction <= 1 ? percent(s.satisfaction) : String(s.satisfaction);
  }
  const answer = (s.answers || []).find((a) => a.question === s.satisfaction);
  return answer ? answerText(answer) : "–";
}

function surveyText(s) {
  return `${String(s.status).replace("_", " ")}, satisfaction ${satisfactionText(s)}`;
}

// --- queues ---------------------------------------------------------------------------------

const AMI = {
  up: ["AMI up", "pill-good"],
  down: ["AMI down", "pill-bad"],
  off: ["AMI off", "pill-muted"],
};

async function loadQueues() {
  const data = await getJSON("/api/queues");
  const [label, cls] = AMI[data.ami] || [`AMI ${data.ami ?? "?"}`, "pill-muted"];
  for (const id of ["ami-status", "queues-ami"]) {
    $(id).textContent = label;
    $(id).className = `pill ${cls}`;
  }
  const queues = Array.isArray(data.queues) ? data.queues : [];
  const empty = data.ami === "down" ? "Queue figures unavailable: AMI is down."
    : data.ami === "off" ? "AMI is not configured: no queue figures." : "No queues.";
  fillRows($("queue-table").tBodies[0], queues.map((q) => {
    const short = q.callers > 0 && !q.available;
    return el("tr", { class: short ? "warn" : null, "data-queue": q.name },
      el("td", {}, q.name),
      el("td", { class: "num" }, count(q.logged_in)),
      el("td", { class: "num" }, count(q.available)),
      el("td", { class: "num" }, count(q.callers)),
      el("td", { class: "num" }, seconds(q.holdtime_s)),
      el("td", { class: "num" }, seconds(q.longest_wait_s)));
  }), 6, empty);
}

// --- surveys --------------------------------------------------------------------------------

async function loadSurveys() {
  const data = await getJSON("/api/surveys?limit=20");
  const surveys = Array.isArray(data.surveys) ? data.surveys : [];
  fillRows($("survey-table").tBodies[0], surveys.map((s) => {
    const cls = s.status === "completed" ? "pill-good"
      : s.status === "partial" ? "pill-warn" : "pill-muted";
    return el("tr", { "data-call-id": s.call_id },
      el("td", {}, when(s.at)),
      el("td", {}, s.flow),
      el("td", {}, s.survey),
      el("td", {}, String(s.mode || "").replace("_", " ")),
      el("td", {}, el("span", { class: `pill ${cls}` }, String(s.status).replace("_", " "))),
      el("td", {}, (s.answers || []).map((a) => `${a.question} ${answerText(a)}`).join(" · ")
        || "–"),
      el("td", {}, satisfactionText(s)));
  }), 7, "No surveys yet.");
}

// --- flows and pictures ---------------------------------------------------------------------

async function loadFlows() {
  const data = await getJSON("/api/flows");
  state.flows = Array.isArray(data.flows) ? data.flows : [];
  fillRows($("flow-table").tBodies[0], state.flows.map((f) =>
    el("tr", { "data-flow": f.name },
      el("th", { scope: "row" }, f.name),
      el("td", { class: "mono" }, f.version || "–"),
      el("td", { class: "num" }, count(f.nodes)),
      el("td", { class: "mono" }, f.file || "–"),
      el("td", {}, when(f.loaded_at)),
      el("td", { class: "num" }, count((f.versions || []).length)))), 6, "No flows loaded.");

  const errors = Array.isArray(data.errors) ? data.errors : [];
  const box = $("flow-errors");
  box.hidden = errors.length === 0;
  box.querySelector("ul").replaceChildren(...errors.map((e) => el("li", {},
    el("code", {}, `${e.file}:${e.line ?? 0}:${e.col ?? 0}`),
    e.node ? ` node '${e.node}': ` : " ", e.message)));

  const select = $("flow-select");
  const names = state.flows.map((f) => f.name);
  const chosen = select.value;
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  select.disabled = names.length === 0;
  select.value = names.includes(chosen) ? chosen : (names[0] ?? "");
  await showPicture();
}

async function showPicture(force = false) {
  const name = $("flow-select").value;
  const box = $("flow-picture");
  if (!name) {
    box.replaceChildren(el("p", { class: "message" }, "No flow to draw."));
    return;
  }
  const version = state.flows.find((f) => f.name === name)?.version ?? "";
  if (!force && state.picture.flow === name && state.picture.version === version) return;
  state.picture = { flow: name, version };
  box.setAttribute("aria-busy", "true");
  try {
    const text = await getText(`/api/flows/${encodeURIComponent(name)}/graph.svg`);
    if ($("flow-select").value !== name) return; // another flow was chosen meanwhile
    const svg = parseSvg(text);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Picture of the flow ${name}`);
    box.replaceChildren(svg);
    markCallers();
    box.dispatchEvent(new CustomEvent("picture-drawn", { detail: { flow: name } })); // analytics.js
  } catch (err) {
    state.picture = { flow: "", version: "" };
    const why = err instanceof ApiError && err.status === 404
      ? "this server does not draw flows yet" : err.message;
    box.replaceChildren(el("p", { class: "message" }, `No picture of ${name}: ${why}.`));
  } finally {
    box.removeAttribute("aria-busy");
  }
}

/** SVG text -> a clean <svg> element: no scripts, no event handlers, no javascript: links. */
function parseSvg(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg" || doc.getElementsByTagName("parsererror").length) {
    throw new Error("the picture is not valid SVG");
  }
  for (const bad of root.querySelectorAll("script, foreignObject, iframe, object, embed")) {
    bad.remove();
  }
  for (const node of [root, ...root.querySelectorAll("*")]) {
    for (const attr of [...node.attributes]) {
      const value = attr.value.trim().toLowerCase();
      if (attr.name.toLowerCase().startsWith("on") || value.startsWith("javascript:")) {
        node.removeAttribute(attr.name);
      }
    }
  }
  return document.importNode(root, true);
}

/** Outline the nodes of the pictured flow where callers are now, and list them. */
function markCallers() {
  const box = $("flow-picture");
  const flow = state.picture.flow;
  const here = new Map();
  for (const call of state.live) {
    if (call.flow === flow && call.node) here.set(call.node, (here.get(call.node) || 0) + 1);
  }
  for (const g of box.querySelectorAll("g.node")) g.classList.remove("has-callers");
  for (const node of here.keys()) {
    box.querySelector(`#${CSS.escape(`ivr-node-${node}`)}`)?.classList.add("has-callers");
  }
  $("picture-callers").textContent = !flow ? "" : here.size
    ? `Callers now: ${[...here].map(([n, c]) => `${n} (${c})`).join(", ")}`
    : "No callers in this flow now.";
}

function initPicture() {
  $("flow-select").addEventListener("change", () => showPicture());
  const toggle = $("picture-size");
  toggle.addEventListener("click", () => {
    const actual = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", String(actual));
    $("flow-picture").classList.toggle("actual", actual);
  });
}

// --- validate -------------------------------------------------------------------------------

const validation = { lines: new Set(), warned: new Set() }; // lines with errors / warnings

function renderGutter() {
  const text = $("yaml-text").value;
  const n = Math.max(1, text.split("\n").length);
  const gutter = $("yaml-gutter");
  const parts = [];
  for (let i = 1; i <= n; i++) {
    const mark = validation.lines.has(i) ? "err" : validation.warned.has(i) ? "warn" : null;
    parts.push(mark ? el("span", { class: mark }, String(i)) : String(i));
    parts.push("\n");
  }
  gutter.replaceChildren(...parts);
  gutter.scrollTop = $("yaml-text").scrollTop;
}

function selectLine(line) {
  const area = $("yaml-text");
  const lines = area.value.split("\n");
  const index = Math.min(Math.max(line, 1), lines.length) - 1;
  const start = lines.slice(0, index).reduce((sum, l) => sum + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + lines[index].length);
  const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 20;
  area.scrollTop = Math.max(0, index * lineHeight - area.clientHeight / 3);
  renderGutter();
}

async function validate(event) {
  event.preventDefault();
  const result = $("validate-result");
  const list = $("validate-errors");
  const text = $("yaml-text").value;
  result.className = "";
  result.textContent = "Checking…";
  list.replaceChildren();
  let data;
  try {
    const response = await request("/api/validate", {
      method: "POST", body: text, headers: { "Content-Type": "application/yaml; charset=utf-8" },
    });
    try {
      data = await response.json();
    } catch {
      throw new ApiError("/api/validate", `HTTP ${response.status}: the answer is not JSON`);
    }
    if (typeof data?.ok !== "boolean") {
      throw new ApiError("/api/validate", `HTTP ${response.status}: unexpected answer`);
    }
  } catch (err) {
    result.className = "bad";
    result.textContent = `Could not validate: ${err.message}`;
    return;
  }
  const errors = Array.isArray(data.errors) ? data.errors : [];
  const warnings = Array.isArray(data.warnings) ? data.warnings : [];
  const lines = (found) => new Set(found.map((e) => e.line).filter((l) => l > 0));
  validation.lines = lines(errors);
  validation.warned = lines(warnings);
  renderGutter();
  const warned = warnings.length === 1 ? "1 warning" : `${warnings.length} warnings`;
  if (data.ok && !errors.length) {
    result.className = "ok";
    result.textContent = "No errors: this flow is valid." + (warnings.length ? ` ${warned}:` : "");
  } else {
    result.className = "bad";
    result.textContent = (errors.length === 1 ? "1 error" : `${errors.length} errors`) +
      (warnings.length ? ` and ${warned}:` : ":");
  }
  list.replaceChildren(...[...errors, ...warnings].map((e) => el("li", {
    "data-line": e.line || null, class: e.severity === "warning" ? "warning" : null,
  },
  e.severity === "warning" ? el("span", { class: "pill pill-warn" }, "warning") : "",
  e.line > 0
    ? el("button", { type: "button", class: "line", "data-line": e.line,
      "aria-label": `Go to line ${e.line}` }, `line ${e.line}`)
    : el("span", { class: "pill pill-muted" }, "whole file"),
  e.col ? ` col ${e.col}` : "",
  e.node ? ` · node '${e.node}'` : "",
  `: ${e.message}`,
  e.fix ? el("span", { class: "fix" }, ` Fix: ${e.fix}`) : "")));
}

async function downloadSchema() {
  try {
    const schema = await getJSON("/api/schema");
    const blob = new Blob([JSON.stringify(schema, null, 1)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: "ivr-flow.schema.json" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    clear("schema");
  } catch (err) {
    report("schema", err);
  }
}

function initValidate() {
  const area = $("yaml-text");
  area.addEventListener("input", renderGutter);
  area.addEventListener("scroll", () => { $("yaml-gutter").scrollTop = area.scrollTop; });
  $("validate-form").addEventListener("submit", validate);
  $("validate-errors").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-line]");
    if (button) selectLine(Number(button.dataset.line));
  });
  $("schema-download").addEventListener("click", downloadSchema);
  renderGutter();
}

// --- start ----------------------------------------------------------------------------------

function start() {
  initRange();
  initPicture();
  initValidate();
  every(LIVE_MS, "calls", loadCalls);
  every(LIVE_MS, "queues", loadQueues);
  every(LIVE_MS, "nodes", loadNodes);
  every(LIVE_MS, "webhooks", loadWebhooks);
  every(SLOW_MS, "kpis", loadKpis);
  every(SLOW_MS, "surveys", loadSurveys);
  every(SLOW_MS, "flows", loadFlows);
  every(SLOW_MS, "messages", loadMessages);
}

start();
