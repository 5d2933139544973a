// Icons drawn as SVG elements, so nothing is fetched and no image can carry data from a
// row: a monogram (initials on a colour picked from the name) for apps and users, and a
// network glyph for rows without a user.

const SVG = "http://www.w3.org/2000/svg";

function svg(size, label) {
  const el = document.createElementNS(SVG, "svg");
  el.setAttribute("viewBox", "0 0 32 32");
  el.setAttribute("width", String(size));
  el.setAttribute("height", String(size));
  el.setAttribute("class", "icon");
  if (label) {
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", label);
  } else {
    el.setAttribute("aria-hidden", "true");
  }
  return el;
}

function node(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A stable hue for a name. */
function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

/** Up to two letters standing for a name: "VS Code" → "VC", "cursor" → "CU". */
export function initials(name) {
  const words = name.split(/[\s_\-.]+/).filter(Boolean);
  if (words.length >= 2) return (first(words[0]) + first(words[1])).toUpperCase();
  return [...(words[0] || "?")].slice(0, 2).join("").toUpperCase();
}

function first(word) {
  return [...word][0] || "";
}

/** A monogram: round for people, a rounded square for apps. */
export function monogram(name, { round = false, size = 32, label = "" } = {}) {
  const el = svg(size, label);
  const fill = `hsl(${hue(name)} 55% 42%)`;
  el.append(
    round
      ? node("circle", { cx: 16, cy: 16, r: 16, fill })
      : node("rect", { width: 32, height: 32, rx: 7, fill }),
  );
  const text = node("text", {
    x: 16,
    y: 16,
    "text-anchor": "middle",
    "dominant-baseline": "central",
    "font-size": 13,
    "font-weight": 600,
    "font-family": "system-ui, sans-serif",
    fill: "#fff",
  });
  text.textContent = initials(name);
  el.append(text);
  return el;
}

/** A network glyph: three linked nodes. */
export function networkIcon({ size = 32, label = "" } = {}) {
  const el = svg(size, label);
  el.append(node("circle", { cx: 16, cy: 16, r: 16, class: "icon-bg" }));
  const stroke = { stroke: "currentColor", "stroke-width": 2, fill: "none" };
  el.append(node("path", { d: "M16 10 L9 21 M16 10 L23 21 M9 21 L23 21", ...stroke }));
  for (const [cx, cy] of [[16, 10], [9, 21], [23, 21]]) {
    el.append(node("circle", { cx, cy, r: 3, fill: "currentColor" }));
  }
  return el;
}
