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
    function colour(name, fallback) { return style.getPropertyValue(name).trim() || fallback; }
    var accent = colour("--accent", "#3b5bdb");
    var axis = { stroke: colour("--muted", "#5c6477"), grid: { stroke: colour("--line", "#e3e6ee") },
                 ticks: { stroke: colour("--line", "#e3e6ee") } };
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
          Object.assign({ values: function (_u, splits) {
              return splits.map(function (i) { return ticks[i] === undefined ? "" : ticks[i]; });
            }, space: 70, incrs: WHOLE_STEPS }, axis), // "Mar 2026", the widest tick: ~55 px
          // Counts are whole numbers: no 2.5 or 7.5 ticks.
          Object.assign({ size: 56, incrs: WHOLE_STEPS, values: whole }, axis)
        ],
        series: [
          { label: bucketName,
            value: function (_u, i) { return i === null || labels[i] === undefined ? "" : labels[i]; } },
          { label: chart.metric, stroke: accent, width: 2, fill: colour("--chart-fill", "rgba(59, 91, 219, 0.08)"),
            points: { show: labels.length <= 60 } },
          { label: (chart.compared || "Previous period").toLowerCase(), stroke: colour("--previous", "#aab2cc"), width: 1.5, dash: [4, 3],
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
    function resize() { plot.setSize({ width: holder.clientWidth || 800, height: 240 }); }
    window.addEventListener("resize", resize);
    // Another theme: draw again in its colours.
    document.addEventListener("flask-tracking:theme", function redraw() {
      window.removeEventListener("resize", resize);
      document.removeEventListener("flask-tracking:theme", redraw);
      plot.destroy();
      drawChart();
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
    var compare = form.querySelector("select[name=compare]");
    var match = form.querySelector("input[name=match]");
    var button = form.querySelector("button[type=submit]");
    function update() {
      var custom = select.value === "custom";
      var customCompare = compare && compare.value === "custom";
      form.classList.toggle("custom", custom);
      form.classList.toggle("custom-compare", !!customCompare);
      button.classList.toggle("autohide", !custom && !customCompare);
      form.querySelectorAll(".custom-dates input").forEach(function (input) {
        input.disabled = !custom;
      });
      form.querySelectorAll(".compare-dates input").forEach(function (input) {
        input.disabled = !customCompare;
      });
    }
    // The default comparison is left out of the URL (as links leave it out).
    function omitDefaults() { if (compare && compare.value === "previous") compare.disabled = true; }
    function send() { omitDefaults(); form.submit(); }
    form.addEventListener("submit", omitDefaults);
    window.addEventListener("pageshow", function () { if (compare) compare.disabled = false; });
    // A choice that needs no dates applies at once; one that does waits for Apply.
    [select, compare].forEach(function (menu) {
      if (!menu) return;
      menu.addEventListener("change", function () {
        update();
        if (menu.value !== "custom") send();
      });
    });
    if (match) match.addEventListener("change", send);
    update();
  }

  // Keys, as in Plausible: t today, w last 7 days, m this month, y last 12 months; the arrows
  // move the period by its own length (as a custom range), never past today.
  function shortcuts() {
    var form = document.querySelector("form.range");
    if (!form) return;
    var presets = { t: "today", w: "7d", m: "month", y: "12mo" };
    function day(text) { return new Date(text + "T00:00:00Z"); }
    function text(date) { return date.toISOString().slice(0, 10); }
    function go(args) {
      var url = new URL(window.location.href);
      ["period", "from", "to"].forEach(function (name) { url.searchParams.delete(name); });
      Object.keys(args).forEach(function (name) { url.searchParams.set(name, args[name]); });
      window.location.assign(url.toString());
    }
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
      if (target && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName))) return;
      if (presets[event.key]) {
        event.preventDefault();
        return go({ period: presets[event.key] });
      }
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      var first = day(form.dataset.first), last = day(form.dataset.last);
      var days = Math.round((last - first) / 86400000) + 1;
      var step = (event.key === "ArrowLeft" ? -days : days) * 86400000;
      var from = new Date(first.getTime() + step), to = new Date(last.getTime() + step);
      if (from > day(form.dataset.today)) return; // nothing there yet
      event.preventDefault();
      go({ period: "custom", from: text(from), to: text(to) });
    });
  }

  // The filter dialog: suggestions from this view's data as you type (a datalist), and
  // "Another value" for a filter that matches any of several.
  function filterBuilder() {
    var box = document.getElementById("filter-builder");
    if (!box || !window.fetch) return;
    var form = box.querySelector("form");
    var list = document.getElementById("fb-suggestions");
    var dimension = form.querySelector("select[name=add]");
    var timer = null, asked = "";
    function suggest(input) {
      var url = new URL(form.getAttribute("data-suggest-url"), window.location.href);
      new URL(window.location.href).searchParams.forEach(function (value, key) {
        if (key !== "q") url.searchParams.append(key, value);
      });
      url.searchParams.set("dimension", dimension.value);
      url.searchParams.set("q", input.value);
      if (url.toString() === asked) return;
      asked = url.toString();
      fetch(url, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (body) {
          list.textContent = "";
          body.results.forEach(function (row) {
            var option = document.createElement("option");
            option.value = row.value;
            option.label = row.label + " · " + row.visitors.toLocaleString("en-US");
            list.appendChild(option);
          });
          form.classList.add("suggested");
        })
        .catch(function () {});
    }
    form.addEventListener("input", function (event) {
      if (event.target.name !== "value") return;
      clearTimeout(timer);
      timer = setTimeout(function () { suggest(event.target); }, 150);
    });
    form.addEventListener("focusin", function (event) {
      if (event.target.name === "value") suggest(event.target);
    });
    dimension.addEventListener("change", function () {
      asked = "";
      list.textContent = "";
    });
    form.querySelector(".fb-more").addEventListener("click", function () {
      var inputs = form.querySelectorAll("input[name=value]");
      var next = inputs[0].cloneNode();
      next.value = "";
      next.setAttribute("aria-label", "Value " + (inputs.length + 1));
      inputs[inputs.length - 1].after(next);
      next.focus();
    });
    // "f" opens it, as the keys choose periods.
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.key !== "f" || event.ctrlKey || event.metaKey || event.altKey) return;
      if (target && /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) return;
      event.preventDefault();
      box.open = true;
      dimension.focus();
    });
  }

  function start() {
    drawChart();
    refreshRealtime();
    periodForm();
    shortcuts();
    filterBuilder();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
