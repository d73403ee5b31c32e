// The Webhooks panel: the outbox's counts and the events that could not be delivered
// (GET /api/webhooks?status=failed), newest first, with the receiver's last answer.

import { getJSON } from "./api.js";
import { count, el, fillRows, when } from "./format.js";

/** Fetch the counts and failed events and fill the panel. */
export async function loadWebhooks() {
  const data = await getJSON("/api/webhooks?status=failed&limit=50");
  const counts = data.counts || {};
  renderWebhooks(counts, Array.isArray(data.events) ? data.events : []);
}

function renderWebhooks(counts, failed) {
  const pending = Number(counts.pending) || 0;
  const lost = Number(counts.failed) || 0;
  const pill = document.getElementById("webhooks-count");
  pill.textContent = `${count(pending)} waiting · ${count(lost)} failed`;
  pill.className = `pill ${lost ? "pill-bad" : pending ? "pill-warn" : "pill-good"}`;
  pill.title = `${count(Number(counts.sent) || 0)} sent in the last 7 days`;
  fillRows(document.getElementById("webhook-table").tBodies[0], failed.map((e) =>
    el("tr", { "data-event": e.id, class: "warn" },
      el("td", {}, when(e.created_at)),
      el("th", { scope: "row" }, el("code", {}, e.event || "–")),
      el("td", { class: "mono" }, e.call_id || "–"),
      el("td", { class: "num" }, count(e.attempts)),
      el("td", {}, e.last_error || "–"))),
  5, "No webhook has failed.");
}
