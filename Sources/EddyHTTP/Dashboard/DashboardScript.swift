extension DashboardPage {
    /// The page's script: polls the API each second, computes rates from totals, draws SVG.
    static let script = ##"""
"use strict";
// Eddy dashboard: polls /api/status and /api/views once a second and redraws. Rates are computed here
// from successive totals; charts are plain SVG. No libraries, no network beyond this server.

const POLL_MS = 1000;
const WINDOW_S = 120;      // span of the line charts
const RATE_WINDOW_S = 5;   // rates are averaged over this many seconds
const TOP_N = 10;          // rows charted per view
const FETCH_LIMIT = 50;    // rows asked for per view
const PALETTE = ["#38bdf8", "#f472b6", "#facc15", "#34d399", "#a78bfa", "#fb923c", "#60a5fa", "#f87171", "#2dd4bf", "#e879f9"];

const samples = [];        // {t, consumed: {source: n}, errors: n}
const viewHistory = {};    // view name -> [{t, values: {label: number}}]
const colorIndex = {};     // view name -> {label: palette index}
const lineMode = {};       // view name -> "total" | "rate"
let polls = 0;

const $ = (id) => document.getElementById(id);
const esc = (value) => String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function fmtInt(n) { return Math.round(n).toLocaleString("en-US"); }
function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  if (Number.isInteger(n)) return fmtInt(n);
  return n.toLocaleString("en-US", { maximumFractionDigits: Math.abs(n) < 10 ? 2 : 1 });
}
function fmtCompact(n) {
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
  return fmtNum(Number.isInteger(n) ? n : Math.round(n * 100) / 100);
}
function fmtRate(n) { return n === null ? "–" : (n >= 100 ? fmtInt(n) : fmtNum(Math.round(n * 10) / 10)); }
function fmtDuration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}
function now() { return Date.now() / 1000; }

async function fetchJSON(path) {
  const response = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(path + " answered " + response.status);
  return response.json();
}

// Rate of a total over the last RATE_WINDOW_S seconds of samples; null until two samples exist.
function rateOf(pick) {
  if (samples.length < 2) return null;
  const last = samples[samples.length - 1];
  let first = samples[0];
  for (let i = samples.length - 2; i >= 0; i--) {
    first = samples[i];
    if (last.t - samples[i].t >= RATE_WINDOW_S) break;
  }
  const dt = last.t - first.t;
  const a = pick(first), b = pick(last);
  if (dt <= 0 || a === undefined || b === undefined) return null;
  return Math.max(0, (b - a) / dt);
}
// Per-second rates between consecutive samples, for sparklines.
function rateSeries(pick) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = samples[i].t - samples[i - 1].t;
    const a = pick(samples[i - 1]), b = pick(samples[i]);
    if (dt > 0 && a !== undefined && b !== undefined) out.push(Math.max(0, (b - a) / dt));
  }
  return out.slice(-60);
}

function stateClass(state) {
  return { running: "ok", catching_up: "info", starting: "info", paused: "warn", stopping: "warn" }[state] || "info";
}

// The label of a row: its group-key cells joined; value: the first numeric non-key column.
function describeView(view) {
  const keys = view.columns.map((c, i) => (c.isGroupKey ? i : -1)).filter((i) => i >= 0);
  const isNum = (v) => typeof v === "number";
  let valueIndex = view.columns.findIndex((c, i) => !c.isGroupKey && view.rows.some((r) => isNum(r[i])));
  if (valueIndex < 0) valueIndex = view.columns.findIndex((c, i) => view.rows.some((r) => isNum(r[i])));
  const labelColumns = keys.length > 0 ? keys : view.columns.map((c, i) => i).filter((i) => i !== valueIndex).slice(0, 1);
  const label = (row) => labelColumns.map((i) => (row[i] === null ? "NULL" : String(row[i]))).join(" · ") || "(all)";
  const rows = valueIndex < 0 ? [] : view.rows
    .filter((r) => isNum(r[valueIndex]))
    .map((r) => ({ label: label(r), value: r[valueIndex] }))
    .sort((a, b) => b.value - a.value);
  return {
    rows, valueColumn: valueIndex >= 0 ? view.columns[valueIndex].name : null,
    keyColumns: labelColumns.map((i) => view.columns[i].name),
  };
}

function colorFor(view, label) {
  const map = colorIndex[view] || (colorIndex[view] = {});
  if (!(label in map)) map[label] = Object.keys(map).length % PALETTE.length;
  return PALETTE[map[label]];
}

