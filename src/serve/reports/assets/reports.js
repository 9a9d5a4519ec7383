// The reports' charts: fetches the page's own report as JSON (no inline
// script, no data in the page's markup but the address) and draws it with
// uPlot (vendored: uPlot 1.6.32, MIT, see uPlot.LICENSE). Names from the
// PBX only ever reach the canvas or textContent.
"use strict";
(function () {
  const box = document.getElementById("chart");
  if (!box || typeof uPlot === "undefined") return;
  const L = JSON.parse(box.dataset.labels || "{}");
  const report = document.body.dataset.report;
  const COLORS = ["#1f6feb", "#d2433b", "#2e9d5a", "#d69a1e", "#8250df", "#0a7ea4", "#bf3989"];

  function width() { return Math.max(320, box.clientWidth || 800); }
  // Bars of one series: with two, side by side; with three, the first is
  // a wide bar behind the other two (logged-in time around paused and talk).
  function barSeries(label, i, n) {
    const wide = n === 3 && i === 0;
    const align = n === 1 || wide ? 0 : (n === 2 ? i : i - 1) === 0 ? -1 : 1;
    return { label: label, stroke: COLORS[i], fill: COLORS[i] + (wide ? "40" : "cc"), width: 1,
             paths: uPlot.paths.bars({ size: [wide ? 0.8 : 0.35, 120], align: align }),
             points: { show: false } };
  }
  // A bar chart of categories (queues, agents, hours).
  function categories(names, series) {
    const xs = names.map((_, i) => i);
    const opts = {
      width: width(), height: 300,
      scales: { x: { time: false, range: [-0.6, names.length - 0.4] } },
      axes: [
        { values: (u, vals) => vals.map((v) => (Number.isInteger(v) && names[v] !== undefined ? String(names[v]) : "")),
          incrs: [1], grid: { show: false } },
        {},
      ],
      series: [{ label: "", value: (u, v) => (v === null || names[v] === undefined ? "--" : String(names[v])) }]
        .concat(series.map((s, i) => barSeries(s.label, i, series.length))),
    };
    return new uPlot(opts, [xs].concat(series.map((s) => s.values)), box);
  }
  function num(v) { return v === null || v === undefined ? null : Number(v); }
  function hours(v) { return v === null || v === undefined ? null : Math.round(v / 36) / 100; }

  function draw(d) {
    const rows = d.rows || [];
    if (!rows.length) return;
    if (report === "calls_by_hour" || report === "calls_by_queue") {
      const names = rows.map((r) => (report === "calls_by_hour" ? r.hour : r.queue));
      categories(names, [
        { label: L.answered, values: rows.map((r) => num(r.answered)) },
        { label: L.unanswered, values: rows.map((r) => num(r.unanswered)) },
      ]);
    } else if (report === "agent_activity") {
      categories(rows.map((r) => r.agent), [
        { label: L.logged_in_s + " (h)", values: rows.map((r) => hours(r.logged_in_s)) },
        { label: L.paused_s + " (h)", values: rows.map((r) => hours(r.paused_s)) },
        { label: L.talk_s + " (h)", values: rows.map((r) => hours(r.talk_s)) },
      ]);
    } else if (report === "service_level") {
      const times = Array.from(new Set(rows.map((r) => Date.parse(r.interval_start) / 1000))).sort((a, b) => a - b);
      const queues = Array.from(new Set(rows.map((r) => r.queue))).sort();
      const at = new Map(times.map((t, i) => [t, i]));
      const data = [times];
      for (const q of queues) {
        const v = times.map(() => null);
        for (const r of rows) {
          if (r.queue === q && r.service_level !== null) {
            v[at.get(Date.parse(r.interval_start) / 1000)] = Math.round(r.service_level * 1000) / 10;
          }
        }
        data.push(v);
      }
      const tz = d.timezone;
      new uPlot({
        width: width(), height: 300,
        tzDate: (ts) => (tz ? uPlot.tzDate(new Date(ts * 1e3), tz) : new Date(ts * 1e3)),
        scales: { y: { range: [0, 100] } },
        axes: [{}, { values: (u, vals) => vals.map((v) => v + " %") }],
        series: [{}].concat(queues.map((q, i) => ({
          label: String(q), stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false,
          points: { show: true, size: 5 },
        }))),
      }, data, box);
    }
  }
  fetch(box.dataset.src, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((d) => { if (d) draw(d); })
    .catch(() => {});
})();
