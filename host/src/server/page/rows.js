// A page of connection-log rows as Coder's dashboard shows them (spec §9): a timeline
// grouped by the local date of `connect_time`, each row with its avatar, the sentence for its
// connection method, times, duration, status badge and details on demand. Every value goes
// into the DOM as text.

import { parseUserAgent } from "./agent.js";
import { monogram, networkIcon } from "./icons.js";

/** Coder's labels (`connectionLogMethodLabels.ts`). */
export const METHOD_LABELS = {
  ssh: "SSH",
  reconnecting_pty: "Web Terminal",
  workspace_app: "Workspace App",
  port_forwarding: "Port Forwarding",
  tunnel: "Tunnel",
};

function el(tag, className, ...children) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  e.append(...children);
  return e;
}

function strong(text) {
  return el("strong", "", text);
}

/** Sort key of a row, newest first: `connect_time` to the nanosecond, then `id`. */
export function rowKey(row) {
  const m = /^(.{19})(?:\.(\d+))?Z$/.exec(row.connect_time || "");
  const time = m ? m[1] + (m[2] || "").padEnd(9, "0") : row.connect_time || "";
  return `${time} ${row.id}`;
}

export function newestFirst(a, b) {
  const ka = rowKey(a);
  const kb = rowKey(b);
  return ka < kb ? 1 : ka > kb ? -1 : 0;
}

/** Whose workspace, as the sentence says it: "their" or "alice's". */
function whose(row, username) {
  return username && username === row.workspace_owner_username
    ? "their"
    : `${row.workspace_owner_username}'s`;
}

/** Coder's `ConnectionLogDescription`, per connection method. */
export function describe(row) {
  const parts = [];
  const web = row.web_info;
  const user = web && web.user ? web.user.username : "";
  const workspace = [strong(row.workspace_name), " workspace"];
  switch (row.connection_method) {
    case "workspace_app":
    case "port_forwarding": {
      if (!web) break;
      const isApp = row.connection_method === "workspace_app";
      const [present, past] = isApp ? ["open", "opened"] : ["access", "accessed"];
      const target = isApp ? [strong(web.slug_or_port)] : ["port ", strong(web.slug_or_port)];
      const code = web.status_code;
      const action =
        code === 303
          ? `was redirected attempting to ${present}`
          : code >= 400
            ? `unsuccessfully attempted to ${present}`
            : past;
      parts.push(user || "Unauthenticated user", ` ${action} `, ...target);
      parts.push(` in ${whose(row, user)} `, ...workspace);
      return parts;
    }
    case "tunnel": {
      const code = web ? web.status_code : 0;
      const action = code >= 400 ? "was denied a tunnel to" : "established a tunnel to";
      parts.push(user || "Unknown user", ` ${action} ${whose(row, user)} `, ...workspace);
      return parts;
    }
    default:
      break;
  }
  const label = METHOD_LABELS[row.connection_method] || row.connection_method;
  const app = row.app_display_name || row.app_name;
  if (app) {
    parts.push(app, " ", el("span", "secondary", `(${label})`));
  } else {
    parts.push(label);
  }
  parts.push(` session to ${row.workspace_owner_username}'s `, ...workspace);
  return parts;
}

/** `{code, label}` of the status badge, or null: Coder's `status_code ?? exit_code`. */
export function badgeOf(row) {
  if (row.web_info) {
    return { code: row.web_info.status_code, label: "HTTP Status Code", ok: row.web_info.status_code < 400 };
  }
  const code = row.ssh_info ? row.ssh_info.exit_code : undefined;
  if (code === undefined || code === null) return null;
  return { code, label: "SSH Exit Code", ok: code === 0 };
}

/** "1h 5m", "3m 2s", "12s". */
export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

function timeElement(iso, withDate) {
  const t = el("time");
  t.dateTime = iso;
  const date = new Date(iso);
  t.textContent = withDate ? date.toLocaleString() : date.toLocaleTimeString();
  return t;
}

function sameDay(a, b) {
  return a.toDateString() === b.toDateString();
}

