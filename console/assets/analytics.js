// Problem analytics (问题分析): tickets by category (bars, and a daily line per category) and by
// SKU (the repeat-defect flag first), questions the knowledge base could not answer grouped into
// clusters, IVR handling time per scenario and nuisance calls per day. Figures come from
// /api/console/quality/{problems,knowledge-misses,ivr}; days are the shop's time zone.
"use strict";

addStrings({
  zh: {
    a_title: "问题分析", a_from: "开始日期", a_to: "结束日期", a_apply: "查询", a_export: "导出 CSV",
    a_categories: "按问题类别（工单数）", a_trend: "每日工单（按类别）", a_skus: "按商品 SKU", a_sku: "SKU",
    a_tickets: "工单", a_customers: "客户", a_open: "未结", a_defect: "疑似批次质量问题", a_kinds: "类别",
    a_misses: "知识库未答问题（按问题聚类）", a_question: "代表问题", a_count: "次数", a_variants: "不同问法",
    a_examples: "问法举例", a_last: "最近", a_ivr: "电话自助：各场景处理时长（秒）", a_scenario: "场景",
    a_calls: "通话", a_median: "中位数", a_p90: "P90", a_mean: "平均", a_nuisance: "骚扰电话拦截",
    a_rejected: "拦截次数", a_callers: "号码数", a_no_data: "暂无数据", a_none: "（未识别）", a_timezone: "时区：{tz}",
  },
  en: {
    a_title: "Problems", a_from: "From", a_to: "To", a_apply: "Apply", a_export: "Export CSV",
    a_categories: "By problem category (tickets)", a_trend: "Tickets per day by category", a_skus: "By SKU",
    a_sku: "SKU", a_tickets: "Tickets", a_customers: "Customers", a_open: "Open", a_defect: "possible product defect",
    a_kinds: "Categories", a_misses: "Questions the knowledge base missed (clustered)", a_question: "Question",
    a_count: "Times", a_variants: "Wordings", a_examples: "Examples", a_last: "Last", a_ivr: "IVR handling time per scenario (s)",
    a_scenario: "Scenario", a_calls: "Calls", a_median: "Median", a_p90: "p90", a_mean: "Mean", a_nuisance: "Nuisance calls",
    a_rejected: "Rejected", a_callers: "Numbers", a_no_data: "No data", a_none: "(not recognised)", a_timezone: "Time zone: {tz}",
  },
});

const PALETTE = ["#1463ff", "#d97706", "#15803d", "#b91c1c", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f", "#92400e", "#475569"];

function analyticsQuery() {
  const query = new URLSearchParams();
  for (const [name, id] of [["from", "a-from"], ["to", "a-to"]]) {
    const value = document.getElementById(id).value;
    if (value) query.set(name, value);
  }
  query.set("lang", LANG);
  return query;
}

function table(id, headers, rows) {
  if (!rows.length) return el("p", { class: "muted" }, t("a_no_data"));
  return el("table", { id }, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function renderAnalyticsShell() {
  const form = el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); loadAnalytics(); } },
    el("label", {}, t("a_from"), " ", el("input", { type: "date", id: "a-from" })),
    el("label", {}, t("a_to"), " ", el("input", { type: "date", id: "a-to" })),
    el("button", { type: "submit", id: "a-apply" }, t("a_apply")),
    el("a", { class: "button secondary", id: "a-export", href: "#" }, t("a_export")),
    el("span", { class: "muted", id: "a-zone" }));
  const chart = (id, title) => el("div", { class: "card" }, el("h2", {}, title),
    el("div", { class: "chart-box" }, el("canvas", { id, "aria-label": title })));
  clear(document.getElementById("app"), el("h1", { class: "page-title" }, t("a_title")), form,
    el("div", { class: "error", id: "a-error" }),
    el("section", { class: "grid quality-bars" }, chart("chart-categories", t("a_categories")),
      chart("chart-category-trend", t("a_trend"))),
    el("section", { class: "card" }, el("h2", {}, t("a_skus")), el("div", { id: "a-skus" })),
    el("section", { class: "card" }, el("h2", {}, t("a_misses")), el("div", { id: "a-misses" })),
    el("section", { class: "grid quality-bars" }, chart("chart-ivr", t("a_ivr")), chart("chart-nuisance", t("a_nuisance"))),
    el("section", { class: "card" }, el("div", { id: "a-ivr" })));
}

