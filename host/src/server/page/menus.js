// The filter menus. Each <select> names its key (`data-key`) and the keys choosing it
// removes (`data-drops`: a method or an app replaces a deprecated `type:`, which cannot be
// combined with them). Their options come from Coder's vocabulary and, for organizations
// and owners, from the API (scoped to what the caller may see).

import { APPS } from "./apps.js";
import { valueOf, withTerm } from "./query.js";
import { METHOD_LABELS } from "./rows.js";

const CUSTOM = "custom";

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

export function menus() {
  return [...document.querySelectorAll("select[data-key]")];
}

/** The methods and the apps: known without asking the server. */
export function fillVocabulary() {
  const method = document.getElementById("menu-method");
  for (const [value, label] of Object.entries(METHOD_LABELS)) method.append(option(value, label));
  const app = document.getElementById("menu-app");
  const sorted = [...APPS].sort((a, b) => a[1].localeCompare(b[1]));
  for (const [value, label] of sorted) app.append(option(value, label));
}

/** Organizations and owners, from `/organizations` and `/users`. */
export async function fillDirectory(getJSON) {
  const [orgs, users] = await Promise.all([
    getJSON("/api/v2/organizations"),
    getJSON("/api/v2/users?limit=1000"),
  ]);
  const org = document.getElementById("menu-organization");
  for (const o of orgs) org.append(option(o.name, o.display_name || o.name));
  const owner = document.getElementById("menu-owner");
  for (const u of users.users) owner.append(option(u.username, u.username));
  // Organizations matter only when there are several (Coder shows the menu then).
  org.closest("label").hidden = orgs.length < 2;
}

/** Shows `q`'s values in the menus; a value no option has is shown as typed. */
export function syncMenus(q) {
  for (const select of menus()) {
    const value = valueOf(q, select.dataset.key).toLowerCase();
    select.querySelector(`option[data-${CUSTOM}]`)?.remove();
    const known = [...select.options].some((o) => o.value.toLowerCase() === value);
    if (!known) {
      const custom = option(value, value);
      custom.dataset[CUSTOM] = "";
      select.append(custom);
    }
    for (const o of select.options) o.selected = o.value.toLowerCase() === value;
  }
}

/** `q` after `select` changed. */
export function chosen(select, q) {
  const drops = (select.dataset.drops || "").split(" ").filter(Boolean);
  return withTerm(q, select.dataset.key, select.value, drops);
}
