/// The status page's style and script, kept apart from the HTML so their CSP hashes can be computed.
enum StatusPageAssets {
    static let style = """
:root{--bg:#f4f6f8;--card:#fff;--ink:#1d2733;--muted:#5f6b7a;--line:#dde3ea;--accent:#1f6feb;
--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--idle:#6e7781;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);font-size:15px}
header{display:flex;align-items:center;gap:12px;padding:12px 20px;background:#12202f;color:#fff}
header h1{font-size:18px;margin:0;letter-spacing:.02em}header .where{color:#9fb3c8;font-size:13px}
header .spacer{flex:1}header .who{font-size:13px;color:#cfdbe7}
main{max-width:1100px;margin:0 auto;padding:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;margin-bottom:14px}
.login{max-width:380px;margin:40px auto}.login h2{margin:0 0 12px;font-size:17px}
label{display:block;font-size:13px;color:var(--muted);margin:10px 0 4px}
input,textarea{width:100%;padding:9px 10px;border:1px solid var(--line);border-radius:7px;font:inherit}
textarea{height:70px;font-family:ui-monospace,monospace;font-size:12px}
button{font:inherit;border:1px solid var(--line);background:#fff;border-radius:7px;padding:6px 12px;cursor:pointer}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button:disabled{opacity:.45;cursor:default}header button{background:transparent;color:#fff;border-color:#3b4d60}
.error{color:var(--bad);font-size:13px;min-height:18px;margin-top:8px}
.summary{display:flex;gap:10px;flex-wrap:wrap;margin-bottom:14px}
.pill{background:var(--card);border:1px solid var(--line);border-radius:999px;padding:4px 12px;font-size:13px}
table{width:100%;border-collapse:collapse}th{text-align:left;font-size:12px;color:var(--muted);font-weight:600;
text-transform:uppercase;letter-spacing:.04em;padding:8px;border-bottom:1px solid var(--line)}
td{padding:10px 8px;border-bottom:1px solid var(--line);vertical-align:top}tr:last-child td{border-bottom:0}
.name{font-weight:600}.sub{color:var(--muted);font-size:12px;margin-top:2px;word-break:break-all}
.badge{display:inline-block;border-radius:999px;padding:2px 10px;font-size:12px;font-weight:600;color:#fff}
.connected{background:var(--ok)}.connecting,.retrying,.waiting{background:var(--warn)}.failed{background:var(--bad)}
.disconnected{background:var(--idle)}.reason{font-size:12px;color:var(--muted);margin-top:4px;max-width:320px}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}.actions{white-space:nowrap}.actions button{margin:0 4px 4px 0}
.live{display:inline-block;width:8px;height:8px;border-radius:50%;background:var(--idle);margin-right:6px}
.live.on{background:#2da44e}.empty{color:var(--muted);text-align:center;padding:24px}
@media (max-width:720px){thead{display:none}table,tbody,tr,td{display:block;width:100%}
tr{border-bottom:1px solid var(--line);padding:8px 0}td{border:0;padding:4px 0}header{flex-wrap:wrap}}
"""

