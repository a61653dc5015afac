/* Site forms: an empty time zone starts as the browser's own (the owner's, most often the
   site's); the field still searches every zone as you type. */
(function () {
  "use strict";
  function start() {
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
    document.querySelectorAll("input[list=timezones]").forEach(function (input) {
      var known = document.querySelector('#timezones option[value="' + zone.replace(/"/g, "") + '"]');
      if (!input.value && known) input.value = zone;
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
