/* The setup page: copy the snippet, and watch for the first stored event (the page says the
   same without JavaScript, as of when it was loaded). */
(function () {
  "use strict";

  function copyButtons() {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      var source = document.getElementById(button.getAttribute("data-copy"));
      var said = button.parentNode.querySelector(".copied");
      if (!source || !navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent).then(
          function () { if (said) said.textContent = "Copied."; },
          function () { if (said) said.textContent = "Select the snippet and copy it."; }
        );
      });
    });
  }

  function watch() {
    var box = document.getElementById("setup-status");
    if (!box || !window.fetch) return;
    var url = box.getAttribute("data-status-url");
    var timer = null;
    var words = JSON.parse(box.getAttribute("data-reasons") || "{}");
    function show(body) {
      var reasons = Object.keys(body.dropped || {});
      var dropped = box.querySelector(".dropped");
      if (reasons.length && dropped) {
        dropped.hidden = false;
        dropped.querySelector(".reasons").textContent = reasons.map(function (reason) {
          return body.dropped[reason] + " " + (words[reason] || reason);
        }).join(", ");
      }
      if (!body.events) return;
      box.classList.remove("waiting");
      box.classList.add("received");
      box.querySelector(".state").textContent = "✓ Receiving events";
      var detail = box.querySelector(".detail");
      detail.textContent = body.events.toLocaleString("en-US") + " stored, the newest at " +
        body.last.slice(11, 19) + " UTC. ";
      var link = document.createElement("a");
      link.href = box.getAttribute("data-dashboard-url");
      link.textContent = "Open the dashboard";
      detail.appendChild(link);
      clearInterval(timer);
    }
    function check() {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) { if (body) show(body); })
        .catch(function () { /* offline for a moment: ask again */ });
    }
    if (box.classList.contains("waiting")) timer = setInterval(check, 2000);
  }

  function start() {
    copyButtons();
    watch();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
