// Runs before the first paint (a classic script in <head>): applies the theme chosen with
// the toggle, so a dark page never flashes light. Without a choice, CSS follows
// prefers-color-scheme.
"use strict";
try {
  const theme = localStorage.getItem("connlog-theme");
  if (theme === "light" || theme === "dark") {
    document.documentElement.dataset.theme = theme;
  }
} catch (_) {
  // Storage may be off (private mode, policy): the system theme applies.
}
