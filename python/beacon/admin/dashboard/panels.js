// What the page draws: each panel picks its series from the paths the samples hold, by
// pattern, so a new flavor, outcome, backend or backend figure appears without a change here.
// A panel is {id, title, unit, pick(path) -> label or null, ...options}:
//   keepZero(label): show the series even while it is 0 over the whole window
//   (others appear once they move, so 20 idle outcomes do not bury the one that matters);
//   scale: multiply values for display; step: draw as steps (up/down); max1: the y axis is 0..1.

import { notOutcomes } from "./samples.js";

const match = (re, label) => (path) => {
  const m = re.exec(path);
  return m ? label(m) : null;
};

// Backend figures that are not events per second: bytes (another unit), recovered (counted
// once at start), the gauges (their own panels).
const NOT_EVENTS = new Set(["bytes", "recovered"]);
const DEPTHS = new Set(["buffered", "in_flight", "spool_pending"]);

export function panels(backends, schema) {
  const list = [
    {
      id: "outcomes",
      title: "Requests/s by outcome",
      unit: "req/s",
      pick: match(/^requests\.([^.]+)$/, (m) => (notOutcomes.has(m[1]) ? null : m[1])),
      keepZero: (label) => label === "accepted",
    },
    {
      id: "flavors",
      title: "Requests/s per flavor",
      unit: "req/s",
      pick: match(/^flavors\.([^.]+)$/, (m) => m[1]),
      keepZero: () => true,
    },
  ];
  for (const backend of backends) {
    list.push({
      id: `events-${backend}`,
      title: `Events/s: ${backend} backend`,
      unit: "events/s",
      pick: match(new RegExp(`^backends\\.${escape(backend)}\\.([^.]+)$`), (m) =>
        schema[m[1]] === "counter" && !NOT_EVENTS.has(m[1]) ? m[1] : null),
      keepZero: (label) => ["accepted", "written", "delivered"].includes(label),
    });
  }
  list.push(
    {
      id: "depth",
      title: "Queue and spool depth",
      unit: "events",
      pick: match(/^backends\.([^.]+)\.([^.]+)$/, (m) =>
        DEPTHS.has(m[2]) ? `${m[1]} ${m[2].replace("_", " ")}` : null),
      keepZero: (label) => label.endsWith("spool pending"),
    },
    {
      id: "spool-age",
      title: "Spool age (oldest event)",
      unit: "s",
      pick: match(/^backends\.([^.]+)\.spool_age_s$/, (m) => m[1]),
      keepZero: () => true,
    },
    {
      id: "up",
      title: "Backends up (1) or down (0)",
      unit: "",
      pick: match(/^backends\.([^.]+)\.up$/, (m) => m[1]),
      keepZero: () => true,
      step: true,
      max1: true,
    },
    {
      id: "gc",
      title: "GC pauses (since start)",
      unit: "µs",
      pick: match(/^gc\.pause_(p99|max)_us$/, (m) => m[1]),
      keepZero: () => true,
    },
    {
      id: "connections",
      title: "Open connections",
      unit: "",
      pick: match(/^connections\.open$/, () => "open"),
      keepZero: () => true,
    },
    {
      id: "rss",
      title: "Resident memory",
      unit: "MiB",
      pick: match(/^memory\.rss_bytes$/, () => "RSS"),
      keepZero: () => true,
      scale: 1 / (1 << 20),
    },
  );
  return list;
}

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
