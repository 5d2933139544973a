// The Connection Log page: signs in with a pasted token (the server sets an HttpOnly
// cookie), then reads `/api/v2/connectionlog` with Coder's `q`, one page at a time. The
// URL holds the filter, page and page size (`?filter=&page=&size=`), so links can be shared
// and the back button works. Page 1 updates live unless paused. The page only reads: the
// one POSTs sign in and out.

import { fillDirectory, fillVocabulary, chosen, menus, syncMenus } from "./menus.js";
import { terms } from "./query.js";
import { LiveFeed } from "./live.js";
import { describe, newestFirst, timeline } from "./rows.js";

const SIZES = [25, 50, 100];
const LIST_PATH = "/api/v2/connectionlog";
const EXPORT_PATH = "/api/v2/connectionlog/export";
const SIGN_IN_PATH = "/api/v2/users/session-cookie";
const LOGOUT_PATH = "/api/v2/users/logout";
/** Live rows change the count; it is asked again this long after the last one. */
const COUNT_REFRESH_MS = 300;

const $ = (id) => document.getElementById(id);
const number = (n) => n.toLocaleString("en-US");

const state = {
  me: null,
  filter: "",
  page: 1,
  size: SIZES[0],
  rows: [],
  count: 0,
  /** "ok", "invalid" (the filter's 400), "error" or "loading". */
  status: "loading",
  validations: [],
  expanded: new Set(),
  paused: false,
  /** Rows the stream sent while the list request was in flight. */
  pending: null,
  request: 0,
  countTimer: null,
  directoryLoaded: false,
};

const live = new LiveFeed({ onRow: liveRow, onState: liveState });

// ----- the server -----

/** `{status, body}`; status 0 when the server could not be reached. */
async function getJSON(path) {
  try {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    return { status: response.status, body };
  } catch (_) {
    return { status: 0, body: {} };
  }
}

async function getOK(path) {
  const { status, body } = await getJSON(path);
  if (status !== 200) throw new Error(body.message || `HTTP ${status || "unreachable"}`);
  return body;
}

function listURL(q, limit, offset) {
  const params = new URLSearchParams({ q, limit: String(limit), offset: String(offset) });
  return `${LIST_PATH}?${params}`;
}

// ----- the URL -----

function readURL() {
  const params = new URLSearchParams(location.search);
  state.filter = params.get("filter") || "";
  const page = Number.parseInt(params.get("page") || "1", 10);
  state.page = Number.isInteger(page) && page > 0 ? page : 1;
  const size = Number.parseInt(params.get("size") || "", 10);
  state.size = SIZES.includes(size) ? size : SIZES[0];
}

function writeURL() {
  const params = new URLSearchParams();
  if (state.filter) params.set("filter", state.filter);
  if (state.page > 1) params.set("page", String(state.page));
  if (state.size !== SIZES[0]) params.set("size", String(state.size));
  const search = params.toString();
  const url = `${location.pathname}${search ? `?${search}` : ""}`;
  if (url !== `${location.pathname}${location.search}`) history.pushState(null, "", url);
}

// ----- loading -----

/**
 * Loads the current page; `push` records it in the history first. The first load passes
 * the pending `users/me` answer (`me`), so both requests are in flight at once.
 */
async function load({ push = false, me = null } = {}) {
  if (push) writeURL();
  const request = ++state.request;
  state.status = "loading";
  renderFilter();
  $("rows").setAttribute("aria-busy", "true");
  startLive(me !== null);
  const offset = (state.page - 1) * state.size;
  const list = getJSON(listURL(state.filter, state.size, offset));
  if (me) {
    const answer = await me;
    if (answer.status !== 200) return signedOut();
    showSignedIn(answer.body);
  }
  const { status, body } = await list;
  if (request !== state.request) return;
  if (status === 401) return signedOut();
  if (status === 200) {
    state.status = "ok";
    state.rows = body.connection_logs;
    state.count = body.count;
    state.validations = [];
  } else if (status === 400) {
    live.close();
    liveState("off");
    state.status = "invalid";
    state.rows = [];
    state.count = 0;
    state.validations = body.validations && body.validations.length
      ? body.validations.map((v) => v.detail)
      : [body.detail || body.message || "Invalid filter."];
  } else {
    state.status = "error";
    state.rows = [];
  }
  const pending = state.pending || [];
  state.pending = null;
  for (const row of pending) upsert(row);
  render();
}

// ----- live rows -----