function record(status, views) {
  const t = now();
  const consumed = {};
  for (const s of status.sources) consumed[s.name] = s.consumed;
  const errors = Object.values(status.decodeErrors || {}).reduce((a, b) => a + b, 0);
  const acked = {};
  for (const sink of status.sinks) acked[sink.name] = sink.acknowledgedEpoch;
  samples.push({ t, consumed, errors, acked, epoch: status.checkpoint.epoch, commitMs: status.checkpoint.lastDurationMilliseconds });
  while (samples.length > 2 && t - samples[0].t > WINDOW_S + RATE_WINDOW_S) samples.shift();
  for (const view of views) {
    const described = describeView(view);
    const history = viewHistory[view.name] || (viewHistory[view.name] = []);
    const values = {};
    for (const row of described.rows) values[row.label] = row.value;
    history.push({ t, values });
    while (history.length > 2 && t - history[0].t > WINDOW_S + RATE_WINDOW_S) history.shift();
  }
}

// ---------- header, banners, KPIs ----------

function renderHeader(status) {
  document.title = status.pipeline + " · eddy";
  $("pipeline").innerHTML = "pipeline <b>" + esc(status.pipeline) + "</b>";
  const state = $("state");
  state.className = "pill " + stateClass(status.state);
  state.textContent = status.state.replace("_", " ");
  const ready = $("ready");
  ready.className = "pill " + (status.ready ? "ok" : "warn");
  ready.textContent = status.ready ? "ready" : "not ready";
  $("uptime").textContent = "up " + fmtDuration(status.uptimeSeconds);
  $("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
  const reasons = $("reasons");
  reasons.hidden = status.ready || status.notReadyReasons.length === 0;
  reasons.innerHTML = "<b>Not ready</b><ul>" + status.notReadyReasons.map((r) => "<li>" + esc(r) + "</li>").join("") + "</ul>";
}

function kpi(label, value, unit, sub) {
  return '<div class="kpi"><div class="label">' + esc(label) + '</div><div class="value">' + value +
    (unit ? "<small>" + esc(unit) + "</small>" : "") + '</div><div class="sub">' + (sub || "&nbsp;") + "</div></div>";
}

function renderKPIs(status) {
  const totalRate = rateOf((s) => Object.values(s.consumed).reduce((a, b) => a + b, 0));
  const consumed = status.sources.reduce((a, s) => a + s.consumed, 0);
  const lag = status.sources.reduce((a, s) => a + s.partitions.reduce((b, p) => b + (p.lag || 0), 0), 0);
  const partitions = status.sources.reduce((a, s) => a + s.partitions.length, 0);
  const errors = Object.values(status.decodeErrors || {}).reduce((a, b) => a + b, 0);
  const errorRate = rateOf((s) => s.errors);
  const healthy = status.sinks.filter((s) => s.healthy).length;
  const pending = status.sinks.reduce((a, s) => a + s.pendingEpochs, 0);
  const cp = status.checkpoint;
  const groups = status.views.reduce((a, v) => a + v.groups, 0);
  $("kpis").innerHTML = [
    kpi("Throughput", fmtRate(totalRate), "msg/s", fmtInt(consumed) + " consumed"),
    kpi("Consumer lag", fmtInt(lag), "msgs", partitions + " partition" + (partitions === 1 ? "" : "s")),
    kpi("Checkpoint", cp.secondsSinceCommit === undefined ? "–" : fmtDuration(cp.secondsSinceCommit), "ago",
      "epoch " + fmtInt(cp.epoch) + (cp.lastDurationMilliseconds !== undefined ? " · " + fmtNum(Math.round(cp.lastDurationMilliseconds * 10) / 10) + " ms" : "")),
    kpi("Sinks", healthy + "/" + status.sinks.length, "healthy", pending + " pending epoch" + (pending === 1 ? "" : "s")),
    kpi("Decode errors", fmtInt(errors), "", errorRate ? fmtRate(errorRate) + "/s now" : "none lately"),
    kpi("Groups", fmtInt(groups), "", status.views.length + " view" + (status.views.length === 1 ? "" : "s")),
  ].join("");
}

// ---------- pipeline flow ----------

function sparkline(values, color) {
  if (values.length < 2) return '<svg class="spark"></svg>';
  const w = 300, h = 34, max = Math.max(...values, 1e-9) * 1.15;
  const pts = values.map((v, i) => [(i / (values.length - 1)) * w, h - 3 - (v / max) * (h - 6)]);
  const line = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join("");
  return '<svg class="spark" viewBox="0 0 ' + w + " " + h + '" preserveAspectRatio="none">' +
    '<path d="' + line + "L" + w + " " + h + "L0 " + h + 'Z" fill="' + color + '" fill-opacity="0.12"/>' +
    '<path d="' + line + '" fill="none" stroke="' + color + '" stroke-width="1.6" vector-effect="non-scaling-stroke"/></svg>';
}

function stat(name, value) { return "<div><span>" + esc(name) + "</span><b>" + value + "</b></div>"; }

function sourceNode(source, status) {
  if (!source) return '<div class="node source"><div class="kind"><span class="tag">source</span></div><div class="name">unknown</div></div>';
  const rate = rateOf((s) => s.consumed[source.name]);
  const lag = source.partitions.reduce((a, p) => a + (p.lag || 0), 0);
  const errors = Object.entries(status.decodeErrors || {}).filter(([, n]) => n > 0);
  const errorTotal = errors.reduce((a, [, n]) => a + n, 0);
  const errorText = errors.length === 0 ? "" :
    '<div class="note">decode errors: ' + errors.map(([k, n]) => esc(k.replace(/_/g, " ")) + " " + fmtInt(n)).join(" · ") + "</div>";
  let table = "";
  if (source.partitions.length > 0 && source.partitions.length <= 6) {
    table = '<table class="partitions"><tr><th>partition</th><th>next offset</th><th>high watermark</th><th>lag</th></tr>' +
      source.partitions.map((p) => "<tr><td>" + p.partition + "</td><td>" + fmtInt(p.nextOffset) + "</td><td>" +
        (p.highWatermark === undefined ? "–" : fmtInt(p.highWatermark)) + "</td><td>" + (p.lag === undefined ? "–" : fmtInt(p.lag)) + "</td></tr>").join("") +
      "</table>";
  }
  return '<div class="node source"><div class="kind"><span class="tag">source</span><span class="tech">Kafka</span></div>' +
    '<div class="name">' + esc(source.name) + '</div><div class="detail">topic ' + esc(source.topic) + "</div>" +
    '<div class="big">' + fmtRate(rate) + "<small>msg/s</small></div>" +
    sparkline(rateSeries((s) => s.consumed[source.name]), "#38bdf8") +
    '<div class="stats">' + stat("consumed", fmtInt(source.consumed)) + stat("lag", fmtInt(lag)) +
    stat("partitions", source.partitions.length) + stat("errors", fmtInt(errorTotal)) + "</div>" + table + errorText + "</div>";
}

function viewNode(view, rows) {
  const described = rows ? describeView(rows) : { rows: [], keyColumns: [], valueColumn: null };
  const top = described.rows.slice(0, 5).map((r) =>
    '<div><span><i style="background:' + colorFor(view.name, r.label) + '"></i>' + esc(truncate(r.label, 22)) + "</span><b>" + fmtCompact(r.value) + "</b></div>").join("");
  return '<div class="node view"><div class="kind"><span class="tag">view</span><span class="tech">GROUP BY</span></div>' +
    '<div class="name">' + esc(view.name) + '</div><div class="detail">from ' + esc(view.source) +
    (described.keyColumns.length ? " · by " + esc(described.keyColumns.join(", ")) : "") + "</div>" +
    '<div class="big">' + fmtInt(view.groups) + "<small>group" + (view.groups === 1 ? "" : "s") + "</small></div>" +
    (top ? '<div class="toplist">' + top + "</div>" : "") + "</div>";
}

function checkpointNode(cp) {
  const durations = samples.map((s) => s.commitMs).filter((v) => v !== undefined).slice(-60);
  return '<div class="node checkpoint"><div class="kind"><span class="tag">checkpoint</span><span class="tech">LMDB</span></div>' +
    '<div class="name">epoch ' + fmtInt(cp.epoch) + '</div><div class="detail">state + offsets, durable</div>' +
    '<div class="big">' + (cp.secondsSinceCommit === undefined ? "–" : fmtDuration(cp.secondsSinceCommit)) + "<small>since commit</small></div>" +
    sparkline(durations, "#facc15") + '<div class="caption">commit duration, last minute</div>' +
    '<div class="stats one">' + stat("last commit took", cp.lastDurationMilliseconds === undefined ? "–" : fmtNum(Math.round(cp.lastDurationMilliseconds * 100) / 100) + " ms") +
    stat("commits per second", fmtRate(rateOf((s) => s.epoch))) + "</div></div>";
}

function sinkNode(sink, checkpointEpoch) {
  const health = sink.healthy ? '<span class="pill ok">healthy</span>' : '<span class="pill bad">failing</span>';
  const behind = Math.max(0, checkpointEpoch - sink.acknowledgedEpoch);
  const writes = rateSeries((s) => s.acked && s.acked[sink.name]);
  return '<div class="node sink' + (sink.healthy ? "" : " failing") + '"><div class="kind"><span class="tag">sink</span><span class="tech">Redis</span></div>' +
    '<div class="name">' + esc(sink.name) + '</div><div class="detail">' + health + "</div>" +
    '<div class="big">' + fmtInt(behind) + "<small>epoch" + (behind === 1 ? "" : "s") + " behind</small></div>" +
    sparkline(writes, "#34d399") + '<div class="caption">epochs acknowledged per second</div>' +
    '<div class="stats one">' + stat("acknowledged epoch", fmtInt(sink.acknowledgedEpoch)) + stat("pending epochs", fmtInt(sink.pendingEpochs)) +
    stat("retries", fmtInt(sink.retries)) + stat("last write", sink.secondsSinceLastWrite === undefined ? "never" : fmtDuration(sink.secondsSinceLastWrite) + " ago") + "</div>" +
    (sink.lastError ? '<div class="error" title="' + esc(sink.lastError) + '">' + esc(sink.lastError) + "</div>" : "") + "</div>";
}

function arrow(text) { return '<div class="arrow"><span>' + esc(text) + "</span></div>"; }

function renderFlows(status, views) {
  const flows = status.views.map((view) => {
    const source = status.sources.find((s) => s.name === view.source);
    const sinks = status.sinks.filter((s) => s.view === view.name);
    const rate = source ? rateOf((s) => s.consumed[source.name]) : null;
    const rows = views.find((v) => v.name === view.name);
    return '<div class="flow">' + sourceNode(source, status) + arrow(fmtRate(rate) + "/s") + viewNode(view, rows) +
      arrow("dirty keys") + checkpointNode(status.checkpoint) + arrow("epoch " + fmtInt(status.checkpoint.epoch)) +
      '<div class="sinks">' + (sinks.length ? sinks.map((s) => sinkNode(s, status.checkpoint.epoch)).join("") : '<div class="node sink"><div class="empty">no sink</div></div>') + "</div></div>";
  });
  $("flows").innerHTML = flows.join("") || '<div class="empty">No views.</div>';
}

// ---------- view charts ----------

function niceTicks(max, count) {
  if (max <= 0) return [0, 1];
  const raw = max / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || 10 * power;
  const ticks = [];
  for (let v = 0; v <= max + step * 0.5; v += step) ticks.push(v);
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function truncate(text, max) { return text.length > max ? text.slice(0, max - 1) + "…" : text; }

function barChart(viewName, rows, width, shareTotal, rowCount) {
  if (rowCount === 0) return '<div class="empty">No rows yet — waiting for the first events.</div>';
  if (rows.length === 0) {
    return '<div class="empty">No numeric column to chart: ' + fmtInt(rowCount) + " row" + (rowCount === 1 ? "" : "s") +
      ' at <a href="/api/views/' + encodeURIComponent(viewName) + '">/api/views/' + esc(viewName) + "</a>.</div>";
  }
  const barH = 24, gap = 9, labelW = 128, valueW = shareTotal ? 150 : 100, top = 4;
  const h = top + rows.length * (barH + gap);
  const plotW = Math.max(60, width - labelW - valueW);
  const max = Math.max(...rows.map((r) => r.value), 0) || 1;
  let svg = '<svg width="' + width + '" height="' + h + '" viewBox="0 0 ' + width + " " + h + '" role="img" aria-label="' + esc(viewName) + ' rows">';
  rows.forEach((row, i) => {
    const y = top + i * (barH + gap);
    const w = Math.max(2, (Math.max(0, row.value) / max) * plotW);
    const color = colorFor(viewName, row.label);
    svg += "<g><title>" + esc(row.label) + ": " + esc(fmtNum(row.value)) + "</title>" +
      '<text x="' + (labelW - 10) + '" y="' + (y + barH / 2 + 4.5) + '" text-anchor="end" fill="#c9d5e8" font-size="13">' + esc(truncate(row.label, 17)) + "</text>" +
      '<rect x="' + labelW + '" y="' + y + '" width="' + plotW + '" height="' + barH + '" rx="5" fill="#16213a"/>' +
      '<rect x="' + labelW + '" y="' + y + '" width="' + w.toFixed(1) + '" height="' + barH + '" rx="5" fill="' + color + '" fill-opacity="0.88"/>' +
      '<text x="' + (labelW + w + 8).toFixed(1) + '" y="' + (y + barH / 2 + 4.5) + '" fill="#e6edf7" font-size="13" font-weight="600">' + esc(fmtNum(row.value)) +
      (shareTotal ? '<tspan fill="#8b9bb8" font-weight="400"> · ' + (100 * row.value / shareTotal).toFixed(row.value / shareTotal < 0.1 ? 1 : 0) + "%</tspan>" : "") + "</text></g>";
  });
  return svg + "</svg>";
}

function lineChart(viewName, labels, width, mode) {
  const history = viewHistory[viewName] || [];
  const h = 250, left = 58, right = 14, top = 10, bottom = 26;
  const plotW = Math.max(60, width - left - right), plotH = h - top - bottom;
  const tEnd = history.length ? history[history.length - 1].t : now();
  const tStart = tEnd - WINDOW_S;
  const series = labels.map((label) => {
    const points = [];
    for (let i = 0; i < history.length; i++) {
      const entry = history[i];
      if (entry.t < tStart || !(label in entry.values)) continue;
      let value = entry.values[label];
      if (mode === "rate") {
        let j = i - 1;
        while (j > 0 && entry.t - history[j].t < RATE_WINDOW_S) j--;
        if (j < 0 || !(label in history[j].values) || entry.t <= history[j].t) continue;
        value = Math.max(0, (value - history[j].values[label]) / (entry.t - history[j].t));
      }
      points.push([entry.t, value]);
    }
    return { label, points, color: colorFor(viewName, label) };
  });
  const all = series.flatMap((s) => s.points.map((p) => p[1]));
  const ticks = niceTicks(all.length ? Math.max(...all) : 1, 4);
  const yMax = ticks[ticks.length - 1] || 1;
  const x = (t) => left + ((t - tStart) / WINDOW_S) * plotW;
  const y = (v) => top + plotH - (v / yMax) * plotH;
  let svg = '<svg width="' + width + '" height="' + h + '" viewBox="0 0 ' + width + " " + h + '" role="img" aria-label="' + esc(viewName) + ' over time">';
  for (const tick of ticks) {
    svg += '<line x1="' + left + '" x2="' + (left + plotW) + '" y1="' + y(tick).toFixed(1) + '" y2="' + y(tick).toFixed(1) + '" stroke="#1d2944"/>' +
      '<text x="' + (left - 8) + '" y="' + (y(tick) + 4).toFixed(1) + '" text-anchor="end" fill="#8b9bb8" font-size="11">' + esc(fmtCompact(tick)) + "</text>";
  }
  for (let s = 0; s <= WINDOW_S; s += 30) {
    const xs = x(tStart + s);
    svg += '<text x="' + xs.toFixed(1) + '" y="' + (h - 6) + '" text-anchor="' + (s === 0 ? "start" : s === WINDOW_S ? "end" : "middle") + '" fill="#5b6b89" font-size="11">' +
      (s === WINDOW_S ? "now" : "−" + (WINDOW_S - s) + " s") + "</text>";
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1)).join("");
    const last = s.points[s.points.length - 1];
    svg += "<g><title>" + esc(s.label) + "</title>" +
      '<path d="' + d + '" fill="none" stroke="' + s.color + '" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>' +
      '<circle cx="' + x(last[0]).toFixed(1) + '" cy="' + y(last[1]).toFixed(1) + '" r="3.2" fill="' + s.color + '"/></g>';
  }
  if (all.length === 0) {
    svg += '<text x="' + (left + plotW / 2) + '" y="' + (top + plotH / 2) + '" text-anchor="middle" fill="#5b6b89" font-size="13">' +
      (mode === "rate" ? "rates appear after a few seconds" : "waiting for data") + "</text>";
  }
  return svg + "</svg>";
}