    static let script = """
"use strict";
const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const $ = (id) => document.getElementById(id);
let configs = [], statuses = {}, stream = null;
function api(path, options) {
  return fetch(base + path, Object.assign({credentials: "same-origin", cache: "no-store"}, options || {}));
}
function text(el, value) { el.textContent = value; return el; }
function el(tag, cls, value) { const e = document.createElement(tag); if (cls) e.className = cls;
  if (value !== undefined) e.textContent = value; return e; }
function bytes(n) { const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0; n = n || 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; }
function ago(since) { if (!since) return ""; const s = Math.max(0, Math.floor(Date.now() / 1000) - since);
  if (s < 60) return s + " s ago"; if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago"; return Math.floor(s / 86400) + " d ago"; }
function describe(name) { const p = name.split("::"); if (p.length !== 6) return name;
  const end = (p[4] || "") + ":" + p[5]; return p[2] + " :" + p[3] + " \\u2192 " + (p[4] ? end : "port " + p[5]); }
function showLogin(message) { $("app").hidden = true; for (const r of rowsByName.values()) r.tr.remove(); rowsByName.clear(); $("login").hidden = false; $("who").textContent = "";
  $("logout").hidden = true; text($("login-error"), message || ""); if (stream) { stream.close(); stream = null; } }
// Promise chains: this text lives in a Swift file, whose Embedded-subset guard looks for Swift's concurrency
// keywords.
function start() {
  return api("ssh/tunnel/configs").then((r) => {
    if (r.status === 401) { showLogin(""); return; }
    if (!r.ok) { showLogin("The appliance answered " + r.status); return; }
    return r.json().then((list) => {
      configs = list;
      $("login").hidden = true; $("app").hidden = false; $("logout").hidden = false;
      connectStream(); render();
    });
  });
}
function connectStream() {
  if (stream) stream.close();
  stream = new EventSource(base + "ssh/tunnel/status/stream");
  stream.addEventListener("statuses", (e) => { statuses = JSON.parse(e.data); $("live").className = "live on"; render(); });
  stream.onerror = () => { $("live").className = "live"; };
}
function act(route, body) {
  return api("ssh/tunnel/" + route, {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)}).then((r) => {
    if (r.status === 401) { showLogin("Your session has ended; sign in again."); return; }
    if (!r.ok) return r.json().catch(() => ({})).then((j) => alert(j.error || ("Failed: " + r.status)));
  });
}
const rowsByName = new Map();
function makeRow(name) {
  const r = {tr: el("tr"), cells: []}; r.tr.dataset.name = name;
  const c1 = el("td"); c1.append(el("div", "name", describe(name)), el("div", "sub", name)); r.tr.append(c1);
  r.status = el("td"); r.tr.append(r.status);
  for (let i = 0; i < 4; i++) { const c = el("td", "num"); r.cells.push(c); r.tr.append(c); }
  const actions = el("td", "actions");
  r.connect = el("button", "primary", "Connect"); r.disconnect = el("button", "", "Disconnect");
  r.cancel = el("button", "", "Cancel");
  r.connect.onclick = () => { const cfg = configs.find((c) => c.name === name); if (cfg) act("connect", cfg.body); };
  r.disconnect.onclick = () => act("disconnect", {tunnelName: name});
  r.cancel.onclick = () => act("cancel", {tunnelName: name});
  actions.append(r.connect, r.disconnect, r.cancel); r.tr.append(actions);
  return r;
}
// Rows are updated in place, so a button under the pointer is never replaced by a status event.
function render() {
  const rows = $("rows");
  const names = configs.map((c) => c.name);
  for (const n of Object.keys(statuses)) if (!names.includes(n)) names.push(n);
  const counts = {connected: 0, problem: 0, idle: 0};
  for (const [n, r] of rowsByName) if (!names.includes(n)) { r.tr.remove(); rowsByName.delete(n); }
  for (const name of names) {
    const cfg = configs.find((c) => c.name === name);
    const st = statuses[name] || {status: "disconnected", connected: false};
    if (st.status === "connected") counts.connected++; else if (st.status === "disconnected") counts.idle++;
    else counts.problem++;
    let r = rowsByName.get(name);
    if (!r) { r = makeRow(name); rowsByName.set(name, r); }
    rows.append(r.tr);
    const badge = el("span", "badge " + st.status, st.status); badge.dataset.role = "status";
    const details = [badge];
    if (st.status === "waiting" && st.nextRetryIn !== undefined) details.push(el("div", "reason", "next try in " + st.nextRetryIn + " s"));
    if (st.retryCount !== undefined) details.push(el("div", "reason", "retry " + st.retryCount + " of " + (st.maxRetries === -1 ? "\\u221e" : st.maxRetries)));
    if (st.reason) details.push(el("div", "reason", st.reason + (st.errorType ? " (" + st.errorType + ")" : "")));
    r.status.replaceChildren(...details);
    text(r.cells[0], cfg ? cfg.mode : "");
    text(r.cells[1], bytes(st.bytesIn) + " in / " + bytes(st.bytesOut) + " out");
    text(r.cells[2], String(st.activeConnections || 0));
    text(r.cells[3], ago(st.since));
    const up = ["connected", "connecting", "retrying", "waiting"].includes(st.status);
    r.connect.disabled = !cfg || up;
    r.disconnect.disabled = st.status === "disconnected";
    r.cancel.disabled = !["retrying", "waiting", "connecting"].includes(st.status);
  }
  let empty = $("empty-row");
  if (!names.length && !empty) { empty = el("tr"); empty.id = "empty-row"; const td = el("td", "empty", "No tunnels you may use.");
    td.colSpan = 7; empty.append(td); rows.append(empty); }
  if (names.length && empty) empty.remove();
  text($("count-up"), counts.connected + " connected"); text($("count-bad"), counts.problem + " need attention");
  text($("count-idle"), counts.idle + " stopped");
}
$("login-form").onsubmit = (e) => {
  e.preventDefault(); text($("login-error"), "");
  api("users/login", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("username").value, password: $("password").value})}).then((r) => {
    if (r.ok) { $("password").value = ""; start(); return; }
    return r.json().catch(() => ({})).then((j) => text($("login-error"), j.error || ("Sign-in failed: " + r.status)));
  });
};
$("token-form").onsubmit = (e) => {
  e.preventDefault(); const t = $("token").value.trim(); if (!t) return;
  document.cookie = "jwt=" + encodeURIComponent(t) + "; Path=/; SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");
  $("token").value = ""; start();
};
$("logout").onclick = () => api("users/logout", {method: "POST"}).then(() => {
  document.cookie = "jwt=; Path=/; Max-Age=0"; showLogin("Signed out."); });
text($("where"), location.host);
setInterval(() => { if (!$("app").hidden) render(); }, 10000);
start();
"""
}
