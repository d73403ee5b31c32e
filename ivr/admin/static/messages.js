// The Messages panel: what callers left at record nodes (GET /api/messages), newest first,
// with a player and "Mark heard" (POST /api/messages/{id}/heard).
//
// The audio needs the admin token even when reads are open, and an <audio src> cannot send
// it: "Play" fetches the WAV through api.js (with the token) and plays it from a blob: URL
// (the page's Content-Security-Policy allows media from blob: only).

import { getJSON, request } from "./api.js";
import { count, el, fillRows, seconds, when } from "./format.js";

const players = new Map(); // message id -> its <audio>, kept across refreshes

/** Fetch the messages and fill the panel. */
export async function loadMessages() {
  const data = await getJSON("/api/messages?limit=50");
  renderMessages(Number(data.unheard) || 0, Array.isArray(data.messages) ? data.messages : []);
}

function renderMessages(unheard, messages) {
  const pill = document.getElementById("messages-count");
  pill.textContent = `${count(unheard)} not heard`;
  pill.className = `pill ${unheard ? "pill-warn" : "pill-good"}`;
  fillRows(document.getElementById("message-table").tBodies[0], messages.map((m) => {
    const heard = m.heard_at !== null && m.heard_at !== undefined;
    const mark = el("button", { type: "button", class: "link", "data-heard": m.id },
      heard ? "Heard" : "Mark heard");
    mark.disabled = heard;
    mark.addEventListener("click", () => markHeard(m.id, mark));
    const play = el("button", { type: "button", class: "link", "data-play": m.id }, "Play");
    const cell = el("td", { class: "player" }, players.get(m.id) || play);
    play.addEventListener("click", () => playMessage(m.id, cell, play));
    return el("tr", { "data-message": m.id, class: heard ? "" : "warn" },
      el("td", {}, when(m.created_at)),
      el("th", { scope: "row", class: "mono" }, m.caller || "–"),
      el("td", {}, `${m.flow} · ${m.node}`),
      el("td", { class: "num" }, seconds(m.duration_s)),
      el("td", {}, m.language || "–"),
      el("td", {}, m.transcript || "–"),
      cell,
      el("td", {}, mark));
  }), 8, "No messages.");
}

async function playMessage(id, cell, button) {
  button.disabled = true;
  try {
    const response = await request(`/api/messages/${encodeURIComponent(id)}/audio`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const audio = el("audio", { controls: "", preload: "auto", "data-audio": id });
    audio.src = URL.createObjectURL(await response.blob());
    players.set(id, audio);
    cell.replaceChildren(audio);
    await audio.play().catch(() => {}); // autoplay may be refused: the controls remain
  } catch (err) {
    cell.replaceChildren(el("span", { class: "bad" }, `cannot play (${err.message})`));
  }
}

async function markHeard(id, button) {
  button.disabled = true;
  const response = await request(`/api/messages/${encodeURIComponent(id)}/heard`, {
    method: "POST",
  });
  if (!response.ok) {
    button.disabled = false;
    return;
  }
  await loadMessages();
}
