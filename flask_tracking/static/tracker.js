/* flask-tracking: page views and events, no cookies or storage. Served as is.
   Set by this tag's data- attributes (see the site page). */
(function (w, d) {
  var loc = w.location;
  var me = d.currentScript || d.querySelector("script[data-site]");
  var opt = me ? me.dataset : {};
  var queued = (w.flaskTracking || {}).q || [];
  if (queued.on) return; // twice
  function flag(name) {
    return opt[name] == "true";
  }

  // flaskTracking.track(name, props), or before load: flaskTracking.q.push([name, props])
  var api = (w.flaskTracking = { track: function () {} }); // a no-op unless enabled
  api.q = { on: 1, push: function (args) { api.track.apply(0, args); } };

  // Experiments: FNV-1a of "key:id" over the weights (reports/experiments.py); id:
  // data-user-id (never sent) or random per load.
  var uid = opt.userId || Math.random() + "" + Date.now(), seen = {};
  api.assign = function (key, id, v) {
    var list = Array.isArray(v), names = list ? v : Object.keys(v), i, h = 0x811c9dc5;
    var w = names.map(function (n) { return list ? 1 : +v[n]; });
    var total = w.reduce(function (a, b) { return a + (b > 0 ? b : NaN); }, 0);
    var bytes = new TextEncoder().encode(key + ":" + id);
    if (!(total > 0)) return null; // a weight of zero or below
    for (i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619) >>> 0;
    for (h = (h / 4294967296) * total, i = 0; i < names.length; i++) if ((h -= w[i]) < 0) return names[i];
    return names[i - 1];
  };
  // flaskTracking.experiment(key, {name: weight} or [names]): the variant; one exposure a load.
  api.experiment = function (key, v) {
    if (!(key in seen) && (seen[key] = api.assign(key, uid, v || [])) != null)
      api.track("Experiment Exposure", { experiment: key, variant: seen[key] });
    return seen[key];
  };

  var site = +opt.site;
  var local = /^(localhost|127(\.\d+){3}|\[::1\])$/.test(loc.hostname) || loc.protocol == "file:";
  if (!(site > 0) || (local && !flag("allowLocalhost")))
    return console.info("Flask-Tracking: page ignored, " + (site > 0 ? 'local (data-allow-localhost="true" counts it)' : "no data-site"));

  var endpoint = (opt.api || new URL(me.src).origin).replace(/\/$/, "") + "/api/event";
  var hash = flag("hash");
  var last; // not counted twice in a row

  function send(name, props) {
    // Prerendered: wait until seen.
    if (d.prerendering) {
      return d.addEventListener("prerenderingchange", function () { send(name, props); }, { once: true });
    }
    var body = { site: site, name: name, url: loc.href, referrer: d.referrer || null, width: w.innerWidth };
    if (props) body.props = props;
    // A string is text/plain (no CORS preflight); a beacon outlives the page.
    body = JSON.stringify(body);
    try {
      if (navigator.sendBeacon(endpoint, body)) return;
    } catch (e) {}
    fetch(endpoint, { method: "POST", body: body, keepalive: true }).catch(function () {});
  }

  function page() {
    var key = hash ? loc.href : loc.href.split("#")[0];
    if (key != last) {
      last = key;
      send("pageview");
    }
  }

  api.track = function (name, props) {
    if (name && typeof name == "string") send(name, typeof props == "object" && props);
  };

  // Single-page apps: history (and hash, if asked) navigations count.
  var push = history.pushState;
  history.pushState = function () {
    push.apply(this, arguments);
    page();
  };
  addEventListener("popstate", page);
  if (hash) addEventListener("hashchange", page);

  var outbound = flag("outbound");
  var downloads = flag("downloads");
  function click(e) {
    var a = e.button < 2 && e.target.closest && e.target.closest("a[href]"); // left or middle
    if (!a || !/^https?:$/.test(a.protocol)) return;
    var props = { url: a.href.slice(0, 512) };
    if (downloads && /\.(7z|csv|dmg|docx?|exe|gz|iso|mp[34]|msi|pdf|pptx?|rar|xlsx?|zip)$/i.test(a.pathname)) {
      send("File Download", props);
    } else if (outbound && a.host != loc.host) {
      send("Outbound Link: Click", props);
    }
  }
  if (outbound || downloads) {
    // Capture phase: seen even if the page stops the click.
    d.addEventListener("click", click, true);
    d.addEventListener("auxclick", click, true);
  }

  page();
  queued.forEach(api.q.push);
})(window, document);