function liveAllowed() {
  return state.me && state.page === 1 && state.status !== "invalid";
}

/**
 * Opens the stream before the list is read, keeping its rows until the list is in, so a
 * row written in between is not missed (it is upserted, so one seen twice is one row).
 * `signingIn`: who is signed in is being asked at the same time.
 */
function startLive(signingIn = false) {
  live.close();
  if (!(state.me || signingIn) || state.page !== 1) {
    liveState(state.page === 1 ? "off" : "first-page");
    return;
  }
  if (state.paused) {
    liveState("paused");
    return;
  }
  state.pending = [];
  live.start(state.filter);
}

function liveRow(row) {
  if (state.pending) {
    state.pending.push(row);
    return;
  }
  if (upsert(row)) {
    announce(`New connection log: ${textOf(describe(row))}`);
  }
  renderRows();
  scheduleCountRefresh();
}

/** Puts `row` in place; true when it was not on the page before. */
function upsert(row) {
  const at = state.rows.findIndex((r) => r.id === row.id);
  if (at >= 0) {
    state.rows[at] = row;
    return false;
  }
  const last = state.rows[state.rows.length - 1];
  if (state.rows.length >= state.size && last && newestFirst(row, last) > 0) {
    return false; // older than this page: counted, not shown
  }
  state.rows.push(row);
  state.rows.sort(newestFirst);
  state.rows.length = Math.min(state.rows.length, state.size);
  return true;
}

/** Asks the exact count again once live rows stop arriving for a moment. */
function scheduleCountRefresh() {
  clearTimeout(state.countTimer);
  state.countTimer = setTimeout(async () => {
    const request = state.request;
    const { status, body } = await getJSON(listURL(state.filter, 1, 0));
    // On failure, the next live row or page load asks again.
    if (status === 200 && request === state.request) {
      state.count = body.count;
      renderShowing();
    }
  }, COUNT_REFRESH_MS);
}

const LIVE_TEXT = {
  off: "Live updates off",
  "first-page": "Live updates on page 1 only",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  paused: "Paused",
  unavailable: "Live updates unavailable",
};

function liveState(name) {
  $("live-status").textContent = LIVE_TEXT[name] || name;
  $("live-status").dataset.state = name;
}

function togglePause() {
  state.paused = !state.paused;
  $("pause").setAttribute("aria-pressed", String(state.paused));
  if (state.paused) {
    live.close();
    liveState("paused");
  } else if (!liveAllowed()) {
    startLive();
  } else if (live.position !== null) {
    live.start(state.filter, { fromPosition: true });
  } else {
    load(); // no position known yet: read the page again, then follow
  }
}

// ----- rendering -----

function textOf(parts) {
  return parts.map((p) => (typeof p === "string" ? p : p.textContent)).join("");
}

function announce(text) {
  $("announcer").textContent = text;
}

function render() {
  renderFilter();
  renderRows();
  renderShowing();
}