/** The local day a group of rows is headed with. */
export function dayLabel(date, now = new Date()) {
  if (sameDay(date, now)) return "Today";
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(date, yesterday)) return "Yesterday";
  return date.toLocaleDateString(undefined, {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
  });
}

function appName(row) {
  if (row.app_display_name || row.app_name) return row.app_display_name || row.app_name;
  if (row.connection_method === "workspace_app" && row.web_info) return row.web_info.slug_or_port;
  return "";
}

function details(row, id) {
  const web = row.web_info;
  const ssh = row.ssh_info;
  const agent = parseUserAgent(web ? web.user_agent : "");
  const org = row.organization || {};
  const items = [
    ["IP", row.ip],
    ["Browser", agent.browser],
    ["OS", agent.os],
    ["User agent", web ? web.user_agent : ""],
    ["Organization", org.display_name || org.name],
    ["Workspace", `${row.workspace_owner_username}/${row.workspace_name}`],
    ["Agent", row.agent_name],
    ["Close Reason", ssh ? ssh.disconnect_reason : ""],
    ["Connection ID", ssh ? ssh.connection_id : ""],
    ["Client session ID", ssh ? ssh.client_session_id : ""],
    ["Row ID", row.id],
  ];
  const dl = el("dl", "details");
  dl.id = id;
  dl.hidden = true;
  for (const [name, value] of items) {
    if (!value) continue;
    dl.append(el("div", "detail", el("dt", "", `${name}:`), el("dd", "", String(value))));
  }
  return dl;
}

/** One row's element. `expanded` says whether its details are open. */
export function rowElement(row, expanded) {
  const li = el("li", "row");
  li.dataset.testid = `connection-log-row-${row.id}`;
  li.dataset.id = row.id;
  const user = row.web_info && row.web_info.user;
  const avatar = user && user.username
    ? monogram(user.username, { round: true, label: user.username })
    : networkIcon({ label: "" });
  const app = appName(row);
  const description = el("p", "description", ...describe(row));
  const label = METHOD_LABELS[row.connection_method] || row.connection_method;
  const meta = el("p", "meta", el("span", "method", label), " · ");
  meta.append(timeElement(row.connect_time, false));
  const ssh = row.ssh_info;
  if (ssh && ssh.disconnect_time) {
    const start = new Date(row.connect_time);
    const end = new Date(ssh.disconnect_time);
    meta.append(" → ", timeElement(ssh.disconnect_time, !sameDay(start, end)));
    meta.append(" · ", el("span", "duration", formatDuration(end - start)));
  } else if (ssh) {
    meta.append(" → ", el("span", "ongoing", "ongoing"));
  }
  const body = el("div", "row-body", description, meta);
  const side = el("div", "row-side");
  if (app) {
    side.append(el("span", "app", monogram(app, { size: 20 }), el("span", "app-name", app)));
  }
  const badge = badgeOf(row);
  if (badge) {
    const b = el("span", `badge ${badge.ok ? "ok" : "bad"}`, String(badge.code));
    b.title = badge.label;
    b.setAttribute("aria-label", `${badge.label}: ${badge.code}`);
    side.append(b);
  }
  const detailsId = `details-${row.id}`;
  const toggle = el("button", "button ghost small disclosure", "Details");
  toggle.type = "button";
  toggle.setAttribute("aria-controls", detailsId);
  toggle.setAttribute("aria-expanded", "false");
  toggle.dataset.rowId = row.id;
  side.append(toggle);
  const panel = details(row, detailsId);
  if (expanded) {
    panel.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
  }
  li.append(el("div", "avatar", avatar), body, side, panel);
  return li;
}

/** The timeline of `rows` (newest first), grouped by local day. */
export function timeline(rows, expanded) {
  const frag = document.createDocumentFragment();
  let list = null;
  let day = "";
  for (const row of rows) {
    const label = dayLabel(new Date(row.connect_time));
    if (label !== day) {
      day = label;
      const section = el("section", "day");
      const heading = el("h2", "day-label", label);
      list = el("ol", "day-rows");
      section.append(heading, list);
      frag.append(section);
    }
    list.append(rowElement(row, expanded.has(row.id)));
  }
  return frag;
}
