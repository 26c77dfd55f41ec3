// The refund report for merchants (退款助手): refund and return-and-refund requests per day or
// week (counts as bars, amounts as a line), reasons as bars, the periods and the latest requests
// as tables, and the CSV export. Figures come from /api/console/refunds/report.
"use strict";

addStrings({
  zh: {
    r_title: "退款报表", r_from: "开始日期", r_to: "结束日期", r_granularity: "粒度", r_day: "按天", r_week: "按周",
    r_apply: "查询", r_export: "导出 CSV", r_over_time: "退款申请趋势", r_reasons: "退款原因", r_count: "申请数",
    r_amount: "申请金额（元）", r_completed: "已退款", r_completed_amount: "已退金额（元）", r_rejected: "驳回/撤销",
    r_automatic: "规则自动处理", r_period: "时段", r_reason: "原因", r_no_reason: "未填原因", r_latest: "最近的申请",
    r_id: "编号", r_type: "类型", r_status: "状态", r_created: "申请时间", r_order: "订单", r_total: "合计",
    type_refund: "退款", type_return_refund: "退货退款", r_search: "退款记录查询", r_order_id: "订单号",
    r_request_id: "售后单号", r_any_status: "全部状态", r_find: "查找", r_found: "共 {n} 条，金额 {amount}",
    r_refunded_at: "退款时间", r_records_csv: "导出记录 CSV",
  },
  en: {
    r_title: "Refund report", r_from: "From", r_to: "To", r_granularity: "Periods", r_day: "Daily", r_week: "Weekly",
    r_apply: "Apply", r_export: "Export CSV", r_over_time: "Refund requests over time", r_reasons: "Reasons",
    r_count: "Requests", r_amount: "Amount (CNY)", r_completed: "Refunded", r_completed_amount: "Refunded (CNY)",
    r_rejected: "Rejected/cancelled", r_automatic: "Decided by rules", r_period: "Period", r_reason: "Reason",
    r_no_reason: "no reason given", r_latest: "Latest requests", r_id: "ID", r_type: "Type", r_status: "Status",
    r_created: "Created", r_order: "Order", r_total: "Total", type_refund: "refund", type_return_refund: "return & refund",
    r_search: "Find refund records", r_order_id: "Order", r_request_id: "Request ID", r_any_status: "Any status",
    r_find: "Find", r_found: "{n} records, {amount} in all", r_refunded_at: "Refunded", r_records_csv: "Export records CSV",
  },
});

const COLUMNS = ["count", "amount", "completed", "completed_amount", "rejected", "automatic"];
function refundQuery() {
  const query = new URLSearchParams();
  for (const [name, id] of [["from", "r-from"], ["to", "r-to"], ["granularity", "r-granularity"]]) {
    const value = document.getElementById(id).value;
    if (value) query.set(name, value);
  }
  return query;
}

function money(value) {
  return Number(value).toFixed(2);
}

function renderRefundShell() {
  // The dates start empty: the server's default range is in the shop's time zone, not the browser's.
  const form = el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); loadRefunds(); } },
    el("label", {}, t("r_from"), " ", el("input", { type: "date", id: "r-from" })),
    el("label", {}, t("r_to"), " ", el("input", { type: "date", id: "r-to" })),
    el("label", {}, t("r_granularity"), " ", el("select", { id: "r-granularity" },
      el("option", { value: "day" }, t("r_day")), el("option", { value: "week" }, t("r_week")))),
    el("button", { type: "submit", id: "r-apply" }, t("r_apply")),
    el("a", { class: "button secondary", id: "r-export", href: "#" }, t("r_export")));
  clear(document.getElementById("app"), el("h1", { class: "page-title" }, t("r_title")), form,
    el("div", { class: "error", id: "r-error" }),
    el("section", { class: "grid cols", id: "r-totals" }),
    el("section", { class: "grid quality-bars" },
      el("div", { class: "card" }, el("h2", {}, t("r_over_time")),
        el("div", { class: "chart-box" }, el("canvas", { id: "chart-refunds" }))),
      el("div", { class: "card" }, el("h2", {}, t("r_reasons")),
        el("div", { class: "chart-box" }, el("canvas", { id: "chart-reasons" })))),
    el("section", { class: "card" }, el("div", { id: "r-periods" })),
    el("section", { class: "card" }, el("h2", {}, t("r_latest")), el("div", { id: "r-latest" })),
    el("section", { class: "card", id: "r-search" }, el("h2", {}, t("r_search")),
      el("form", { class: "toolbar", id: "r-search-form", onsubmit: (e) => { e.preventDefault(); findRecords(); } },
        el("label", {}, t("r_order_id"), " ", el("input", { type: "text", id: "r-order", inputmode: "numeric" })),
        el("label", {}, t("r_request_id"), " ", el("input", { type: "text", id: "r-request" })),
        el("label", {}, t("r_status"), " ", el("select", { id: "r-status" }, el("option", { value: "" }, t("r_any_status")),
          REQUEST_STATUSES.map((s) => el("option", { value: s }, s)))),
        el("button", { type: "submit", id: "r-find" }, t("r_find")),
        el("a", { class: "button secondary", id: "r-records-csv", href: "#" }, t("r_records_csv"))),
      el("div", { id: "r-records" })));
}