// True when every charted series only ever grew (COUNT, SUM of positives): then the rate is the
// interesting line, and it is the default; the toggle switches to totals.
function looksLikeCounters(viewName, labels) {
  const history = viewHistory[viewName] || [];
  let grew = false;
  for (const label of labels) {
    let previous = null;
    for (const entry of history) {
      if (!(label in entry.values)) continue;
      const value = entry.values[label];
      if (previous !== null && value < previous) return false;
      if (previous !== null && value > previous) grew = true;
      previous = value;
    }
  }
  return grew;
}

function renderViews(views) {
  const container = $("views");
  const known = new Set(views.map((v) => v.name));
  for (const panel of Array.from(container.children)) if (!known.has(panel.dataset.view)) panel.remove();
  for (const view of views) {
    let panel = Array.from(container.children).find((p) => p.dataset.view === view.name);
    if (!panel) {
      panel = document.createElement("div");
      panel.className = "panel";
      panel.dataset.view = view.name;
      panel.innerHTML = '<header><span class="title"></span><span class="subtitle"></span><span class="spacer"></span><span class="pill info source-pill"></span></header>' +
        '<div class="charts"><div><div class="chart-title"><span class="label bars-title"></span></div><div class="bars"></div></div>' +
        '<div><div class="chart-title"><span class="label lines-title"></span><span class="toggle"><button data-mode="total">total</button><button data-mode="rate">per second</button></span></div>' +
        '<div class="legend"></div><div class="lines"></div></div></div>';
      panel.querySelectorAll(".toggle button").forEach((button) => button.addEventListener("click", () => {
        lineMode[view.name] = button.dataset.mode;
        drawView(panel, lastViews.find((v) => v.name === view.name) || view);
      }));
      container.appendChild(panel);
    }
    drawView(panel, view);
  }
}

