// The wallboard: follows /api/wall/stream (server-sent events) and draws
// the board with textContent only (caller and agent names are the PBX's,
// never markup). No reload, no polling. "Data is stale" when the daemon
// says a source is, or when no board arrived for `data-stale-after` ms (the
// daemon or the network gone: the last figures stay, dimmed). A lost
// stream is opened again every second until boards come back.
"use strict";
(function () {
  const body = document.body;
  const L = JSON.parse(body.dataset.labels);
  const TH = JSON.parse(body.dataset.thresholds);
  const staleAfter = Number(body.dataset.staleAfter) || 15000;
  const status = document.getElementById("status");
  const RETRY_MS = 1000;
  let src = null;
  let retry = null;
  let watchdog = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function pct(v) { return v === null || v === undefined ? "—" : Math.round(v * 100) + "%"; }
  // Durations as m:ss, or h:mm:ss from an hour on.
  function secs(v) {
    if (v === null || v === undefined) return "—";
    v = Math.max(0, Math.round(v));
    const two = (n) => String(n).padStart(2, "0");
    const h = Math.floor(v / 3600), m = Math.floor((v % 3600) / 60), s = v % 60;
    return h > 0 ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
  }
  // A colour for a figure: thresholds [amber, red], rising or falling.
  function colour(name, v) {
    const t = TH[name];
    if (!t || v === null || v === undefined) return "";
    const [amber, red] = t.at;
    if (t.lower_is_worse) return v < red ? "red" : v < amber ? "amber" : "green";
    return v >= red ? "red" : v >= amber ? "amber" : "green";
  }
  function figure(name, value, shown) {
    const f = el("div", "figure " + colour(name, value));
    f.dataset.figure = name;
    f.appendChild(el("div", "v", shown));
    f.appendChild(el("div", "k", L[name] || name));
    return f;
  }
  function tile(q) {
    const t = el("div", "tile");
    t.dataset.queue = q.queue;
    const head = el("div", "head");
    head.appendChild(el("h3", "", q.queue));
    const reasons = Object.entries(q.pause_reasons || {})
      .map(([r, n]) => (r || L.no_reason) + ": " + n).join(", ");
    head.appendChild(el("div", "reasons", reasons ? L.paused_for + " " + reasons : ""));
    t.appendChild(head);
    const g = el("div", "figures");
    // Now…
    g.appendChild(figure("waiting", q.waiting, String(q.waiting)));
    g.appendChild(figure("longest_wait_s", q.longest_wait_s, secs(q.longest_wait_s)));
    g.appendChild(figure("agents_available", q.agents_available, q.agents_available + "/" + q.agents_logged_in));
    g.appendChild(figure("agents_on_call", q.agents_on_call, String(q.agents_on_call)));
    g.appendChild(figure("agents_paused", q.agents_paused, String(q.agents_paused)));
    g.appendChild(figure("missed_open", q.missed_open, String(q.missed_open)));
    g.appendChild(figure("callbacks_pending", q.callbacks_pending, String(q.callbacks_pending)));
    // …and today.
    g.appendChild(figure("offered_today", q.offered_today, String(q.offered_today)));
    g.appendChild(figure("answered_today", q.answered_today, String(q.answered_today)));
    g.appendChild(figure("abandoned_today", q.abandoned_today, String(q.abandoned_today)));
    g.appendChild(figure("service_level_today", q.service_level_today, pct(q.service_level_today)));
    g.appendChild(figure("service_level_hour", q.service_level_hour, pct(q.service_level_hour)));
    g.appendChild(figure("asa_s", q.asa_s, secs(q.asa_s)));
    t.appendChild(g);
    return t;
  }
  function since(iso) {
    if (!iso) return "—";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    return s >= 3600 ? Math.floor(s / 3600) + L.h + " " + Math.floor((s % 3600) / 60) + L.m : secs(s);
  }
  function draw(w) {
    const qs = document.getElementById("queues");
    const n = Math.max(1, w.queues.length);
    const cols = n <= 4 ? 1 : n <= 10 ? 2 : 3;
    qs.style.setProperty("--cols", cols);
    qs.style.setProperty("--rows", Math.ceil(n / cols));
    qs.replaceChildren(...w.queues.map(tile));
    const tb = document.querySelector("#agents tbody");
    document.getElementById("agents").style.setProperty("--agents", Math.max(1, w.agents.length));
    // Logged-out agents last, the rest as the daemon lists them.
    const out = (a) => (a.state === "logged_out" ? 1 : 0);
    const agents = w.agents.slice().sort((a, b) => out(a) - out(b));
    tb.replaceChildren(...agents.map((a) => {
      const tr = el("tr", a.state);
      tr.dataset.agent = a.agent;
      tr.appendChild(el("td", "name", a.name));
      const st = L["state_" + a.state] || a.state;
      tr.appendChild(el("td", "state", a.pause_reason ? st + " (" + a.pause_reason + ")" : st));
      tr.appendChild(el("td", "num", since(a.since)));
      tr.appendChild(el("td", "num", String(a.calls_today)));
      tr.appendChild(el("td", "num", secs(a.talk_s_today)));
      return tr;
    }));
    fitAgents();
    document.getElementById("formula").textContent = L.formula + ": " + w.service_level_formula;
    document.getElementById("updated").textContent =
      L.updated + " " + new Date(w.generated_at).toLocaleTimeString();
    setStale(w.stale, w.stale_sources);
  }
  // The agents panel never scrolls: smaller type until every row fits
  // (long names wrap, so rows are not all one line high).
  function fitAgents() {
    const box = document.querySelector(".agents");
    const table = document.getElementById("agents");
    table.style.fontSize = "";
    let px = parseFloat(getComputedStyle(table).fontSize);
    while (box.scrollHeight > box.clientHeight + 1 && px > 6) {
      px *= 0.92;
      table.style.fontSize = px + "px";
    }
  }
  function setStale(stale, sources) {
    body.classList.toggle("stale", stale);
    body.dataset.state = stale ? "stale" : "live";
    status.className = "status " + (stale ? "stale" : "live");
    status.textContent = stale
      ? L.stale + (sources && sources.length ? ": " + sources.join(", ") : "")
      : L.live;
  }
  // No board for staleAfter ms: the daemon is out of reach.
  function arm() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => setStale(true, [L.daemon]), staleAfter);
  }
  // Lost: say so (not yet stale), and open the stream again shortly. The
  // browser would retry some failures by itself, but not an HTTP error,
  // and on its own schedule.
  function lost() {
    if (src) src.close();
    src = null;
    if (body.dataset.state !== "stale") {
      body.dataset.state = "connecting";
      status.className = "status connecting";
      status.textContent = L.connecting;
    }
    clearTimeout(retry);
    retry = setTimeout(connect, RETRY_MS);
    // A login that ended (session expired, token removed) makes every
    // attempt fail: ask once what the daemon says, and load the page again
    // if it wants a login (the login page, or the token in the address).
    fetch(body.dataset.stream.replace("/api/wall/stream", "/api/wall"),
          { cache: "no-store", credentials: "same-origin" })
      .then((r) => { if (r.status === 401) location.reload(); })
      .catch(() => {});
  }
  function connect() {
    src = new EventSource(body.dataset.stream);
    src.addEventListener("wall", (e) => {
      arm();
      draw(JSON.parse(e.data));
    });
    src.onerror = lost;
  }
  window.addEventListener("resize", fitAgents);
  arm();
  connect();
  setInterval(() => {
    document.getElementById("clock").textContent = new Date().toLocaleTimeString();
  }, 1000);
})();