const REQUEST_STATUSES = ["applied", "reviewing", "approved", "rejected", "awaiting_return", "goods_received",
  "payment_processing", "completed", "cancelled"];

function recordQuery() {
  const query = new URLSearchParams();
  for (const [name, id] of [["from", "r-from"], ["to", "r-to"], ["order_id", "r-order"], ["request_id", "r-request"],
    ["status", "r-status"]]) {
    const value = document.getElementById(id).value.trim();
    if (value) query.set(name, value);
  }
  return query;
}

async function findRecords() {
  const query = recordQuery();
  document.getElementById("r-records-csv").href = `/api/console/refunds/records.csv?${query}`;
  const box = document.getElementById("r-records");
  let found;
  try {
    found = await api("GET", `/api/console/refunds/records?${query}`);
  } catch (error) {
    clear(box, el("p", { class: "error" }, t("failed", { detail: error.message })));
    return;
  }
  clear(box, el("p", { id: "r-found" }, t("r_found", { n: found.total, amount: money(found.amount) })),
    el("table", { id: "r-record-table" },
      el("thead", {}, el("tr", {}, ["r_id", "r_order", "r_type", "r_status", "r_amount", "r_reason", "r_created",
        "r_refunded_at"].map((k) => el("th", {}, t(k))))),
      el("tbody", {}, found.rows.map((r) => el("tr", { dataset: { request: r.id } },
        el("td", {}, r.id), el("td", {}, r.order_id), el("td", {}, t(`type_${r.type}`)), el("td", {}, r.status),
        el("td", {}, money(r.amount)), el("td", {}, r.reason || t("r_no_reason")), el("td", {}, fmtTime(r.created_at)),
        el("td", {}, r.refunded_at ? fmtTime(r.refunded_at) : ""))))));
}

async function loadRefunds() {
  const query = refundQuery();
  document.getElementById("r-export").href = `/api/console/refunds/export.csv?${query}`;
  let report;
  try {
    report = await api("GET", `/api/console/refunds/report?${query}`);
  } catch (error) {
    clear(document.getElementById("r-error"), t("failed", { detail: error.message }));
    return;
  }
  clear(document.getElementById("r-error"));
  document.getElementById("r-from").value = report.from;
  document.getElementById("r-to").value = report.to;
  clear(document.getElementById("r-totals"), COLUMNS.map((c) => el("article", { class: "card", id: `refund-${c}` },
    el("div", { class: "metric-label" }, t(`r_${c}`)),
    el("div", { class: "metric metric-value" }, c.endsWith("amount") ? money(report.total[c]) : report.total[c]))));
  drawChart("chart-refunds", {
    data: {
      labels: report.periods.map((p) => p.period),
      datasets: [
        { type: "bar", label: t("r_count"), data: report.periods.map((p) => p.count), backgroundColor: "#1463ff",
          yAxisID: "count" },
        { type: "line", label: t("r_amount"), data: report.periods.map((p) => p.amount), borderColor: "#d97706",
          backgroundColor: "#d97706", yAxisID: "amount" },
      ],
    },
    options: { scales: { count: { position: "left", beginAtZero: true, ticks: { precision: 0 } },
      amount: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } } } },
  });
  drawChart("chart-reasons", {
    type: "bar",
    data: {
      labels: report.reasons.map((r) => r.reason || t("r_no_reason")),
      datasets: [{ label: t("r_count"), data: report.reasons.map((r) => r.count), backgroundColor: "#15803d" }],
    },
    options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const head = el("tr", {}, el("th", {}, t("r_period")), COLUMNS.map((c) => el("th", {}, t(`r_${c}`))));
  const row = (label, values) => el("tr", {}, el("td", {}, label),
    COLUMNS.map((c) => el("td", {}, c.endsWith("amount") ? money(values[c]) : values[c])));
  clear(document.getElementById("r-periods"), el("table", { id: "r-period-table" }, el("thead", {}, head),
    el("tbody", {}, report.periods.map((p) => row(p.period, p)), row(t("r_total"), report.total))));
  clear(document.getElementById("r-latest"), el("table", { id: "r-latest-table" },
    el("thead", {}, el("tr", {}, ["r_id", "r_type", "r_status", "r_amount", "r_reason", "r_created", "r_order"]
      .map((k) => el("th", {}, t(k))))),
    el("tbody", {}, report.requests.slice().reverse().slice(0, 50).map((r) => el("tr", {},
      el("td", {}, r.id), el("td", {}, t(`type_${r.type}`)), el("td", {}, r.status), el("td", {}, money(r.amount)),
      el("td", {}, r.reason || t("r_no_reason")), el("td", {}, fmtTime(r.created_at)), el("td", {}, r.order_id))))));
  document.body.dataset.loaded = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  renderRefundShell();
  loadRefunds().then(findRecords);
});