async function loadAnalytics() {
  const query = analyticsQuery();
  document.getElementById("a-export").href = `/api/console/quality/problems.csv?${query}`;
  let problems, misses, ivr;
  try {
    [problems, misses, ivr] = await Promise.all([
      api("GET", `/api/console/quality/problems?${query}`),
      api("GET", `/api/console/quality/knowledge-misses?${query}`),
      api("GET", `/api/console/quality/ivr?${query}`),
    ]);
  } catch (error) {
    clear(document.getElementById("a-error"), t("failed", { detail: error.message }));
    return;
  }
  clear(document.getElementById("a-error"));
  document.getElementById("a-from").value = problems.from;
  document.getElementById("a-to").value = problems.to;
  clear(document.getElementById("a-zone"), t("a_timezone", { tz: problems.timezone }));
  renderProblems(problems);
  renderMisses(misses);
  renderIvr(ivr);
  document.body.dataset.loaded = "true";
}

function renderProblems(report) {
  drawChart("chart-categories", {
    type: "bar",
    data: { labels: report.categories.map((c) => c.label),
      datasets: [{ label: t("a_tickets"), data: report.categories.map((c) => c.tickets), backgroundColor: "#1463ff" },
        { label: t("a_open"), data: report.categories.map((c) => c.open), backgroundColor: "#d97706" }] },
    options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  document.getElementById("chart-categories").dataset.keys = JSON.stringify(report.categories.map((c) => c.category));
  drawChart("chart-category-trend", {
    type: "line",
    data: { labels: report.days, datasets: report.categories.slice(0, PALETTE.length).map((c, i) => ({
      label: c.label, data: c.by_day, borderColor: PALETTE[i], backgroundColor: PALETTE[i], tension: 0.2 })) },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  clear(document.getElementById("a-skus"), table("a-sku-table",
    [t("a_sku"), t("a_tickets"), t("a_customers"), t("a_kinds"), ""],
    report.skus.map((s) => el("tr", { dataset: { sku: s.sku }, class: s.repeat_defect ? "flagged" : null },
      el("td", {}, el("code", {}, s.sku)), el("td", {}, String(s.tickets)), el("td", {}, String(s.customers)),
      el("td", {}, Object.entries(s.categories).map(([k, n]) => `${k} ${n}`).join(" · ")),
      el("td", {}, s.repeat_defect ? el("span", { class: "badge warning" }, t("a_defect")) : "")))));
}

function renderMisses(report) {
  clear(document.getElementById("a-misses"), table("a-miss-table",
    [t("a_question"), t("a_count"), t("a_variants"), t("a_examples"), t("a_last")],
    report.clusters.map((c) => el("tr", {},
      el("td", {}, c.question), el("td", {}, String(c.misses)), el("td", {}, String(c.variants)),
      el("td", { class: "muted" }, c.examples.slice(1).join(" / ")), el("td", {}, c.last ? fmtTime(c.last) : "")))));
}

function renderIvr(report) {
  const rows = report.scenarios.filter((s) => s.median_seconds !== null);
  const label = (s) => (s.scenario ? t(`intent_${s.scenario}`) : t("a_none"));
  drawChart("chart-ivr", {
    type: "bar",
    data: { labels: rows.map(label), datasets: [
      { label: t("a_median"), data: rows.map((s) => s.median_seconds), backgroundColor: "#1463ff" },
      { label: t("a_p90"), data: rows.map((s) => s.p90_seconds), backgroundColor: "#d97706" }] },
    options: { scales: { y: { beginAtZero: true } } },
  });
  drawChart("chart-nuisance", {
    type: "bar",
    data: { labels: report.nuisance.days, datasets: [{ label: t("a_rejected"), data: report.nuisance.by_day,
      backgroundColor: "#b91c1c" }] },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  clear(document.getElementById("a-ivr"),
    table("a-ivr-table", [t("a_scenario"), t("a_calls"), t("a_median"), t("a_p90"), t("a_mean")],
      report.scenarios.map((s) => el("tr", {}, el("td", {}, label(s)), el("td", {}, String(s.calls)),
        el("td", {}, String(s.median_seconds ?? "")), el("td", {}, String(s.p90_seconds ?? "")),
        el("td", {}, String(s.mean_seconds ?? ""))))),
    el("p", { id: "a-nuisance" }, `${t("a_nuisance")}: ${t("a_rejected")} ${report.nuisance.rejected} · `
      + `${t("a_callers")} ${report.nuisance.callers} · `
      + Object.entries(report.nuisance.reasons).map(([k, n]) => `${k} ${n}`).join(" · ")));
}

document.addEventListener("DOMContentLoaded", () => {
  renderAnalyticsShell();
  loadAnalytics();
});
