// Calls to the admin API, with the bearer token when the server asks for one.
//
// When a request is answered 401, the page shows the small token form (#auth) and the request
// is sent again once a token is entered. The token lives in sessionStorage only: it is gone
// when the tab closes, and never written to localStorage or a cookie.
//
// The server counts refused tokens per address (10 a minute, then 429 with Retry-After), so a
// token it has not accepted yet is tried by ONE request while the others wait for its answer,
// and a refused token is never sent again: one wrong entry is one refused token.
//
// A server with no admin token set answers every read 403: nothing entered here could open it,
// so the form says so (and how to open it) instead, and the reads wait. Each change of the
// sign-in state is an "ivr-session" event on document (session.js shows it).

const TOKEN_KEY = "ivr-admin-token";

/** An API call that did not give a usable answer. */
export class ApiError extends Error {
  constructor(path, message, status = 0) {
    super(`${path}: ${message}`);
    this.name = "ApiError";
    this.path = path;
    this.status = status;
  }
}

let pendingToken = null; // one prompt for every request that got a 401 meanwhile
let memoryToken = ""; // when sessionStorage is disabled
let trial = null; // a request trying a token not accepted yet: the others wait for it
let acceptedToken = ""; // the last token the server took
let refusedToken = ""; // the last token the server refused: not sent again
let refusal = ""; // and why, for the token form
let answered = false; // the server has given this page something: its panels have data
let closed = null; // the server has no token set: every read waits on this (forever)

/** Tell the page (session.js) where the sign-in stands: "asking", "signed-in", "open",
 * "closed" or "signed-out". */
function announce(state) {
  document.dispatchEvent(new CustomEvent("ivr-session", {
    detail: { state, answered, token: Boolean(currentToken()) },
  }));
}

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage disabled: ask every time
  }
}

function storeToken(token) {
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* storage disabled: the token lasts as long as this page */
  }
  memoryToken = token;
}

function currentToken() {
  return storedToken() || memoryToken;
}

const ASK = "The server asks for the admin token. It is kept for this browser tab only.";
const REFUSED = "That token was refused. Enter the admin token again.";

/** Show the token form with `message` and resolve with what the user enters. */
function askForToken(message) {
  const form = document.getElementById("auth");
  const input = document.getElementById("auth-token");
  document.getElementById("auth-message").textContent = message;
  if (pendingToken) return pendingToken;
  form.hidden = false;
  announce("asking");
  input.value = "";
  input.focus();
  pendingToken = new Promise((resolve) => {
    form.addEventListener("submit", function onSubmit(event) {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      form.removeEventListener("submit", onSubmit);
      storeToken(token);
      refusedToken = ""; // entered again (after a lock-out, say): worth one more try
      form.hidden = true;
      pendingToken = null;
      announce("trying");
      resolve(token);
    });
  });
  return pendingToken;
}

const CLOSED = "This console is closed: the server has no admin token, so it shows nothing " +
  "to anyone. Set IVR_ADMIN_TOKEN (or admin.open_read: true for read-only access), restart " +
  "the server and reload this page.";

/** The server has no token to check: say so once, in the form's place, and wait for good. */
function closedConsole() {
  if (!closed) {
    const form = document.getElementById("auth");
    document.getElementById("auth-message").textContent = CLOSED;
    form.classList.add("closed");
    form.hidden = false;
    announce("closed");
    closed = new Promise(() => {}); // only a reload (after a restart) can open it
  }
  return closed;
}

/** Forget the token (this tab's sessionStorage too): the next request asks again. */
export function signOut() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: nothing kept there */
  }
  memoryToken = "";
  acceptedToken = "";
  announce("signed-out");
}

/** The server's answer to too many refused tokens from this address. */
function isLockout(response) {
  return response.status === 429 && response.headers.has("WWW-Authenticate");
}

function lockoutMessage(response) {
  const wait = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  const when = Number.isFinite(wait) && wait > 0 ? `in ${wait} s` : "in a minute";
  return `Too many refused tokens from this address. Enter the admin token again ${when}.`;
}

/**
 * fetch() against the API, adding `Authorization: Bearer <token>` when one is known and
 * asking for it on a 401 (or a lock-out). Network failures become ApiError.
 */
export async function request(path, options = {}) {
  for (;;) {
    while (trial) await trial; // another request is trying a new token: wait for its answer
    const token = currentToken();
    if (token && token === refusedToken) {
      await askForToken(refusal);
      continue;
    }
    const headers = new Headers(options.headers || {});
    if (token) headers.set("Authorization", `Bearer ${token}`);
    let release = null;
    if (token && token !== acceptedToken) trial = new Promise((resolve) => { release = resolve; });
    let response = null;
    try {
      response = await fetch(path, { ...options, headers, cache: "no-store" });
    } catch (err) {
      throw new ApiError(path, `cannot reach the server (${err.message})`);
    } finally {
      if (response && token) {
        if (response.status === 401 || isLockout(response)) {
          refusedToken = token;
          refusal = isLockout(response) ? lockoutMessage(response) : REFUSED;
        } else if (response.status !== 403 && token !== acceptedToken) {
          acceptedToken = token;
          announce("signed-in");
        }
      }
      if (response && !answered && response.status !== 401 && response.status !== 403 &&
        !isLockout(response)) {
        answered = true;
        announce(token ? "signed-in" : "open");
      }
      if (release) {
        trial = null;
        release();
      }
    }
    const method = (options.method || "GET").toUpperCase();
    if (response.status === 403 && (method === "GET" || method === "HEAD")) {
      await closedConsole(); // a read refused whatever the token: no token is set
    }
    if (response.status !== 401 && !isLockout(response)) return response;
    if (currentToken() !== token) continue; // another request got a new token meanwhile
    await askForToken(token ? refusal : ASK);
  }
}

/** GET (or any method) and parse JSON; a non-2xx answer is an ApiError. */
export async function getJSON(path, options = {}) {
  const response = await request(path, options);
  if (!response.ok) {
    throw new ApiError(path, `HTTP ${response.status} ${response.statusText}`.trim(),
      response.status);
  }
  try {
    return await response.json();
  } catch {
    throw new ApiError(path, "the answer is not JSON");
  }
}

/** GET text (the flow picture); a non-2xx answer is an ApiError. */
export async function getText(path) {
  const response = await request(path);
  if (!response.ok) {
    throw new ApiError(path, `HTTP ${response.status} ${response.statusText}`.trim(),
      response.status);
  }
  return response.text();
}
