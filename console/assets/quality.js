// The quality dashboard: metric cards (each with its definition), a daily trend, bars by intent
// and by channel (Chart.js), a per-agent table, date-range and channel filters, drill-down from a
// bar or row to the conversations behind it, and the CSV export. Figures come from
// /api/console/quality/summary; nothing is computed here except formatting.
"use strict";

addStrings({
  zh: {
    q_title: "质检看板", q_from: "开始日期", q_to: "结束日期", q_channel: "渠道", q_all: "全部渠道", q_apply: "查询",
    q_export: "导出 CSV", q_trend: "每日趋势", q_by_intent: "按意图", q_by_channel: "按渠道", q_agents: "按客服",
    q_drill: "明细：{metric} · {group} = {key}（共 {n} 条）", q_drill_hint: "点击图中的柱子或表格行查看对应会话。",
    q_agent: "客服", q_conversation: "会话", q_customer: "客户", q_started: "开始时间", q_intent: "意图",
    q_outcome: "结果", q_counted: "计入分子", q_yes: "是", q_no: "否", q_loading: "加载中…", q_no_data: "暂无数据",
    q_seconds: "{n} 秒", q_minutes: "{n} 分钟", q_hours: "{n} 小时", q_mean: "平均 {n}", q_p90: "P90 {v}",
    q_group_channel: "渠道", q_group_intent: "意图", q_group_day: "日期", q_group_hour: "小时", q_group_agent: "客服",
    q_reviews: "质检复核一致性", q_unassigned: "（无客服）",
    outcome_self_service: "自助完成", outcome_agent_closed: "人工已结束", outcome_with_agent: "人工处理中",
    outcome_abandoned: "无人接入", outcome_bot_unfinished: "机器人未完成", outcome_transferred: "已转人工",
    outcome_good: "好", outcome_bad: "不好", outcome_correct: "对", outcome_incorrect: "不对",
  },
  en: {
    q_title: "Quality dashboard", q_from: "From", q_to: "To", q_channel: "Channel", q_all: "All channels",
    q_apply: "Apply", q_export: "Export CSV", q_trend: "Daily trend", q_by_intent: "By intent",
    q_by_channel: "By channel", q_agents: "By agent", q_drill: "Details: {metric} · {group} = {key} ({n})",
    q_drill_hint: "Click a bar or a table row to see the conversations behind it.", q_agent: "Agent",
    q_conversation: "Conversation", q_customer: "Customer", q_started: "Started", q_intent: "Intent",
    q_outcome: "Outcome", q_counted: "In numerator", q_yes: "yes", q_no: "no", q_loading: "Loading…",
    q_no_data: "No data", q_seconds: "{n} s", q_minutes: "{n} min", q_hours: "{n} h", q_mean: "mean {n}",
    q_p90: "p90 {v}", q_group_channel: "channel", q_group_intent: "intent", q_group_day: "day", q_group_hour: "hour",
    q_group_agent: "agent", q_reviews: "Review agreement", q_unassigned: "(no agent)",
    outcome_self_service: "self-service", outcome_agent_closed: "closed by agent", outcome_with_agent: "with agent",
    outcome_abandoned: "nobody came", outcome_bot_unfinished: "bot, unfinished", outcome_transferred: "transferred",
    outcome_good: "good", outcome_bad: "bad", outcome_correct: "correct", outcome_incorrect: "incorrect",
  },
});

const BAR_METRICS = ["self_service_completion", "transfer_to_human"];
const COLORS = { self_service_completion: "#15803d", transfer_to_human: "#1463ff", abandonment: "#dc2626" };
let summary = null;

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 120) return t("q_seconds", { n: Math.round(seconds) });
  if (seconds < 7200) return t("q_minutes", { n: (seconds / 60).toFixed(1) });
  return t("q_hours", { n: (seconds / 3600).toFixed(1) });
}

// The one formatting of a figure, shared by cards, tables and (in the tests) the expected text.
function fmtValue(metric, figure) {
  if (!figure || figure.value === null || figure.value === undefined) return "—";
  if (metric.kind === "duration") return fmtDuration(figure.value);
  if (metric.kind === "nps") return figure.value.toFixed(1);
  return `${(figure.value * 100).toFixed(1)}%`;
}

function keyLabel(group, key) {
  if (key === "") return group === "agent" ? t("q_unassigned") : t("none");
  if (group === "channel") return t(`channel_${key}`);
  if (group === "intent") return t(`intent_${key}`);
  if (group === "hour") return `${key}:00`;
  return key;
}

