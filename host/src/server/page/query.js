// Coder's filter string (`q`) as the page edits it: space-separated terms, `key:value` or
// bare words, values quoted when they hold spaces. A menu sets one key's term in place (or
// appends it), the way Coder's filter object keeps its keys' order.

/** The terms of `q`, each `{key, value, raw}` (`key` is "" for a bare word). */
export function terms(q) {
  const out = [];
  const re = /\s*((?:[^\s"]+|"[^"]*"?)+)/g;
  let m;
  while ((m = re.exec(q)) !== null) {
    const raw = m[1];
    const colon = raw.indexOf(":");
    if (colon > 0 && !raw.slice(0, colon).includes('"')) {
      out.push({ key: raw.slice(0, colon).toLowerCase(), value: unquote(raw.slice(colon + 1)), raw });
    } else {
      out.push({ key: "", value: raw, raw });
    }
  }
  return out;
}

function unquote(v) {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

function quote(v) {
  return /[\s"]/.test(v) ? `"${v.replaceAll('"', "")}"` : v;
}

/** The value of `key`'s first term, or "". */
export function valueOf(q, key) {
  const term = terms(q).find((t) => t.key === key);
  return term ? term.value : "";
}

/**
 * `q` with `key` set to `value` (removed when `value` is ""), and the keys in `drops`
 * removed (choosing a method drops a deprecated `type:`, as Coder's menu does).
 */
export function withTerm(q, key, value, drops = []) {
  const out = [];
  let placed = false;
  for (const t of terms(q)) {
    if (drops.includes(t.key)) continue;
    if (t.key === key) {
      if (!placed && value !== "") out.push(`${key}:${quote(value)}`);
      placed = true;
      continue;
    }
    out.push(t.raw);
  }
  if (!placed && value !== "") out.push(`${key}:${quote(value)}`);
  return out.join(" ");
}
