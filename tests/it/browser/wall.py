#!/usr/bin/env python3
"""The wallboard (`/wall`) in a real headless Chromium, driven by Selenium.

Run by tests/it/wall_browser.rs, which starts the daemon, writes the first
queue_log lines and checks what this driver reports; the figures expected
are worked out there. One browser session, one load of the board: every
step below happens on that page (a marker set on `window` after the load
must still be there at the end).

Protocol: each step prints one JSON object on a line of stdout. When the
test has to act (kill or start the daemon), the driver prints
`{"need": "<what>"}` and reads one line back on stdin: `done <epoch ms>`,
the moment the test acted (the same clock as `Date.now()` in the page).

Steps: `board` (every figure as shown), `latency` (append → DOM times),
`after_latency` (the board again), `source_stale`, `language_auto`,
`daemon_stale`, `daemon_back`, `language_config`, `layout` (per screen
size), `end`. Exits 1 with a message on stderr when the page does not
reach a state it must reach in time.
"""

import argparse
import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

HOSTILE = "<img src=x onerror=alert(1)>"

# Installed in every document before its own scripts: records any dialog
# a hostile name might open instead of opening it.
TRAP = """
window.__ctAlerts = [];
for (const n of ['alert', 'confirm', 'prompt']) {
  window[n] = function (m) { window.__ctAlerts.push(n + ':' + String(m)); };
}
"""

# Everything the board shows, as text.
DUMP = """
const out = {tiles: [], agents: [], status: null};
for (const t of document.querySelectorAll('#queues .tile')) {
  const figures = {}, colours = {}, labels = {};
  for (const f of t.querySelectorAll('.figure')) {
    figures[f.dataset.figure] = f.querySelector('.v').textContent;
    labels[f.dataset.figure] = f.querySelector('.k').textContent;
    colours[f.dataset.figure] = ['green', 'amber', 'red'].find((c) => f.classList.contains(c)) || '';
  }
  out.tiles.push({queue: t.querySelector('h3').textContent, data_queue: t.dataset.queue,
                  figures, colours, labels,
                  reasons: (t.querySelector('.reasons') || {}).textContent || ''});
}
for (const tr of document.querySelectorAll('#agents tbody tr')) {
  out.agents.push({agent: tr.dataset.agent, class: tr.className,
                   cells: Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)});
}
const st = document.getElementById('status');
out.status = {class: st.className, text: st.textContent};
out.state = document.body.dataset.state || '';
out.title = document.querySelector('h1').textContent;
out.lang = document.documentElement.lang;
out.heads = Array.from(document.querySelectorAll('#agents thead th')).map((th) => th.textContent);
out.footer = document.querySelector('footer').textContent;
out.img_elements = document.querySelectorAll('img').length;
out.alerts = window.__ctAlerts || null;
return out;
"""

# Records every change of the support tile's figures and of the page's
# state, with Date.now(), from a MutationObserver (no polling in the page;
# the driver reads the record every 50 ms).
OBSERVE = """
window.__ctLog = [];
const read = () => {
  const t = Array.from(document.querySelectorAll('#queues .tile'))
      .find((x) => x.dataset.queue === arguments[0]);
  const v = (n) => { const f = t && t.querySelector('.figure[data-figure="' + n + '"] .v');
                     return f ? f.textContent : null; };
  return {waiting: v('waiting'), answered: v('answered_today'), on_call: v('agents_on_call'),
          state: document.body.dataset.state || '',
          status: document.getElementById('status').textContent};
};
let last = JSON.stringify(read());
window.__ctLog.push(Object.assign({t: Date.now()}, read()));
new MutationObserver(() => {
  const now = read(), s = JSON.stringify(now);
  if (s !== last) { last = s; window.__ctLog.push(Object.assign({t: Date.now()}, now)); }
}).observe(document.body, {subtree: true, childList: true, characterData: true,
                           attributes: true, attributeFilter: ['class', 'data-state']});
"""

