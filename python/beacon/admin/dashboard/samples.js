// Turns successive /stats documents into per-second samples, and keeps the last 15 minutes.
//
// A sample is {t, ok, v}: t the browser's clock (seconds), ok whether /stats answered, v a
// flat object of figures keyed by their /stats path ("requests.accepted",
// "backends.kafka.spool_pending", ...). Counters become rates per second, from their deltas
// over the server's own clock (uptime_s), so a late poll does not look like a burst; gauges
// stay as they are. Nothing here names a flavor, an outcome or a backend: whatever /stats
// holds is walked, so new keys show up on their own.

export const WINDOW_S = 15 * 60;

// Paths outside requests/flavors/backends that are counters (all other numbers are gauges).
const COUNTERS = new Set([
  "connections.total", "connections.refused", "gc.pauses", "gc.pause_total_us",
  "config.reloaded", "config.reload_failed",
]);

// Keys of a flavor's counts that are not one request's outcome (/stats/schema
// `flavor_counters`: batch events, multipart file parts skipped, ...): never added up as
// requests. Filled by dashboard.js from the schema.
export const notOutcomes = new Set();

// Backend figures: the stats schema (/stats/schema) says which are counters. Without it,
// a backend number is shown as it is (a gauge): never a wrong rate.
export function kindOf(path, schema) {
  const parts = path.split(".");
  if (parts[0] === "requests" || parts[0] === "flavors") return "counter";
  if (parts[0] === "gc" && parts[1] === "collections") return "counter";
  if (COUNTERS.has(path)) return "counter";
  if (parts[0] === "backends") {
    const kind = schema[parts[parts.length - 1]];
    if (kind) return kind;
  }
  return "gauge";
}

// Every number (booleans as 0/1) in the document, by dotted path.
export function flatten(doc, prefix = "", out = {}) {
  for (const [key, value] of Object.entries(doc)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === "number") out[path] = value;
    else if (typeof value === "boolean") out[path] = value ? 1 : 0;
    else if (value && typeof value === "object") flatten(value, path, out);
  }
  return out;
}

export class History {
  constructor() {
    this.samples = [];
    this.prev = null; // {uptime, start, values} of the last answer
    this.restartedAt = null;
  }

  // Records one answer; returns the sample.
  add(t, doc, schema) {
    const values = flatten(doc);
    const uptime = doc.uptime_s;
    // The server's start time as this browser sees it: it moves only when the process does.
    const start = t - uptime;
    const prev = this.prev;
    const restarted = prev !== null && Math.abs(start - prev.start) > 3;
    if (restarted) this.restartedAt = start;
    const dt = prev && !restarted ? uptime - prev.uptime : 0;
    const v = {};
    for (const [path, value] of Object.entries(values)) {
      if (kindOf(path, schema) !== "counter") {
        v[path] = value;
        continue;
      }
      const before = dt > 0 ? prev.values[path] : undefined;
      // A counter that went back (a restart we did not see) gives no rate, never a negative one.
      v[path] = before === undefined || value < before ? null : (value - before) / dt;
    }
    addFlavorTotals(doc, v);
    this.prev = { uptime, start, values };
    return this.push({ t, ok: true, v });
  }

  // Records a poll that got no answer: a gap in every chart.
  miss(t) {
    return this.push({ t, ok: false, v: {} });
  }

  push(sample) {
    this.samples.push(sample);
    const oldest = sample.t - WINDOW_S;
    let drop = 0;
    while (drop < this.samples.length && this.samples[drop].t < oldest) drop++;
    if (drop) this.samples.splice(0, drop);
    return sample;
  }

  // Every path seen in the window.
  keys() {
    const seen = new Set();
    for (const s of this.samples) for (const k in s.v) seen.add(k);
    return seen;
  }

  series(path) {
    return this.samples.map((s) => s.v[path] ?? null);
  }

  // Survives a reload of the page (sessionStorage: this tab only).
  save(storage) {
    try {
      storage.setItem("beacon.history", JSON.stringify(this.samples));
    } catch (e) {
      // Full or disabled storage: the next page starts empty, nothing else.
    }
  }

  load(storage, now) {
    try {
      const saved = JSON.parse(storage.getItem("beacon.history") || "[]");
      this.samples = saved.filter((s) => s.t >= now - WINDOW_S && s.t <= now);
    } catch (e) {
      this.samples = [];
    }
  }
}

// "flavors.<name>": the requests per second of a flavor, all outcomes together.
function addFlavorTotals(doc, v) {
  for (const [name, row] of Object.entries(doc.flavors || {})) {
    let total = 0;
    let any = false;
    for (const [outcome, n] of Object.entries(row)) {
      if (typeof n !== "number" || notOutcomes.has(outcome)) continue;
      const rate = v[`flavors.${name}.${outcome}`];
      if (rate === null || rate === undefined) continue;
      total += rate;
      any = true;
    }
    v[`flavors.${name}`] = any ? total : null;
  }
}