function params() {
  const query = new URLSearchParams();
  for (const [name, id] of [["from", "q-from"], ["to", "q-to"], ["channel", "q-channel"]]) {
    const value = document.getElementById(id).value;
    if (value) query.set(name, value);
  }
  query.set("lang", LANG);
  return query;
}

function metricByName(name) {
  return summary.metrics.find((m) => m.name === name);
}

function renderShell() {
  const url = new URL(location.href);
  // Empty unless the address names them: the server fills the default range in the shop's time
  // zone (the browser's clock may be on another day).
  const from = url.searchParams.get("from") || "";
  const to = url.searchParams.get("to") || "";
  const channel = el("select", { id: "q-channel" }, el("option", { value: "" }, t("q_all")),
    CHANNELS.map((c) => el("option", { value: c, selected: url.searchParams.get("channel") === c }, t(`channel_${c}`))));
  const form = el("form", { class: "toolbar", id: "q-filters", onsubmit: (e) => { e.preventDefault(); load(); } },
    el("label", {}, t("q_from"), " ", el("input", { type: "date", id: "q-from", value: from })),
    el("label", {}, t("q_to"), " ", el("input", { type: "date", id: "q-to", value: to })),
    el("label", {}, t("q_channel"), " ", channel),
    el("button", { type: "submit", id: "q-apply" }, t("q_apply")),
    el("a", { class: "button secondary", id: "q-export", href: "#" }, t("q_export")));
  clear(document.getElementById("app"),
    el("h1", { class: "page-title" }, t("q_title")), form,
    el("div", { class: "error", id: "q-error" }),
    el("section", { class: "grid cols quality-cards", id: "q-cards" }, el("p", { class: "muted" }, t("q_loading"))),
    el("section", { class: "card" }, el("h2", {}, t("q_trend")),
      el("div", { class: "chart-box" }, el("canvas", { id: "chart-trend", "aria-label": t("q_trend") }))),
    el("section", { class: "grid quality-bars" },
      el("div", { class: "card" }, el("h2", {}, t("q_by_intent")),
        el("div", { class: "chart-box" }, el("canvas", { id: "chart-intent", "aria-label": t("q_by_intent") }))),
      el("div", { class: "card" }, el("h2", {}, t("q_by_channel")),
        el("div", { class: "chart-box" }, el("canvas", { id: "chart-channel", "aria-label": t("q_by_channel") })))),
    el("section", { class: "card" }, el("h2", {}, t("q_agents")), el("div", { id: "q-agents" })),
    el("section", { class: "card", id: "q-drill" }, el("p", { class: "muted" }, t("q_drill_hint"))));
}

async function load() {
  const query = params();
  history.replaceState(null, "", `${location.pathname}?${query}`);
  document.getElementById("q-export").href = `/api/console/quality/export.csv?${query}`;
  clear(document.getElementById("q-error"));
  try {
    summary = await api("GET", `/api/console/quality/summary?${query}`);
  } catch (error) {
    clear(document.getElementById("q-error"), t("failed", { detail: error.message }));
    return;
  }
  document.getElementById("q-from").value = summary.from;
  document.getElementById("q-to").value = summary.to;
  renderCards();
  renderTrend();
  renderBars("intent", "chart-intent");
  renderBars("channel", "chart-channel");
  renderAgents();
  document.body.dataset.loaded = "true";
}

function renderCards() {
  const cards = summary.metrics.map((metric) => {
    const extra = [];
    if (metric.kind === "duration" && metric.p90 !== null) extra.push(t("q_p90", { v: fmtDuration(metric.p90) }));
    if (metric.kind === "csat" && metric.mean !== null) extra.push(t("q_mean", { n: metric.mean.toFixed(2) }));
    const fraction = metric.kind === "duration" ? `n = ${metric.denominator}` : `${metric.numerator} / ${metric.denominator}`;
    return el("article", { class: "card metric-card", id: `metric-${metric.name}`, dataset: { metric: metric.name } },
      el("div", { class: "metric-label" }, metric.label),
      el("div", { class: "metric metric-value" }, fmtValue(metric, metric)),
      el("div", { class: "metric-fraction muted" }, fraction, extra.length ? ` · ${extra.join(" · ")}` : ""),
      el("p", { class: "definition" }, metric.definition));
  });
  clear(document.getElementById("q-cards"), cards);
}

function percent(figure) {
  return figure.value === null ? null : +(figure.value * 100).toFixed(1);
}

