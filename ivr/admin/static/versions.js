// The Versions panel: every published version of a flow, newest first (GET
// /api/flows/{name}/versions), with who published it, why, and the calls that ran it; a diff
// view (GET /api/flows/{name}/diff?from=&to=, each version against the one before it) and
// Roll back (POST /api/flows/{name}/rollback, after a confirm dialog). A rollback goes through
// the server's checked reload: a version that no longer loads is refused with its errors.
//
// A module of its own (index.html loads it): it starts itself and refreshes every minute.

import { getJSON, request } from "./api.js";
import { count, el, fillRows, when } from "./format.js";

const REFRESH_MS = 60000;
const $ = (id) => document.getElementById(id);

let flows = []; // flow names, as /api/flows lists them
let shown = null; // the versions answer on screen

async function loadFlowNames() {
  const data = await getJSON("/api/flows");
  const names = (Array.isArray(data.flows) ? data.flows : []).map((f) => f.name);
  const select = $("versions-flow");
  if (names.join() !== flows.join()) {
    const keep = select.value;
    flows = names;
    select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (names.includes(keep)) select.value = keep;
  }
}

/** Fetch the chosen flow's versions and fill the table. */
async function loadVersions() {
  const name = $("versions-flow").value;
  if (!name) {
    fillRows($("versions-table").tBodies[0], [], 7, "No flows loaded.");
    return;
  }
  shown = await getJSON(`/api/flows/${encodeURIComponent(name)}/versions`);
  const versions = Array.isArray(shown.versions) ? shown.versions : [];
  $("versions-current").textContent = shown.current ? `serving ${shown.current}` : "not loaded";
  fillRows($("versions-table").tBodies[0], versions.map((v, i) => {
    const previous = versions.slice(i + 1).find((p) => p.version !== v.version);
    const diff = el("button", { type: "button", class: "link-button", "data-diff": v.id },
      "Diff");
    diff.disabled = !previous;
    diff.title = previous ? `Changes from #${previous.id} to #${v.id}` : "Nothing before it";
    diff.addEventListener("click", () => showDiff(name, previous, v));
    const back = el("button", { type: "button", "data-rollback": v.id }, "Roll back");
    back.disabled = v.version === shown.current;
    back.title = back.disabled ? "This version is serving" : `Publish ${v.version} again`;
    back.addEventListener("click", () => rollback(name, v));
    return el("tr", { "data-version": v.id, class: v.current ? "current" : "" },
      el("th", { scope: "row", class: "num" }, `#${v.id}`),
      el("td", { class: "mono" }, v.version, v.current ? el("span", { class: "pill pill-good" },
        "serving") : null),
      el("td", {}, when(v.published_at)),
      el("td", {}, v.published_by || "–"),
      el("td", {}, v.reason || "–"),
      el("td", { class: "num" }, count(v.calls)),
      el("td", { class: "actions" }, diff, " ", back));
  }), 7, "No versions stored yet.");
}

async function showDiff(name, from, to) {
  const query = new URLSearchParams({ from: String(from.id), to: String(to.id) });
  const data = await getJSON(`/api/flows/${encodeURIComponent(name)}/diff?${query}`);
  $("versions-diff-title").textContent = `${name}: #${from.id} ${from.version} → ` +
    `#${to.id} ${to.version}`;
  const lines = (data.diff || "(the same text)\n").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  $("versions-diff").replaceChildren(...lines.map((line) => {
    const kind = line.startsWith("+++") || line.startsWith("---") ? "file"
      : line.startsWith("+") ? "add" : line.startsWith("-") ? "del"
        : line.startsWith("@@") ? "hunk" : "same";
    return el("span", { class: `diff-${kind}` }, `${line}\n`);
  }));
  $("versions-diff-view").hidden = false;
}

async function rollback(name, version) {
  const ok = window.confirm(`Roll ${name} back to version #${version.id} (${version.version})?` +
    "\n\nNew calls get it at once; calls in progress keep their version.");
  if (!ok) return;
  const status = $("versions-status");
  status.className = "";
  status.textContent = `Rolling ${name} back to ${version.version}…`;
  const response = await request(`/api/flows/${encodeURIComponent(name)}/rollback`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ version: String(version.id), by: "dashboard" }),
  });
  let body = {};
  try {
    body = await response.json();
  } catch {
    /* not JSON: the status says enough */
  }
  const errors = $("versions-errors");
  errors.replaceChildren(...(Array.isArray(body.errors) ? body.errors : []).map((e) =>
    el("li", {}, `${e.file || ""}${e.line ? `:${e.line}` : ""}: ${e.message}`)));
  if (response.ok) {
    status.className = "good";
    status.textContent = `${name} now serves ${body.rolled_back_to}.`;
  } else {
    status.className = "bad";
    status.textContent = body.error || `Rollback refused (HTTP ${response.status}).`;
  }
  await loadVersions();
}

async function refresh() {
  try {
    await loadFlowNames();
    await loadVersions();
    $("versions-problem").hidden = true;
  } catch (err) {
    $("versions-problem").textContent = `Versions: ${err.message}`;
    $("versions-problem").hidden = false;
  }
}

function start() {
  $("versions-flow").addEventListener("change", () => {
    $("versions-diff-view").hidden = true;
    refresh();
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
}

start();