# Whether anything sticks out of the screen sideways, or overflows its
# own box; the smallest figure and label; whether the board needs scrolling.
LAYOUT = """
const W = document.documentElement.clientWidth, H = document.documentElement.clientHeight;
const out = {width: window.innerWidth, height: window.innerHeight,
             scroll_width: document.documentElement.scrollWidth,
             scroll_height: document.documentElement.scrollHeight,
             outside: [], clipped: []};
const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (e.className && typeof e.className === 'string' ? '.' + e.className.trim().replace(/ +/g, '.') : '') +
    (e.dataset && e.dataset.figure ? '[' + e.dataset.figure + ']' : '');
for (const e of document.body.querySelectorAll('*')) {
  const r = e.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.left < -0.5 || r.right > W + 0.5) out.outside.push(name(e) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== 'inline')
    out.clipped.push(name(e) + ' ' + e.scrollWidth + '>' + e.clientWidth + ' ' + JSON.stringify(e.textContent.slice(0, 40)));
  if (r.bottom > H + 0.5) out.below = (out.below || 0) + 1;
}
// A tile or the agents panel cut at the bottom (they hide their overflow).
for (const e of document.querySelectorAll('.tile, .agents'))
  if (e.scrollHeight > e.clientHeight + 1)
    out.clipped.push(name(e) + ' height ' + e.scrollHeight + '>' + e.clientHeight);
const px = (sel) => Math.min(...Array.from(document.querySelectorAll(sel))
    .map((e) => parseFloat(getComputedStyle(e).fontSize)));
out.figure_px = px('#queues .figure .v');
out.label_px = px('#queues .figure .k');
out.agent_px = px('#agents td');
out.heading_px = px('#queues .tile h3');
return out;
"""


def say(obj):
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def need(what):
    """Asks the test to act; returns the moment it did (epoch ms)."""
    say({"need": what})
    line = sys.stdin.readline()
    if not line.startswith("done"):
        raise SystemExit(f"the test answered {line!r} to {what!r}")
    return int(line.split()[1])


def now_ms():
    return time.time() * 1000.0


def append(path, text):
    """Appends the way Asterisk does; returns the moment just before."""
    t = now_ms()
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
    return t


def wait_for(what, cond, timeout_s, every_s=0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


def browser(chromium, chromedriver, lang):
    o = webdriver.ChromeOptions()
    o.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--lang={lang}", "--window-size=1920,1080", "--hide-scrollbars",
              "--force-device-scale-factor=1"):
        o.add_argument(a)
    o.add_experimental_option("prefs", {"intl.accept_languages": lang})
    # A dialog would not block the session: the trap records it instead.
    o.set_capability("unhandledPromptBehavior", "ignore")
    d = webdriver.Chrome(service=Service(chromedriver), options=o)
    d.set_page_load_timeout(30)
    d.set_script_timeout(30)
    return d


def login(driver, base, user, password):
    """Logs in through the login page, as a person would: the board's
    address without a login lands on /login (login required, from loopback
    too), the form is filled and sent, and the browser comes back to the
    board with its session cookie. Returns the board's address."""
    driver.get(base + "/wall")
    wait_for("the login page", lambda: "/login" in driver.current_url
             and driver.find_elements(By.ID, "login-submit"), 15)
    sent_to = driver.current_url
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    try:
        wait_for("the board after logging in", lambda: driver.current_url.endswith("/wall"), 15)
    except SystemExit as e:
        errors = [x.text for x in driver.find_elements(By.CSS_SELECTOR, ".login-error")]
        raise SystemExit(f"{e}: at {driver.current_url}, page says {errors}")
    say({"step": "login", "sent_to": sent_to, "landed": driver.current_url})
    return base + "/wall"


