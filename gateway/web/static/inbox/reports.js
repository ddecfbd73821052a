// The Reports page: the team's figures over a range of days, drawn as plain SVG from GET /api/reports (counters
// kept as things happen, never a scan of the conversations). Every text goes in as text, never as HTML.

import { request } from "./api.js";
import { $, append, clear, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const OUTCOMES = [
  ["ai_resolved", "AI resolved", "#7c3aed"], ["handed_over", "Handed over", "#4f46e5"],
  ["abandoned", "Abandoned", "#94a3b8"], ["open", "Open", "#f59e0b"],
];
const TIMES = [["first_response", "First response"], ["to_assignment", "Handover → assigned"],
  ["to_human_reply", "Handover → first human reply"], ["resolution", "Resolution"]];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") el.textContent = String(value);
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function pct(value) {
  return `${(value * 100).toFixed(1)} %`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `≤ ${seconds} s`;
  if (seconds < 3600) return `≤ ${seconds / 60} min`;
  if (seconds < 86400) return `≤ ${seconds / 3600} h`;
  return `≤ ${seconds / 86400} d`;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** The query of the range chosen on the page (the last 30 days to today, UTC, by default). */
function chosen() {
  const to = $("#reports-to").value || isoDay(new Date());
  const from = $("#reports-from").value || isoDay(new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86400000));
  const params = new URLSearchParams({ from, to });
  const channel = $("#reports-channel").value;
  if (channel) params.set("channel", channel);
  return params;
}

let loading = 0;

export async function renderReports() {
  const params = chosen();
  const mine = ++loading;
  $("#reports-status").textContent = "Loading…";
  let report;
  try {
    report = await request(`/api/reports?${params}`);
  } catch (error) {
    if (mine === loading) $("#reports-status").textContent = `Couldn't load the reports: ${error.message}`;
    return;
  }
  if (mine !== loading) return;
  $("#reports-from").value = report.from;
  $("#reports-to").value = report.to;
  const select = $("#reports-channel");
  const current = report.channel || "";
  clear(select);
  append(select, h("option", { value: "", text: "All channels" }),
    ...report.channels_seen.map((name) => h("option", { value: name, text: name })));
  select.value = current;
  params.set("format", "csv");
  $("#reports-csv").setAttribute("href", `/api/reports?${params}`);
  $("#reports-status").textContent = `${report.from} to ${report.to} (UTC days)${report.channel ? `, ${report.channel}` : ""}`;
  draw(report);
}

function draw(report) {
  const tiles = $("#reports-tiles");
  clear(tiles);
  append(tiles, tile("Conversations", String(report.conversations), "started in the range"),
    ...OUTCOMES.map(([key, label]) => tile(label, pct(report.shares[key]), `${report.counts[key]} conversations`,
      key)),
    tile("Durably resolved", pct(report.durable_resolution_rate), `${report.durable} not back within the durable days`));
  fillChart("#chart-outcomes", stacked(report.series));
  fillChart("#chart-rates", lines(report.series));
  fillChart("#chart-channels", bars(Object.entries(report.channels), "#4f46e5"));
  fillChart("#chart-reasons", bars(Object.entries(report.handover_reasons), "#4f46e5"));
  const times = $("#reports-times");
  clear(times);
  for (const [key, label] of TIMES) {
    const t = report.times[key];
    append(times, h("tr", {}, h("th", { scope: "row", text: label }), h("td", { text: duration(t.p50) }),
      h("td", { text: duration(t.p90) }), h("td", { text: String(t.count) })));
  }
  const csat = $("#reports-csat");
  clear(csat);
  for (const [who, label] of [["ai", "AI"], ["human", "People"]]) {
    const c = report.csat[who];
    append(csat, h("tr", {}, h("th", { scope: "row", text: label }),
      h("td", { text: c.average === null ? "—" : `${c.average.toFixed(2)} / 5` }),
      h("td", { text: c.responses ? pct(c.satisfied) : "—" }), h("td", { text: String(c.responses) }),
      h("td", { text: c.ratings.join(" · ") })));
  }
  $("#reports-forms").textContent = `${report.forms.sent} sent, ${report.forms.captured} captured`
    + (report.forms.sent ? ` (${pct(report.forms.captured / report.forms.sent)})` : "");
}

function tile(label, value, note, outcome = "") {
  return h("div", { class: "report-tile", dataset: { outcome } }, h("p", { class: "report-tile-label" },
    outcome ? h("span", { class: `report-swatch report-swatch-${outcome}` }) : null, label),
  h("p", { class: "report-tile-value", text: value }), h("p", { class: "muted small", text: note }));
}

function fillChart(selector, svg) {
  const holder = $(selector);
  clear(holder);
  append(holder, svg);
}

const W = 640;
const H = 200;
const PAD = { left: 36, right: 8, top: 8, bottom: 22 };

/** Conversations per day, stacked by outcome. */
function stacked(series) {
  const most = Math.max(1, ...series.map((d) => d.conversations));
  const step = (W - PAD.left - PAD.right) / Math.max(series.length, 1);
  const scale = (H - PAD.top - PAD.bottom) / most;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart",
    "aria-label": "Conversations per day by outcome" });
  append(svg, axis(most, (v) => H - PAD.bottom - v * scale, String));
  series.forEach((day, i) => {
    let y = H - PAD.bottom;
    for (const [key, label, color] of OUTCOMES) {
      const height = day.counts[key] * scale;
      if (!height) continue;
      y -= height;
      append(svg, s("rect", { x: PAD.left + i * step + 1, y, width: Math.max(step - 2, 1), height, fill: color,
        "data-day": day.day, "data-outcome": key },
      s("title", { text: `${day.day}: ${day.counts[key]} ${label.toLowerCase()}` })));
    }
  });
  append(svg, dayLabels(series, step));
  return svg;
}

