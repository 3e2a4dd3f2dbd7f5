// One card per panel, drawn by uPlot (vendor/uPlot.iife.min.js, the global `uPlot`).
// A chart is rebuilt only when its set of series changes (a flavor or an outcome appears);
// otherwise each second only its data is replaced.

const PALETTE = [
  "#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed",
  "#0891b2", "#db2777", "#65a30d", "#475569", "#ea580c",
];
const HEIGHT = 190;

export function format(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
  if (a >= 100) return `${Math.round(v)}`;
  if (a >= 10) return `${+v.toFixed(1)}`;
  return `${+v.toFixed(2)}`;
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const pad = (n) => String(n).padStart(2, "0");

// 24-hour clock ticks; seconds only when the ticks are less than a minute apart.
function timeTicks(ticks, incr) {
  return ticks.map((t) => {
    const d = new Date(t * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    return incr < 60 ? `${hm}:${pad(d.getSeconds())}` : hm;
  });
}

export class Chart {
  constructor(panel, parent) {
    this.panel = panel;
    this.card = document.createElement("section");
    this.card.className = "card";
    this.card.dataset.panel = panel.id;
    const title = document.createElement("h2");
    title.textContent = panel.unit ? `${panel.title} (${panel.unit})` : panel.title;
    this.plotEl = document.createElement("div");
    this.plotEl.className = "plot";
    this.card.append(title, this.plotEl);
    parent.append(this.card);
    this.colors = new Map();
    this.labels = [];
    this.plot = null;
    new ResizeObserver(() => this.resize()).observe(this.plotEl);
  }

  // The panel's series over the window: [{path, label, values}], by label.
  select(history, keys) {
    const out = [];
    for (const path of keys) {
      const label = this.panel.pick(path);
      if (label === null) continue;
      const values = history.series(path);
      if (!this.panel.keepZero(label) && !values.some((v) => v)) continue;
      const scale = this.panel.scale || 1;
      out.push({ path, label, values: scale === 1 ? values : values.map((v) => v === null ? null : v * scale) });
    }
    return out.sort((a, b) => a.label.localeCompare(b.label));
  }

  update(history, keys) {
    const series = this.select(history, keys);
    const labels = series.map((s) => s.label);
    const data = [history.samples.map((s) => s.t), ...series.map((s) => s.values)];
    if (this.plot === null || labels.join("\n") !== this.labels.join("\n")) {
      this.build(labels, data);
    } else {
      this.plot.setData(data);
    }
    // The latest values, for the tests and for anyone reading the DOM.
    this.card.dataset.latest = JSON.stringify(
      Object.fromEntries(series.map((s) => [s.label, lastValue(s.values)])));
  }

  build(labels, data) {
    if (this.plot) this.plot.destroy();
    this.labels = labels;
    for (const label of labels) {
      if (!this.colors.has(label)) this.colors.set(label, PALETTE[this.colors.size % PALETTE.length]);
    }
    const fg = cssVar("--fg") || "#111";
    const grid = cssVar("--grid") || "#e5e7eb";
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const panel = this.panel;
    const opts = {
      width: Math.max(200, this.plotEl.clientWidth),
      height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true },
        y: { range: (u, min, max) => [0, panel.max1 ? 1.05 : Math.max(1, max) * 1.1] },
      },
      axes: [
        { ...axis, space: 70, values: (u, ticks, ai, space, incr) => timeTicks(ticks, incr) },
        { ...axis, size: 50, values: (u, ticks) => ticks.map(format),
          ...(panel.max1 ? { splits: () => [0, 1], values: (u, t) => t.map((v) => v ? "up" : "down") } : {}) },
      ],
      series: [
        { value: (u, t) => t === null ? "now" : new Date(t * 1000).toLocaleTimeString() },
        ...labels.map((label) => ({
          label,
          stroke: this.colors.get(label),
          width: 1.5,
          points: { show: false },
          ...(panel.step ? { paths: uPlot.paths.stepped({ align: 1 }) } : {}),
          // No cursor over the chart: the legend shows the latest value.
          value: (u, v, si) => {
            const shown = v ?? (u.cursor.idx == null ? lastValue(u.data[si]) : null);
            return panel.max1 && shown !== null ? (shown ? "up" : "down") : format(shown);
          },
        })),
      ],
    };
    this.plot = new uPlot(opts, data, this.plotEl);
  }

  resize() {
    if (this.plot && this.plotEl.clientWidth > 0) {
      this.plot.setSize({ width: this.plotEl.clientWidth, height: HEIGHT });
    }
  }
}
