// The Nodes panel: the ivr servers sharing this console's database, as their last heartbeats
// left them (GET /api/nodes), with the one serving this page marked.

import { getJSON } from "./api.js";
import { ago, count, el, fillRows, toDate } from "./format.js";

/**
 * A node this long without a heartbeat (seconds) is "silent": the dialler's takeover threshold
 * (ivr/outbound/dialer.py `dead_after_s`), past which the other nodes take over its calls.
 */
const SILENT_S = 30;

const STATES = {
  up: ["up", "pill-good", "Heartbeat within the last 30 s"],
  silent: ["silent", "pill-bad",
    "No heartbeat for over 30 s: the other nodes take over its outbound calls"],
};

/** Fetch the nodes and fill the panel; ages are from this browser's clock, like live calls'. */
export async function loadNodes() {
  const data = await getJSON("/api/nodes");
  const nodes = Array.isArray(data.nodes) ? data.nodes : [];
  renderNodes(nodes, typeof data.self === "string" ? data.self : null, Date.now() / 1000);
}

function renderNodes(nodes, self, now) {
  const rows = nodes.map((node) => {
    const beat = toDate(node.beat_at);
    // the node serving this page is up: it just answered (on SQLite, one node, it beats
    // only at start-up, so its row's beat is old)
    const fresh = node.id === self || (beat && now - beat.getTime() / 1000 <= SILENT_S);
    return { node, beat, started: toDate(node.started_at), state: fresh ? "up" : "silent" };
  });
  const up = rows.filter((r) => r.state === "up").length;
  const pill = document.getElementById("nodes-count");
  pill.textContent = `${up} of ${rows.length} up`;
  pill.className = `pill ${!rows.length ? "pill-muted"
    : up === rows.length ? "pill-good" : "pill-warn"}`;
  fillRows(document.getElementById("node-table").tBodies[0], rows.map((r) => {
    const [label, cls, why] = STATES[r.state];
    const mine = self !== null && r.node.id === self;
    return el("tr", { "data-node": r.node.id, "data-state": r.state,
      class: r.state === "up" ? null : "warn", "aria-current": mine ? "true" : null },
      el("th", { scope: "row" }, el("code", {}, r.node.id || "–"),
        mine ? [" ", el("span", { class: "pill pill-muted" }, "this console")] : null),
      el("td", { class: "mono" }, r.node.version || "–"),
      el("td", { class: "num" }, count(r.node.calls)),
      el("td", { title: r.started ? r.started.toLocaleString("en-GB") : null },
        r.started ? ago(now - r.started.getTime() / 1000) : "–"),
      el("td", { title: r.beat ? r.beat.toLocaleString("en-GB") : null },
        r.beat ? ago(now - r.beat.getTime() / 1000) : "–"),
      el("td", {}, el("span", { class: `pill ${cls}`, title: why }, label)));
  }), 6, "No node has reported a heartbeat yet.");
}