function renderFilter() {
  const input = $("filter");
  if (document.activeElement !== input || input.value.trim() === state.filter) {
    input.value = state.filter;
  }
  const errors = $("filter-errors");
  errors.replaceChildren(
    ...state.validations.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
  input.setAttribute("aria-invalid", String(state.validations.length > 0));
  $("deprecation").hidden = !terms(state.filter).some((t) => t.key === "type" && t.value !== "");
  syncMenus(state.filter);
  const q = new URLSearchParams({ q: state.filter });
  $("download-csv").href = `${EXPORT_PATH}?${q}&format=csv`;
  $("download-ndjson").href = `${EXPORT_PATH}?${q}&format=ndjson`;
  $("size").value = String(state.size);
}

function renderRows() {
  const container = $("rows");
  // Keep the focused control across a re-render (a live row arriving, say).
  const focused = document.activeElement;
  const focusedRow = container.contains(focused) ? focused.dataset.rowId : undefined;
  let content;
  if (state.status === "error") {
    content = message("An error occurred while loading connection logs", "error");
  } else if (state.status === "invalid" || state.status === "loading") {
    content = document.createTextNode("");
  } else if (state.rows.length === 0) {
    content = message(
      state.page > 1 ? "No connection logs available on this page" : "No connection logs available",
      "empty",
    );
  } else {
    content = timeline(state.rows, state.expanded);
  }
  container.replaceChildren(content);
  container.setAttribute("aria-busy", String(state.status === "loading"));
  if (focusedRow) container.querySelector(`button[data-row-id="${CSS.escape(focusedRow)}"]`)?.focus();
}

function message(text, kind) {
  const p = document.createElement("p");
  p.className = `state ${kind}`;
  p.textContent = text;
  return p;
}

function renderShowing() {
  const offset = (state.page - 1) * state.size;
  const pages = Math.max(1, Math.ceil(state.count / state.size));
  let text = "";
  if (state.status === "ok") {
    if (state.count === 0) {
      text = "No records available";
    } else if (state.rows.length > 0) {
      const end = Math.min(offset + state.size, state.count, offset + state.rows.length);
      text = `Showing ${number(offset + 1)} to ${number(end)} of ${number(state.count)} logs`;
    }
  }
  $("showing").textContent = text;
  $("page-of").textContent = state.status === "ok" ? `Page ${number(state.page)} of ${number(pages)}` : "";
  $("prev").disabled = state.page <= 1;
  $("next").disabled = state.status !== "ok" || offset + state.size >= state.count;
}

// ----- signing in and out -----

function showSignedIn(me) {
  state.me = me;
  $("sign-in").hidden = true;
  $("log").hidden = false;
  $("account").hidden = false;
  const roles = [...new Set(me.roles.map((r) => r.display_name || r.name))];
  const who = $("who");
  const name = document.createElement("strong");
  name.textContent = me.username;
  who.replaceChildren("Signed in as ", name, ` (${roles.length ? roles.join(", ") : "Member"})`);
  if (!state.directoryLoaded) {
    state.directoryLoaded = true;
    fillDirectory(getOK).catch(() => {
      state.directoryLoaded = false;
    });
  }
}

function signedOut() {
  live.close();
  state.me = null;
  state.rows = [];
  state.request++;
  $("log").hidden = true;
  $("account").hidden = true;
  $("sign-in").hidden = false;
  liveState("off");
  $("token").focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  const error = $("sign-in-error");
  error.textContent = "";
  let response;
  try {
    response = await fetch(SIGN_IN_PATH, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ session_token: token }),
    });
  } catch (_) {
    error.textContent = "The server could not be reached.";
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (response.status !== 200) {
    error.textContent = [body.message, body.detail].filter(Boolean).join(" ") || `HTTP ${response.status}`;
    return;
  }
  $("token").value = "";
  showSignedIn(body);
  $("main").focus();
  load();
}

async function signOut() {
  await fetch(LOGOUT_PATH, { method: "POST", credentials: "same-origin" }).catch(() => {});
  signedOut();
}

// ----- theme -----

function effectiveTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function renderTheme() {
  $("theme-toggle").setAttribute("aria-pressed", String(effectiveTheme() === "dark"));
}

function toggleTheme() {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  try {
    localStorage.setItem("connlog-theme", next);
  } catch (_) {
    // Not remembered; still applied.
  }
  renderTheme();
}

// ----- wiring -----

function go(changes) {
  Object.assign(state, changes);
  load({ push: true });
}

function wire() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("theme-toggle").addEventListener("click", toggleTheme);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", renderTheme);
  $("filter-form").addEventListener("submit", (e) => {
    e.preventDefault();
    go({ filter: $("filter").value.trim(), page: 1 });
  });
  for (const select of menus()) {
    select.addEventListener("change", () => go({ filter: chosen(select, state.filter), page: 1 }));
  }
  for (const button of document.querySelectorAll("button[data-preset]")) {
    button.addEventListener("click", () => go({ filter: button.dataset.preset, page: 1 }));
  }
  $("prev").addEventListener("click", () => go({ page: Math.max(1, state.page - 1) }));
  $("next").addEventListener("click", () => go({ page: state.page + 1 }));
  $("size").addEventListener("change", () => go({ size: Number($("size").value), page: 1 }));
  $("pause").addEventListener("click", togglePause);
  $("rows").addEventListener("click", (e) => {
    const button = e.target.closest("button.disclosure");
    if (!button) return;
    const id = button.dataset.rowId;
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    $(button.getAttribute("aria-controls")).hidden = !open;
    if (open) state.expanded.add(id);
    else state.expanded.delete(id);
  });
  addEventListener("popstate", () => {
    readURL();
    if (state.me) load();
  });
}

async function start() {
  fillVocabulary();
  wire();
  renderTheme();
  readURL();
  renderFilter();
  // Who is signed in and the first page, at once: one request each.
  await load({ me: getJSON("/api/v2/users/me") });
}

start();