function drawView(panel, view) {
  const described = describeView(view);
  const top = described.rows.slice(0, TOP_N);
  const mode = lineMode[view.name] || (looksLikeCounters(view.name, top.map((r) => r.label)) ? "rate" : "total");
  panel.querySelector(".title").textContent = view.name;
  panel.querySelector(".subtitle").textContent =
    (described.keyColumns.length ? "by " + described.keyColumns.join(", ") : "") +
    (described.valueColumn ? " · " + described.valueColumn : "") + " · " + fmtInt(view.totalRows) + " row" + (view.totalRows === 1 ? "" : "s");
  const pill = panel.querySelector(".source-pill");
  pill.className = "pill source-pill " + (view.isLive ? "ok" : "info");
  pill.textContent = (view.isLive ? "live" : "checkpoint") + " · epoch " + fmtInt(view.epoch);
  panel.querySelector(".bars-title").textContent = "Top " + Math.min(TOP_N, described.rows.length) + " by " + (described.valueColumn || "value");
  panel.querySelector(".lines-title").textContent = (described.valueColumn || "value") + (mode === "rate" ? " per second" : "") + ", last " + WINDOW_S / 60 + " min";
  panel.querySelectorAll(".toggle button").forEach((b) => b.classList.toggle("on", b.dataset.mode === mode));
  const bars = panel.querySelector(".bars");
  const lines = panel.querySelector(".lines");
  // Shares of the whole view, when every row is here and none is negative.
  const complete = view.rows.length === view.totalRows && described.rows.every((r) => r.value >= 0);
  const sum = described.rows.reduce((a, r) => a + r.value, 0);
  bars.innerHTML = barChart(view.name, top, Math.max(240, bars.clientWidth || 480), complete && sum > 0 ? sum : null, view.totalRows);
  const labels = top.map((r) => r.label);
  panel.querySelector(".legend").innerHTML = labels.map((l) => '<span><i style="background:' + colorFor(view.name, l) + '"></i>' + esc(truncate(l, 28)) + "</span>").join("");
  lines.innerHTML = lineChart(view.name, labels, Math.max(280, lines.clientWidth || 640), mode);
}

// ---------- polling ----------

let lastViews = [];
let lastError = null;

async function poll() {
  try {
    // One after the other, so that the rows are at least as new as the status they are shown with.
    const status = await fetchJSON("/api/status");
    const views = await fetchJSON("/api/views?limit=" + FETCH_LIMIT);
    record(status, views);
    lastViews = views;
    renderHeader(status);
    renderKPIs(status);
    renderFlows(status, views);
    renderViews(views);
    polls += 1;
    lastError = null;
    $("disconnected").hidden = true;
    document.body.dataset.polls = String(polls);
    // For tests and screenshots: the page has drawn every view at least once.
    document.body.dataset.chartDrawn = "true";
  } catch (error) {
    lastError = error;
    const banner = $("disconnected");
    banner.hidden = false;
    banner.textContent = "Lost contact with eddy (" + error.message + ") at " + new Date().toLocaleTimeString("en-GB") + " — retrying every second.";
  }
  setTimeout(poll, POLL_MS);
}

window.addEventListener("resize", () => { if (lastViews.length) renderViews(lastViews); });
poll();
"""##
}
