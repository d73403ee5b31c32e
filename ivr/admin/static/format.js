// Formatting helpers and a tiny DOM builder (text only: API data never becomes HTML).

export const NA = "n/a";

/** 0..1 rate as "75.0 %"; null/undefined/NaN as "n/a". */
export function percent(rate) {
  if (rate === null || rate === undefined || Number.isNaN(Number(rate))) return NA;
  return `${(Number(rate) * 100).toFixed(1)} %`;
}

/** A count with thousands separators; missing as "n/a". */
export function count(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return NA;
  return Number(n).toLocaleString("en-GB");
}

/** Seconds as "45 s", "2 min 05 s", "1 h 02 min"; missing as "n/a". */
export function seconds(s) {
  if (s === null || s === undefined || Number.isNaN(Number(s))) return NA;
  const total = Math.max(0, Math.round(Number(s)));
  if (total < 60) return `${total} s`;
  const m = Math.floor(total / 60);
  if (m < 60) return `${m} min ${String(total % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** A running call's age as "m:ss" / "h:mm:ss". */
export function clock(s) {
  const total = Math.max(0, Math.floor(s));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** Seconds elapsed as "12 s ago", "5 min ago", "2 h ago", "3 d ago" (rounded down; a
 * moment in the future, from a clock ahead of this one, is "0 s ago"); missing as "n/a". */
export function ago(s) {
  if (s === null || s === undefined || Number.isNaN(Number(s))) return NA;
  const total = Math.max(0, Math.floor(Number(s)));
  if (total < 60) return `${total} s ago`;
  if (total < 3600) return `${Math.floor(total / 60)} min ago`;
  if (total < 2 * 86400) return `${Math.floor(total / 3600)} h ago`;
  return `${Math.floor(total / 86400)} d ago`;
}

/** Unix seconds (or an ISO string) as a Date, or null. */
export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

const TIME = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit",
  second: "2-digit" });
const DAY_TIME = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short",
  hour: "2-digit", minute: "2-digit" });

/** "14:05:09" today, "28 Nov, 14:05" before. */
export function when(value) {
  const d = toDate(value);
  if (!d) return "–";
  const today = new Date();
  return d.toDateString() === today.toDateString() ? TIME.format(d) : DAY_TIME.format(d);
}

/** YYYY-MM-DD of a Date in this browser's time zone. */
export function isoDay(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/**
 * Build an element: el("td", {class: "num"}, "12", child...). Strings become text nodes;
 * attributes are set with setAttribute (so nothing is ever parsed as HTML).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a tbody's rows; with no rows, one row saying `empty` across `columns`. */
export function fillRows(tbody, rows, columns, empty) {
  tbody.replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { class: "empty", colspan: columns }, empty))]));
}
