// The operator dashboard: fetches /dashboard/api/summary with the ADMIN token kept in
// sessionStorage and draws it; uPlot (static/vendor) draws the charts.
"use strict";

const KEY = "templator.dashboard.token";
const REFRESH_MS = 5000;
const $ = (selector) => document.querySelector(selector);
const charts = {};
let timer = null;

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function num(n, digits = 0) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en", { maximumFractionDigits: digits });
}
function pct(x) { return x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`; }
function ago(unix) {
  if (!unix) return "never";
  const s = Date.now() / 1000 - unix;
  if (s < 120) return `${Math.round(s)} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
function seconds(s) {
  if (s === null || s === undefined) return "–";
  return s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
}
function dl(rows) {
  return `<dl>${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>`;
}
function card(name, title, state, rows) {
  const up = state && state.up;
  const badge = `<span class="badge ${up ? "up" : "down"}">${up ? "up" : "down"}</span>`;
  const body = up ? dl(rows(state.figures)) : `<p class="error">${esc(state ? state.error : "not configured")}</p>`;
  return `<div class="card" data-store="${name}" data-up="${up ? 1 : 0}"><h3>${esc(title)} ${badge}</h3>${body}</div>`;
}
function table(head, rows) {
  return `<tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>` +
    rows.map((r) => `<tr>${r.map((c, i) => i === 0 && typeof c === "object" ? c.html : `<td>${esc(c)}</td>`).join("")}</tr>`).join("");
}

function renderStores(stores) {
  const pg = (f) => [
    ["connections", `${f.connections} / ${f.max_connections}`],
    ["buffer-cache hit ratio", pct(f.cache_hit_ratio)],
    ["database size", bytes(f.database.size_bytes)],
    ["commits / rollbacks", `${num(f.database.xact_commit)} / ${num(f.database.xact_rollback)}`],
    ["deadlocks", num(f.database.deadlocks)],
    ["temp bytes", bytes(f.database.temp_bytes)],
    ["longest transaction", seconds(Math.max(0, ...f.activity.filter((a) => a.state !== "idle").map((a) => a.max_tx_duration)))],
    ["xid age", num(Math.max(...f.wraparound.map((w) => w.age_datfrozenxid)))],
    ["role", f.is_replica ? `replica, lag ${seconds(f.replica_lag_seconds)}` : `primary, ${f.replicas.length} replica(s)`],
  ];
  const redis = (f) => {
    const lookups = f.keyspace_hits + f.keyspace_misses;
    return [
      ["memory", `${bytes(f.used_memory)} / ${f.maxmemory ? bytes(f.maxmemory) : "no limit"}`],
      ["evicted keys", num(f.evicted_keys)],
      ["keyspace hit ratio", lookups ? pct(f.keyspace_hits / lookups) : "–"],
      ["clients", num(f.connected_clients)],
      ["keys", num(Object.values(f.db_keys).reduce((a, b) => a + b, 0))],
      ["version", f.redis_version],
    ];
  };
  const objects = (f) => {
    const prefixes = Object.entries(f.prefixes);
    if (!prefixes.length) return [["bucket", f.bucket], ["objects", "none yet"]];
    return [["bucket", f.bucket], ...prefixes.map(([p, e]) => [p || "(root)", `${num(e.objects)} · ${bytes(e.bytes)}`])];
  };
  const disk = (f) => f.filesystems.flatMap((fs) => [
    [fs.path, pct(1 - fs.avail_bytes / fs.size_bytes) + " used"], ["free", bytes(fs.avail_bytes)]]);
  $("#stores .cards").innerHTML =
    card("postgres", "PostgreSQL", stores.postgres, pg) +
    card("redis", "Redis", stores.redis, redis) +
    card("object_store", "Object store", stores.object_store, objects) +
    card("filesystem", "Disk", stores.filesystem, disk);
}

function renderPools(pools, pid) {
  $("#pools small").textContent = `of the worker that answered (pid ${pid})`;
  const rows = Object.entries(pools).map(([name, p]) => [name, p.max, p.open, p.in_use, p.idle, p.waiting, p.timeouts]);
  $("#pools table").innerHTML = table(["pool", "max", "open", "in use", "idle", "waiting", "timeouts"], rows);
}

function chart(id, series, data) {
  const el = $(`#${id} .chart`);
  if (!charts[id]) {
    charts[id] = new uPlot({
      width: Math.max(320, el.clientWidth), height: 220,
      scales: { x: { time: true } },
      series: [{}, ...series],
      axes: [{}, { size: 60 }],
    }, data, el);
  } else {
    charts[id].setData(data);
  }
}

function renderHistory(history) {
  const x = history.map((p) => p.at);
  chart("throughput", [
    { label: "requests/s", stroke: "#0969da", width: 2 },
    { label: "5xx/s", stroke: "#cf222e", width: 2 },
  ], [x, history.map((p) => p.requests_per_second), history.map((p) => p.errors_per_second)]);
  const ms = (v) => (v === null ? null : v * 1000);
  chart("latency", [
    { label: "p50 ms", stroke: "#1a7f37", width: 2 },
    { label: "p95 ms", stroke: "#9a6700", width: 2 },
  ], [x, history.map((p) => ms(p.p50_seconds)), history.map((p) => ms(p.p95_seconds))]);
  $("#throughput").dataset.points = String(history.length);
}

function renderQueries(top) {
  const el = $("#queries .body");
  if (top.error) { el.innerHTML = `<p class="warn">${esc(top.error)}</p>`; return; }
  const rows = top.rows.map((r) => [
    { html: `<td class="query" title="${esc(r.query)}">${esc(r.query)}</td>` },
    num(r.calls), num(r.total_ms, 1), num(r.mean_ms, 3), num(r.rows)]);
  el.innerHTML = `<table>${table(["statement", "calls", "total ms", "mean ms", "rows"], rows)}</table>`;
}

function renderTables(pgState) {
  const el = $("#tables table");
  if (!pgState || !pgState.up) { el.innerHTML = "<tr><td>PostgreSQL is down</td></tr>"; return; }
  const rows = pgState.figures.tables.map((t) => [t.relname, num(t.n_live_tup), num(t.n_dead_tup),
    bytes(t.table_size_bytes), bytes(t.index_size_bytes), ago(t.last_autovacuum || t.last_vacuum)]);
  el.innerHTML = table(["table", "rows", "dead rows", "size", "indexes", "last vacuum"], rows);
}

function renderDomain(state) {
  const el = $("#domain .body");
  if (!state || !state.up) { el.innerHTML = `<p class="error">${esc(state ? state.error : "")}</p>`; return; }
  const f = state.figures;
  const recent = f.recent_sessions;
  const finished = Object.values(recent).reduce((a, r) => a + r.count, 0);
  const failed = recent.FAILED ? recent.FAILED.count : 0;
  const done = recent.COMPLETED;
  const window = `last ${Math.round(f.recent_window_seconds / 60)} min`;
  el.innerHTML =
    `<table>${table(["sessions", ...Object.keys(f.sessions)], [["by status", ...Object.values(f.sessions).map((v) => num(v))]])}</table>` +
    dl([[`finished, ${window}`, num(finished)], [`failed, ${window}`, `${num(failed)} (${finished ? pct(failed / finished) : "–"})`],
        ["processing p50 / p95", done && done.p50_ms !== null ? `${seconds(done.p50_ms / 1000)} / ${seconds(done.p95_ms / 1000)}` : "–"]]) +
    `<table>${table(["templates", ...Object.keys(f.templates)], [["by status", ...Object.values(f.templates).map((v) => num(v))]])}</table>`;
}

const QUEUE_STATES = ["ready", "retry_wait", "processing", "expired"];

function renderQueue(state) {
  const el = $("#queue .body");
  if (!state || !state.up) { el.innerHTML = `<p class="error">${esc(state ? state.error : "")}</p>`; return; }
  const f = state.figures;
  const tenants = (f.queue || []).slice().sort(
    (a, b) => QUEUE_STATES.reduce((s, k) => s + b[k] - a[k], 0));
  const totals = Object.fromEntries(QUEUE_STATES.map((k) => [k, tenants.reduce((s, t) => s + t[k], 0)]));
  const oldest = tenants.reduce((m, t) => Math.max(m, t.oldest_ready_seconds || 0), 0);
  const rows = tenants.slice(0, 10).map((t) =>
    `<tr data-tenant="${esc(t.tenant)}"><td>${esc(t.tenant)}</td>` +
    QUEUE_STATES.map((k) => `<td data-state="${k}">${num(t[k])}</td>`).join("") +
    `<td>${t.oldest_ready_seconds === null ? "–" : seconds(t.oldest_ready_seconds)}</td></tr>`).join("");
  el.innerHTML =
    dl([["ready now", num(totals.ready)], ["waiting for a retry", num(totals.retry_wait)],
        ["held by workers", num(totals.processing)], ["lease expired (awaiting rescue)", num(totals.expired)],
        ["drafts (not submitted)", num(f.drafts || 0)], ["oldest ready", seconds(oldest)]]) +
    (rows
      ? `<table><thead><tr><th>tenant</th>${QUEUE_STATES.map((k) => `<th>${k.replace("_", " ")}</th>`).join("")}<th>oldest ready</th></tr></thead><tbody>${rows}</tbody></table>`
      : '<p class="muted" data-queue="empty">The queue is empty.</p>');
}

function renderBackups(backup) {
  const el = $("#backups .body");
  const m = backup.metrics;
  if (!Object.keys(m).length) {
    el.innerHTML = '<p class="muted" data-backups="none">No backups yet: nothing reports backup freshness.</p>';
    return;
  }
  const rows = [];
  if ("templator_backup_last_success_timestamp_seconds" in m) rows.push(["last successful backup", ago(m.templator_backup_last_success_timestamp_seconds)]);
  if ("templator_backup_archive_lag_seconds" in m) rows.push(["WAL archive lag", seconds(m.templator_backup_archive_lag_seconds)]);
  if ("templator_backup_last_drill_success_timestamp_seconds" in m) rows.push(["last restore drill", ago(m.templator_backup_last_drill_success_timestamp_seconds)]);
  for (const [k, v] of Object.entries(m)) if (!rows.length) rows.push([k, num(v, 2)]);
  el.innerHTML = dl(rows);
}

function render(data) {
  renderStores(data.stores);
  renderPools(data.pools, data.pid);
  renderHistory(data.history);
  renderQueries(data.top_queries);
  renderTables(data.stores.postgres);
  renderDomain(data.stores.domain);
  renderQueue(data.stores.domain);
  renderBackups(data.backup);
  $("#status").textContent = `updated ${new Date(data.generated_at * 1000).toLocaleTimeString()}`;
  document.body.dataset.loaded = "1";
}

function showLogin(message) {
  clearTimeout(timer);
  $("#board").hidden = true; $("#logout").hidden = true; $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

async function refresh() {
  const token = sessionStorage.getItem(KEY);
  if (!token) { showLogin(); return; }
  let response;
  try {
    response = await fetch("/dashboard/api/summary", { headers: { Authorization: `Bearer ${token}` } });
  } catch (err) {
    $("#status").textContent = `API unreachable (${err.message}); retrying`;
    timer = setTimeout(refresh, REFRESH_MS);
    return;
  }
  if (response.status === 401 || response.status === 403) {
    const problem = await response.json().catch(() => ({}));
    sessionStorage.removeItem(KEY);
    showLogin(problem.detail || "That token may not open the dashboard (ADMIN only).");
    return;
  }
  if (response.ok) {
    $("#login").hidden = true; $("#board").hidden = false; $("#logout").hidden = false;
    render(await response.json());
  } else {
    $("#status").textContent = `the API answered ${response.status}; retrying`;
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

$("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("#token").value.trim());
  $("#token").value = "";
  refresh();
});
$("#logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin(); });
refresh();
