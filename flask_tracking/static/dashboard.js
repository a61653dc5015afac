/* Dashboard enhancements; the page works without them (server-rendered chart, links, forms).
   - draws the chart with uPlot when it was installed (make assets), with tooltips;
   - refreshes "current visitors" every 30 seconds;
   - submits the period at once when chosen, showing the dates only for a custom range. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Tick steps for axes of whole numbers (bucket indexes, counts): 1, 2, 5, 10, 20, 25, 50, …
  var WHOLE_STEPS = [];
  for (var power = 1; power <= 1e12; power *= 10) {
    WHOLE_STEPS.push(power, 2 * power, 5 * power);
    if (power >= 10) WHOLE_STEPS.push(2.5 * power);
  }
  WHOLE_STEPS.sort(function (a, b) { return a - b; });

  function drawChart() {
    var holder = document.getElementById("chart");
    var source = document.getElementById("chart-data");
    if (!holder || !source || !window.uPlot) return;
    var chart = JSON.parse(source.textContent);
    var labels = chart.labels;
    var ticks = chart.ticks && chart.ticks.length === labels.length ? chart.ticks : labels;
    var xs = labels.map(function (_label, index) { return index; });
    var previous = chart.previous.map(function (v) { return v === null ? null : v; });
    // Future buckets are null (not drawn). The bucket still running is drawn dashed from the
    // last finished one, as its own series: a day that has just begun is not a drop.
    var current = chart.current.slice();
    var running = current.map(function () { return null; });
    var last = -1;
    current.forEach(function (v, i) { if (v !== null) last = i; });
    if (chart.partial && last >= 0) {
      running[last] = current[last];
      if (last > 0) running[last - 1] = current[last - 1];
      current[last] = null;
    }
    var style = getComputedStyle(document.documentElement);
    var accent = style.getPropertyValue("--accent").trim() || "#3b5bdb";
    // The bucket names the x values in the legend ("Day: Mon 02 Nov"), not uPlot's "Value".
    var bucket = holder.getAttribute("data-bucket") || "";
    var bucketName = bucket ? bucket.charAt(0).toUpperCase() + bucket.slice(1) : "Period";
    function whole(_u, splits) {
      return splits.map(function (v) { return v.toLocaleString("en-US"); });
    }
    function options(width) {
      return {
        width: width,
        height: 240,
        // Room on the right for the last bucket's name, which is centred on the last point.
        padding: [12, 40, null, null],
        scales: { x: { time: false } },
        legend: { live: true },
        cursor: { points: { size: 7 } },
        axes: [
          { values: function (_u, splits) {
              return splits.map(function (i) { return ticks[i] === undefined ? "" : ticks[i]; });
            }, space: 70, incrs: WHOLE_STEPS }, // "Mar 2026", the widest tick, is about 55 px
          // Counts are whole numbers: no 2.5 or 7.5 ticks.
          { size: 56, incrs: WHOLE_STEPS, values: whole }
        ],
        series: [
          { label: bucketName,
            value: function (_u, i) { return i === null || labels[i] === undefined ? "" : labels[i]; } },
          { label: chart.metric, stroke: accent, width: 2, fill: "rgba(59, 91, 219, 0.08)",
            points: { show: labels.length <= 60 } },
          { label: "previous period", stroke: "#c5cbe0", width: 1.5, dash: [4, 3],
            points: { show: false } }
        ].concat(chart.partial ? [{ label: "so far", stroke: accent, width: 2, dash: [2, 4],
                                    points: { show: true } }] : []),
        // Without the pointer on the chart the legend is a key: no "--" values.
        hooks: { setCursor: [function (u) {
          holder.classList.toggle("idle", u.cursor.idx === null || u.cursor.idx === undefined);
        }] }
      };
    }
    holder.textContent = "";
    var data = [xs, current, previous].concat(chart.partial ? [running] : []);
    var plot = new window.uPlot(options(holder.clientWidth || 800), data, holder);
    window.flaskTrackingChart = plot;
    window.addEventListener("resize", function () {
      plot.setSize({ width: holder.clientWidth || 800, height: 240 });
    });
  }

  function refreshRealtime() {
    var card = document.querySelector("[data-realtime-url]");
    var count = document.getElementById("realtime-count");
    if (!card || !count || !window.fetch) return;
    setInterval(function () {
      fetch(card.getAttribute("data-realtime-url"), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (body && typeof body.visitors === "number") {
            count.textContent = body.visitors.toLocaleString("en-US");
          }
        })
        .catch(function () { /* offline for a moment: keep the last number */ });
    }, 30000);
  }

  function periodForm() {
    var form = document.querySelector("form.range");
    if (!form) return;
    var select = form.querySelector("select[name=period]");
    var button = form.querySelector("button[type=submit]");
    function update() {
      var custom = select.value === "custom";
      form.classList.toggle("custom", custom);
      button.classList.toggle("autohide", !custom);
      form.querySelectorAll(".custom-dates input").forEach(function (input) {
        input.disabled = !custom;
      });
    }
    select.addEventListener("change", function () {
      update();
      if (select.value !== "custom") form.submit();
    });
    update();
  }

  function start() {
    drawChart();
    refreshRealtime();
    periodForm();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
