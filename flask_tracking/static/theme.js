/* Light or dark: the system's choice unless the header's button chose one (kept in this
   browser's localStorage, for this app's pages only — the tracker stores nothing). Loaded in
   <head>, before the page is drawn, so it never flashes the other theme. */
(function () {
  "use strict";
  var KEY = "flask-tracking-theme";
  var root = document.documentElement;
  var ORDER = ["system", "dark", "light"];
  function stored() {
    try { return localStorage.getItem(KEY) || "system"; } catch (e) { return "system"; }
  }
  function apply(choice) {
    if (choice === "system") root.removeAttribute("data-theme");
    else root.setAttribute("data-theme", choice);
  }
  apply(stored());

  function setUp() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    function label() {
      var choice = stored();
      button.textContent = "Theme: " + choice;
      button.setAttribute("aria-label", "Theme: " + choice + " (change)");
    }
    button.hidden = false;
    label();
    button.addEventListener("click", function () {
      var next = ORDER[(ORDER.indexOf(stored()) + 1) % ORDER.length];
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      apply(next);
      label();
      document.dispatchEvent(new CustomEvent("flask-tracking:theme"));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