function renderTrend() {
  const days = summary.groups.day;
  drawChart("chart-trend", {
    type: "line",
    data: {
      labels: days.map((d) => d.key),
      datasets: ["self_service_completion", "transfer_to_human", "abandonment"].map((name) => ({
        label: metricByName(name).label, data: days.map((d) => percent(d.metrics[name])),
        borderColor: COLORS[name], backgroundColor: COLORS[name], spanGaps: true, tension: 0.2,
      })),
    },
    options: {
      scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
      onClick: (event, elements) => {
        if (!elements.length) return;
        const { datasetIndex, index } = elements[0];
        const name = ["self_service_completion", "transfer_to_human", "abandonment"][datasetIndex];
        drill(name, "day", days[index].key);
      },
    },
  });
}

function renderBars(group, id) {
  const rows = summary.groups[group].filter((g) => g.metrics.self_service_completion.denominator > 0);
  drawChart(id, {
    type: "bar",
    data: {
      labels: rows.map((g) => keyLabel(group, g.key)),
      datasets: BAR_METRICS.map((name) => ({
        label: metricByName(name).label, data: rows.map((g) => percent(g.metrics[name])),
        backgroundColor: COLORS[name],
      })),
    },
    options: {
      scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
      onClick: (event, elements) => {
        if (!elements.length) return;
        const { datasetIndex, index } = elements[0];
        drill(BAR_METRICS[datasetIndex], group, rows[index].key);
      },
    },
  });
  // The keys in bar order, for people using the keyboard and for the tests.
  document.getElementById(id).dataset.keys = JSON.stringify(rows.map((g) => g.key));
}

function renderAgents() {
  const columns = ["first_response_time", "handoff_resolution_time", "csat", "nps", "agent_correction_correct"];
  const rows = summary.groups.agent.filter((g) => columns.some((c) => g.metrics[c].denominator > 0));
  if (!rows.length) {
    clear(document.getElementById("q-agents"), el("p", { class: "muted" }, t("q_no_data")));
    return;
  }
  const table = el("table", { id: "q-agent-table" },
    el("thead", {}, el("tr", {}, el("th", {}, t("q_agent")), columns.map((c) => el("th", {}, metricByName(c).label)))),
    el("tbody", {}, rows.map((g) => el("tr", {
      class: "clickable", dataset: { agent: g.key }, onclick: () => drill("first_response_time", "agent", g.key),
    }, el("td", {}, keyLabel("agent", g.key)),
    columns.map((c) => el("td", { dataset: { metric: c } }, fmtValue(metricByName(c), g.metrics[c]),
      el("span", { class: "muted" }, ` (${g.metrics[c].denominator})`)))))));
  clear(document.getElementById("q-agents"), table);
}

async function drill(metric, group, key) {
  const query = params();
  query.set("metric", metric);
  query.set("group", group);
  query.set("key", key);
  const box = document.getElementById("q-drill");
  clear(box, el("p", { class: "muted" }, t("q_loading")));
  let data;
  try {
    data = await api("GET", `/api/console/quality/conversations?${query}`);
  } catch (error) {
    clear(box, el("p", { class: "error" }, t("failed", { detail: error.message })));
    return;
  }
  const title = t("q_drill", { metric: metricByName(metric).label, group: t(`q_group_${group}`),
    key: keyLabel(group, key), n: data.total });
  const rows = data.rows.map((row) => el("tr", { dataset: { conversation: row.conversation_id || "" } },
    el("td", {}, row.link ? el("a", { href: row.link }, row.conversation_id) : row.conversation_id || row.unit),
    el("td", {}, row.channel ? channelBadge(row.channel) : ""),
    el("td", {}, row.customer_id || ""),
    el("td", {}, fmtTime(row.started)),
    el("td", {}, keyLabel("intent", row.intent)),
    el("td", {}, t(`outcome_${row.outcome}`)),
    el("td", {}, row.in_numerator ? t("q_yes") : t("q_no"))));
  clear(box, el("h2", { id: "q-drill-title" }, title),
    el("table", { id: "q-drill-table" },
      el("thead", {}, el("tr", {}, ["q_conversation", "channel", "q_customer", "q_started", "q_intent", "q_outcome",
        "q_counted"].map((k) => el("th", {}, k === "channel" ? t("q_channel") : t(k))))),
      el("tbody", {}, rows)));
  box.scrollIntoView({ block: "nearest" });
}

document.addEventListener("DOMContentLoaded", () => {
  renderShell();
  load();
});