def reports(driver, base, day, shot):
    """Opens two reports of the day in a tab of its own, waits for their
    charts, and keeps screenshots of them."""
    main = driver.current_window_handle
    driver.switch_to.new_window("tab")
    out = {}
    try:
        for name in ("calls_by_hour", "calls_by_queue"):
            driver.get(f"{base}/reports/{name}?from={day}&to={day}")
            wait_for(f"the {name} report's chart",
                     lambda: driver.find_elements(By.CSS_SELECTOR, ".uplot canvas"), 15)
            path = shot(f"report-{name}-1920x1080.png")
            driver.save_screenshot(path)
            out[name] = {"charts": len(driver.find_elements(By.CSS_SELECTOR, ".uplot canvas")),
                         "rows": len(driver.find_elements(By.CSS_SELECTOR, "table tbody tr")),
                         "img_elements": len(driver.find_elements(By.TAG_NAME, "img")),
                         "screenshot": path}
    finally:
        driver.close()
        driver.switch_to.window(main)
    say({"step": "reports", "reports": out})


def screen(driver, width, height):
    """Makes the page's viewport exactly `width` × `height` CSS pixels."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1,
                            "mobile": False})
    wait_for(f"a {width}x{height} viewport",
             lambda: driver.execute_script("return [innerWidth, innerHeight]") == [width, height], 5)


def with_language(driver, url, accept):
    """Opens the board in a new tab whose requests send `Accept-Language:
    accept`, reads it, closes the tab. The board's own tab is left as is."""
    main = driver.current_window_handle
    driver.switch_to.new_window("tab")
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": accept}})
        driver.get(url)
        wait_for("the board in a new tab",
                 lambda: driver.execute_script("return document.body.dataset.state || ''") in ("live", "stale"),
                 15)
        return driver.execute_script(DUMP)
    finally:
        driver.close()
        driver.switch_to.window(main)


def log_since(driver, n):
    return driver.execute_script("return window.__ctLog.slice(arguments[0])", n)