/** The AI's resolution rate and durable rate per day (days without conversations are gaps). */
function lines(series) {
  const step = (W - PAD.left - PAD.right) / Math.max(series.length, 1);
  const y = (v) => H - PAD.bottom - v * (H - PAD.top - PAD.bottom);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart",
    "aria-label": "AI resolution rate and durable resolution rate per day" });
  append(svg, axis(1, y, (v) => `${Math.round(v * 100)}%`));
  for (const [key, color] of [["ai_resolution_rate", "#7c3aed"], ["durable_resolution_rate", "#10b981"]]) {
    let d = "";
    series.forEach((day, i) => {
      if (!day.conversations) return;
      const x = PAD.left + i * step + step / 2;
      d += `${d && series[i - 1] && series[i - 1].conversations ? "L" : "M"}${x.toFixed(1)},${y(day[key]).toFixed(1)} `;
      append(svg, s("circle", { cx: x, cy: y(day[key]), r: 2.5, fill: color },
        s("title", { text: `${day.day}: ${pct(day[key])}` })));
    });
    if (d) svg.insertBefore(s("path", { d: d.trim(), fill: "none", stroke: color, "stroke-width": 2,
      "data-series": key }), svg.firstChild.nextSibling);
  }
  append(svg, dayLabels(series, step));
  return svg;
}

/** Horizontal bars of [label, count], largest first. */
function bars(entries, color) {
  const rows = entries.sort((a, b) => b[1] - a[1]);
  const height = Math.max(rows.length, 1) * 26 + 4;
  const svg = s("svg", { viewBox: `0 0 ${W} ${height}`, role: "img", class: "chart chart-bars" });
  if (!rows.length) {
    append(svg, s("text", { x: 8, y: 18, class: "chart-empty", text: "Nothing in this range." }));
    return svg;
  }
  const most = Math.max(...rows.map((r) => r[1]));
  rows.forEach(([label, n], i) => {
    const width = ((W - 220) * n) / most;
    append(svg, s("text", { x: 150, y: i * 26 + 18, "text-anchor": "end", class: "chart-label", text: label }),
      s("rect", { x: 160, y: i * 26 + 5, width: Math.max(width, 1), height: 18, rx: 3, fill: color },
        s("title", { text: `${label}: ${n}` })),
      s("text", { x: 166 + width, y: i * 26 + 18, class: "chart-value", text: String(n) }));
  });
  return svg;
}

function axis(most, y, format) {
  const g = s("g", { class: "chart-axis" });
  for (const v of [0, most / 2, most]) {
    append(g, s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
      s("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end", text: format(Math.round(v * 100) / 100) }));
  }
  return g;
}

function dayLabels(series, step) {
  const g = s("g", { class: "chart-days" });
  const every = Math.max(1, Math.ceil(series.length / 8));
  series.forEach((day, i) => {
    if (i % every) return;
    append(g, s("text", { x: PAD.left + i * step + step / 2, y: H - 6, "text-anchor": "middle",
      text: day.day.slice(5) }));
  });
  return g;
}

export function bindReports(onError) {
  for (const id of ["#reports-from", "#reports-to", "#reports-channel"]) {
    $(id).addEventListener("change", () => renderReports().catch(onError));
  }
}
