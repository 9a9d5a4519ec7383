// The wallboard: follows /api/wall/stream (server-sent events) and draws
// the board with textContent only (caller and agent names are the PBX's,
// never markup). No reload, no polling; "data is stale" when the daemon
// says a source is, or when no board arrived for a while.
"use strict";
(function () {
  const body = document.body;
  const L = JSON.parse(body.dataset.labels);
  const TH = JSON.parse(body.dataset.thresholds);
  const staleAfter = Number(body.dataset.staleAfter) || 15000;
  const status = document.getElementById("status");
  let last = 0;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function pct(v) { return v === null || v === undefined ? "—" : Math.round(v * 100) + "%"; }
  function secs(v) {
    if (v === null || v === undefined) return "—";
    v = Math.round(v);
    return v >= 60 ? Math.floor(v / 60) + ":" + String(v % 60).padStart(2, "0") : String(v);
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
    t.appendChild(el("h3", "", q.queue));
    const g = el("div", "figures");
    g.appendChild(figure("waiting", q.waiting, String(q.waiting)));
    g.appendChild(figure("longest_wait_s", q.longest_wait_s, secs(q.longest_wait_s)));
    g.appendChild(figure("service_level_today", q.service_level_today, pct(q.service_level_today)));
    g.appendChild(figure("agents_available", q.agents_available, q.agents_available + "/" + q.agents_logged_in));
    g.appendChild(figure("agents_on_call", q.agents_on_call, String(q.agents_on_call)));
    g.appendChild(figure("agents_paused", q.agents_paused, String(q.agents_paused)));
    g.appendChild(figure("offered_today", q.offered_today, String(q.offered_today)));
    g.appendChild(figure("answered_today", q.answered_today, String(q.answered_today)));
    g.appendChild(figure("abandoned_today", q.abandoned_today, String(q.abandoned_today)));
    g.appendChild(figure("service_level_hour", q.service_level_hour, pct(q.service_level_hour)));
    g.appendChild(figure("asa_s", q.asa_s, secs(q.asa_s)));
    g.appendChild(figure("missed_open", q.missed_open, String(q.missed_open)));
    g.appendChild(figure("callbacks_pending", q.callbacks_pending, String(q.callbacks_pending)));
    t.appendChild(g);
    const reasons = Object.entries(q.pause_reasons || {})
      .map(([r, n]) => (r || L.no_reason) + ": " + n).join(", ");
    t.appendChild(el("div", "reasons", reasons ? L.paused_for + " " + reasons : ""));
    return t;
  }
  function since(iso) {
    if (!iso) return "—";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    return s >= 3600 ? Math.floor(s / 3600) + L.h + " " + Math.floor((s % 3600) / 60) + L.m : secs(s);
  }
  function draw(w) {
    const qs = document.getElementById("queues");
    qs.replaceChildren(...w.queues.map(tile));
    const tb = document.querySelector("#agents tbody");
    tb.replaceChildren(...w.agents.map((a) => {
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
    document.getElementById("formula").textContent = L.formula + ": " + w.service_level_formula;
    document.getElementById("updated").textContent =
      L.updated + " " + new Date(w.generated_at).toLocaleTimeString();
    setStale(w.stale, w.stale_sources);
  }
  function setStale(stale, sources) {
    body.classList.toggle("stale", stale);
    body.dataset.state = stale ? "stale" : "live";
    status.className = "status " + (stale ? "stale" : "live");
    status.textContent = stale
      ? L.stale + (sources && sources.length ? ": " + sources.join(", ") : "")
      : L.live;
  }
  const src = new EventSource(body.dataset.stream);
  src.addEventListener("wall", (e) => {
    last = Date.now();
    draw(JSON.parse(e.data));
  });
  src.onerror = () => { if (Date.now() - last > staleAfter) setStale(true, [L.daemon]); };
  setInterval(() => {
    document.getElementById("clock").textContent = new Date().toLocaleTimeString();
    if (last && Date.now() - last > staleAfter) setStale(true, [L.daemon]);
  }, 1000);
})();