def wait_log(driver, what, pred, timeout_s=30):
    """Waits until an entry of the change log satisfies `pred`; returns it."""
    start = driver.execute_script("return window.__ctLog.length") - 1

    def hit():
        for e in log_since(driver, start):
            if pred(e):
                return e
        return None

    # The times come from the page's observer, not from this poll: a slow
    # poll costs no accuracy, and spares the CPU the daemon needs.
    return wait_for(what, hit, timeout_s, every_s=0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="the daemon's address, http://127.0.0.1:PORT")
    ap.add_argument("--queue-log", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--queue", default="support", help="the tile the latency is read on")
    ap.add_argument("--agent", default="PJSIP/201", help="who answers the latency calls")
    ap.add_argument("--events", type=int, default=30, help="calls in the latency run")
    ap.add_argument("--user", required=True, help="a [[http.users]] name")
    ap.add_argument("--password", required=True)
    ap.add_argument("--day", required=True, help="the day of the reports, YYYY-MM-DD")
    args = ap.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)
    shot = lambda name: os.path.join(args.artifacts, name)

    d = browser(args.chromium, args.chromedriver, "en-US")
    try:
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
        url = login(d, args.url, args.user, args.password)
        screen(d, 1920, 1080)
        d.get(url)
        marker = f"ct-{time.time_ns()}"
        d.execute_script("window.__ctMarker = arguments[0]", marker)
        wait_for("the first board",
                 lambda: d.execute_script("return document.body.dataset.state || ''") in ("live", "stale")
                 and d.execute_script("return document.querySelectorAll('#queues .tile').length") > 0, 20)
        # 1, 4: the figures, names as text.
        say({"step": "board", "board": d.execute_script(DUMP)})

        # 2: appended lines move the board, no reload.
        d.execute_script(OBSERVE, args.queue)
        samples = {"enter": [], "connect": []}
        appended = {"enter": [], "connect": []}
        for i in range(args.events):
            cur = d.execute_script("return window.__ctLog[window.__ctLog.length - 1]")
            w0, a0, c0 = int(cur["waiting"]), int(cur["answered"]), cur["on_call"]
            t = int(time.time()) - 10
            call = f"lat{i}"
            t0 = append(args.queue_log, f"{t}|{call}|{args.queue}|NONE|ENTERQUEUE||8916222{i:04d}|1\n")
            e = wait_log(d, f"waiting {w0 + 1} after {call}'s ENTERQUEUE",
                         lambda e: e["waiting"] == str(w0 + 1))
            samples["enter"].append(e["t"] - t0)
            appended["enter"].append(t0)
            t0 = append(args.queue_log, f"{t + 2}|{call}|{args.queue}|{args.agent}|CONNECT|2|{call}.2|1\n")
            e = wait_log(d, f"waiting {w0} and answered {a0 + 1} after {call}'s CONNECT",
                         lambda e: e["waiting"] == str(w0) and e["answered"] == str(a0 + 1))
            samples["connect"].append(e["t"] - t0)
            appended["connect"].append(t0)
            # The call ends (not timed): the agent is free again.
            append(args.queue_log, f"{t + 7}|{call}|{args.queue}|{args.agent}|COMPLETECALLER|2|5|1\n")
            wait_log(d, f"on a call back to {c0} after {call} ended", lambda e: e["on_call"] == c0)
        all_ms = sorted(samples["enter"] + samples["connect"])
        pick = lambda q: all_ms[min(len(all_ms) - 1, int(round(q * (len(all_ms) - 1))))]
        say({"step": "latency", "ms": samples, "appended_at_ms": appended, "count": len(all_ms),
             "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": all_ms[-1]})
        say({"step": "after_latency", "board": d.execute_script(DUMP)})

        # 5 (browser's choice), in a tab of its own: Russian, and English.
        say({"step": "language_auto",
             "ru": with_language(d, url, "ru-RU,ru;q=0.9,en;q=0.5"),
             "en": with_language(d, url, "en-US,en;q=0.9")})

        # 3: a source not read goes stale, and fresh again.
        away = args.queue_log + ".away"
        os.rename(args.queue_log, away)
        t0 = now_ms()
        e = wait_log(d, "the page stale after the queue_log went away", lambda e: e["state"] == "stale", 20)
        stale = {"ms": e["t"] - t0, "status": e["status"]}
        d.save_screenshot(shot("wall-stale-source-1920x1080.png"))
        os.rename(away, args.queue_log)
        t0 = now_ms()
        e = wait_log(d, "the page live after the queue_log came back", lambda e: e["state"] == "live", 20)
        say({"step": "source_stale", "stale": stale, "fresh": {"ms": e["t"] - t0, "status": e["status"]}})

        # 3: the daemon killed, then back.
        t0 = need("kill")
        e = wait_log(d, "the page stale after the daemon was killed", lambda e: e["state"] == "stale", 30)
        stale = {"ms": e["t"] - t0, "status": e["status"]}
        d.save_screenshot(shot("wall-no-daemon-1920x1080.png"))
        # The board keeps its last figures while the daemon is away.
        kept = d.execute_script(DUMP)
        say({"step": "daemon_stale", "stale": stale, "board": kept})
        t0 = need("start")
        e = wait_log(d, "the page live once the daemon is back", lambda e: e["state"] == "live", 60)
        say({"step": "daemon_back", "ms": e["t"] - t0, "status": e["status"],
             "board": d.execute_script(DUMP)})

        # 5 (the config's choice): the restarted daemon has [wall] language = "ru".
        say({"step": "language_config", "en_browser": with_language(d, url, "en-US,en;q=0.9")})

        # 6: two screens.
        for w, h in ((1920, 1080), (1280, 720)):
            screen(d, w, h)
            # The next board is drawn at this size (one comes every second).
            time.sleep(1.2)
            lay = d.execute_script(LAYOUT)
            path = shot(f"wall-{w}x{h}.png")
            d.save_screenshot(path)
            lay["screenshot"] = path
            say({"step": "layout", "size": [w, h], "layout": lay})

        reports(d, args.url, args.day, shot)

        try:
            d.switch_to.alert
            dialog = True
        except NoAlertPresentException:
            dialog = False
        say({"step": "end",
             "marker_kept": d.execute_script("return window.__ctMarker") == marker,
             "navigations": d.execute_script("return performance.getEntriesByType('navigation').length"),
             "url": d.current_url,
             "dialog_open": dialog,
             "board": d.execute_script(DUMP)})
    finally:
        d.quit()


if __name__ == "__main__":
    main()
