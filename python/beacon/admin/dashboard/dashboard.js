// The live dashboard: polls /stats once a second, keeps 15 minutes of samples in this page
// (samples.js), draws them (panels.js, charts.js). When a poll fails it says since when the
// server is unreachable and keeps polling; a restarted server's counters start again from 0
// and give a gap, not a negative rate.
//
// For tests and the curious: `window.dashboard` holds the state (`history.series(path)`, the
// per-second values of a /stats path, e.g. "flavors.shop" for a flavor's requests/s), and
// <body data-state> is "connecting", "live" or "unreachable".

import { History, notOutcomes } from "./samples.js";
import { panels } from "./panels.js";
import { Chart, format } from "./charts.js";

const POLL_MS = 1000;
const TIMEOUT_MS = 2500;

const $ = (id) => document.getElementById(id);
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });

const state = {
  history: new History(),
  schema: {}, // backend figure -> "counter" | "gauge"
  schemaFresh: false, // fetched from the server that answers now
  status: "connecting",
  unreachableSince: null,
  lastError: "",
  lastDoc: null,
  charts: new Map(),
};
window.dashboard = state;

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store", signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!r.ok) throw new Error(`${path} answered ${r.status}`);
  return r.json();
}

async function fetchSchema() {
  const doc = await getJson("/stats/schema");
  state.schema = Object.fromEntries(doc.backend.map((row) => [row.key, row.kind]));
  notOutcomes.clear();
  for (const key of doc.flavor_counters || []) notOutcomes.add(key);
  state.schemaFresh = true;
}

async function poll() {
  const t = Date.now() / 1000;
  try {
    // After an outage the server may be another version: read its schema again.
    if (!state.schemaFresh) await fetchSchema();
    const doc = await getJson("/stats");
    state.history.add(Date.now() / 1000, doc, state.schema);
    state.lastDoc = doc;
    setStatus("live");
  } catch (e) {
    state.history.miss(t);
    state.schemaFresh = false;
    state.lastError = e.name === "TimeoutError" ? "no answer" : e.message;
    if (state.status !== "unreachable") state.unreachableSince = t;
    setStatus("unreachable");
  }
  if (!document.hidden) render();
}

function setStatus(status) {
  state.status = status;
  document.body.dataset.state = status;
  const banner = $("banner");
  if (status === "unreachable") {
    banner.textContent = `Server unreachable since ${clock(state.unreachableSince)} ` +
      `(${state.lastError}); retrying every second.`;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  const last = state.history.samples.findLast((s) => s.ok);
  $("updated").textContent = !last ? "connecting…"
    : status === "live" ? `updated ${clock(last.t)}` : `last answer ${clock(last.t)}`;
}

function render() {
  const doc = state.lastDoc;
  const keys = state.history.keys();
  const backends = doc ? Object.keys(doc.backends || {}) : [];
  for (const panel of panels(backends, state.schema)) {
    let chart = state.charts.get(panel.id);
    if (!chart) {
      chart = new Chart(panel, $("charts"));
      state.charts.set(panel.id, chart);
    }
    chart.panel = panel;
    chart.update(state.history, keys);
  }
  if (doc) renderFacts(doc);
}

function renderFacts(doc) {
  $("version").textContent = doc.version;
  const facts = [
    ["up", uptime(doc.uptime_s)],
    ["req/s", format(total(state.history.samples.at(-1)))],
    ["connections", format(doc.connections.open)],
    ["RSS", `${format(doc.memory.rss_bytes / (1 << 20))} MiB`],
  ];
  for (const [name, b] of Object.entries(doc.backends || {})) {
    facts.push([name, b.up ? "up" : "down", b.up ? "ok" : "bad"]);
  }
  if (doc.draining) facts.push(["server", "draining", "bad"]);
  if (state.history.restartedAt) facts.push(["restarted", clock(state.history.restartedAt)]);
  $("facts").replaceChildren(...facts.map(([name, value, cls]) => {
    const li = document.createElement("li");
    li.innerHTML = "<span></span> <b></b>";
    li.firstChild.textContent = name;
    li.lastChild.textContent = value;
    if (cls) li.className = cls;
    return li;
  }));
}

function total(sample) {
  if (!sample || !sample.ok) return null;
  let sum = null;
  for (const [path, v] of Object.entries(sample.v)) {
    const m = /^requests\.([^.]+)$/.exec(path);
    if (m && !notOutcomes.has(m[1]) && v !== null) sum = (sum ?? 0) + v;
  }
  return sum;
}

function uptime(s) {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  return `${m}m ${Math.floor(s % 60)}s`;
}

async function loop() {
  const started = performance.now();
  try {
    await poll();
  } catch (e) {
    console.error(e); // a drawing bug must not stop the polling
  }
  setTimeout(loop, Math.max(0, POLL_MS - (performance.now() - started)));
}

state.history.load(sessionStorage, Date.now() / 1000);
addEventListener("pagehide", () => state.history.save(sessionStorage));
document.addEventListener("visibilitychange", () => document.hidden || render());
loop();
