// Calls to the admin API, with the bearer token when the server asks for one.
//
// When a request is answered 401, the page shows the small token form (#auth) and the request
// is sent again once a token is entered. The token lives in sessionStorage only: it is gone
// when the tab closes, and never written to localStorage or a cookie.

const TOKEN_KEY = "ivr-admin-token";
const MAX_TRIES = 4;

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

/** Show the token form and resolve with what the user enters. */
function askForToken(refused) {
  if (pendingToken) return pendingToken;
  const form = document.getElementById("auth");
  const input = document.getElementById("auth-token");
  const message = document.getElementById("auth-message");
  message.textContent = refused
    ? "That token was refused. Enter the admin token again."
    : "The server asks for the admin token. It is kept for this browser tab only.";
  form.hidden = false;
  input.value = "";
  input.focus();
  pendingToken = new Promise((resolve) => {
    form.addEventListener("submit", function onSubmit(event) {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      form.removeEventListener("submit", onSubmit);
      storeToken(token);
      form.hidden = true;
      pendingToken = null;
      resolve(token);
    });
  });
  return pendingToken;
}

/**
 * fetch() against the API, adding `Authorization: Bearer <token>` when one is known and
 * asking for it on a 401. Network failures become ApiError.
 */
export async function request(path, options = {}) {
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const token = currentToken();
    const headers = new Headers(options.headers || {});
    if (token) headers.set("Authorization", `Bearer ${token}`);
    let response;
    try {
      response = await fetch(path, { ...options, headers, cache: "no-store" });
    } catch (err) {
      throw new ApiError(path, `cannot reach the server (${err.message})`);
    }
    if (response.status !== 401) return response;
    if (currentToken() !== token) continue; // another request got a new token meanwhile
    await askForToken(Boolean(token));
  }
  throw new ApiError(path, "the admin token was refused", 401);
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
