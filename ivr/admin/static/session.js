// Signing in and out, as the page shows it. api.js asks for the token (the #auth form) and
// announces each change with an "ivr-session" event; this module shows it: until the server
// has answered anything, the panels stay hidden behind the form (no empty tables, no red
// errors), and once a token is accepted, "Sign out" forgets it (this tab's sessionStorage)
// and reloads the page, which asks again.

import { signOut } from "./api.js";

const $ = (id) => document.getElementById(id);

function show({ state, answered, token }) {
  const body = document.body;
  body.dataset.session = state;
  body.classList.toggle("locked", !answered && ["asking", "trying", "closed"].includes(state));
  $("sign-out").hidden = !(token && state === "signed-in");
}

document.addEventListener("ivr-session", (event) => show(event.detail));
$("sign-out").addEventListener("click", () => {
  signOut();
  window.location.reload();
});
