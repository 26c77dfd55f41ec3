// Inbox: conversations waiting for an agent and one's own, and tickets (mine, the to-claim pool
// with counts and ages, the team's), updated live as the store changes.
"use strict";

addStrings({
  zh: {
    waiting_title: "等待人工的会话", mine_title: "我的会话", tickets_title: "工单", claim: "接入", open: "打开",
    customer: "客户", reason: "转人工原因", intent: "意图", waited: "已等待", channel: "渠道", queue: "技能组",
    no_waiting: "暂无等待的会话", no_mine: "您当前没有会话", no_tickets: "此视图暂无工单", view_mine: "我的工单",
    view_pool: "待领取", view_team: "团队工单", view_submitted: "我提交的", view_all: "全部", ticket: "工单号",
    type: "类型", status: "状态", priority: "优先级", age: "时长", sla: "SLA", pool_queue: "{label}：{count} 单待领取，最久 {age}",
    taken: "该会话已被其他客服接入", updated: "已更新", reason_negative_emotion: "情绪激动", reason_customer_asked: "要求人工",
    reason_not_understood: "多次未识别", reason_nlu_unavailable: "NLU 不可用", reason_food_safety: "食品安全",
    reason_knowledge_miss: "知识库无答案", reason_order_intercept: "拦截订单", reason_order_redirect: "改派订单",
    reason_repeated_urge: "多次催单", reason_verification_failed: "身份验证失败",
  },
  en: {
    waiting_title: "Conversations waiting for an agent", mine_title: "My conversations", tickets_title: "Tickets",
    claim: "Take", open: "Open", customer: "Customer", reason: "Why handed off", intent: "Intent", waited: "Waiting",
    channel: "Channel", queue: "Skill group", no_waiting: "Nobody is waiting", no_mine: "You have no conversations",
    no_tickets: "No tickets in this view", view_mine: "My tickets", view_pool: "To claim", view_team: "Team",
    view_submitted: "Submitted by me", view_all: "All", ticket: "Ticket", type: "Type", status: "Status",
    priority: "Priority", age: "Age", sla: "SLA", pool_queue: "{label}: {count} to claim, oldest {age}",
    taken: "Another agent took this conversation", updated: "Updated", reason_negative_emotion: "Upset customer",
    reason_customer_asked: "Asked for an agent", reason_not_understood: "Not understood repeatedly",
    reason_nlu_unavailable: "NLU unavailable", reason_food_safety: "Food safety", reason_knowledge_miss: "No answer known",
    reason_order_intercept: "Intercept order", reason_order_redirect: "Redirect order", reason_repeated_urge: "Urged repeatedly",
    reason_verification_failed: "Verification failed",
  },
});

const app = document.getElementById("app");
const state = { view: null, conversations: null, tickets: [], pool: [] };

function ticketViews() {
  const views = ["mine"];
  if (can("claim_own_queues") || can("claim_any")) views.push("pool");
  if (can("view_own_queues") || can("view_all")) views.push("team");
  if (can("submit")) views.push("submitted");
  return views;
}

function reasonLabel(reason) {
  const key = `reason_${reason}`;
  const text = t(key);
  return text === key ? reason || "" : text;
}

async function claim(conversationId) {
  try {
    await api("POST", `/api/agent/conversations/${conversationId}/claim`, {});
    location.href = `/console/conversations/${conversationId}`;
  } catch (error) {
    toast(error.status === 409 ? t("taken") : t("failed", { detail: error.message }));
    await load();
  }
}

function conversationsCard() {
  if (!can("handle_conversations") || !state.conversations) return null;
  const { waiting, mine } = state.conversations;
  const waitingRows = waiting.map((c) => el("tr", { class: "clickable", dataset: { conversation: c.id } },
    el("td", {}, channelBadge(c.channel)),
    el("td", {}, c.summary?.customer?.name || c.customer_id),
    el("td", {}, reasonLabel(c.reason)),
    el("td", {}, c.summary?.intent || ""),
    el("td", {}, c.queue || ""),
    el("td", { class: "age" }, fmtAge(c.waiting_s)),
    el("td", {}, el("button", { class: "claim", onclick: () => claim(c.id) }, t("claim")))));
  const mineRows = mine.map((c) => el("tr", { class: "clickable", dataset: { conversation: c.id },
    onclick: () => { location.href = `/console/conversations/${c.id}`; } },
    el("td", {}, channelBadge(c.channel)), el("td", {}, c.customer_id), el("td", {}, fmtTime(c.updated_at)),
    el("td", {}, el("a", { href: `/console/conversations/${c.id}` }, t("open")))));
  const head = (...names) => el("tr", {}, names.map((n) => el("th", {}, t(n))));
  return el("div", { class: "grid two" },
    el("section", { class: "card", id: "waiting" },
      el("h2", {}, `${t("waiting_title")} (${waiting.length})`),
      waiting.length ? el("table", {}, el("thead", {}, head("channel", "customer", "reason", "intent", "queue", "waited", "")),
        el("tbody", {}, waitingRows)) : el("p", { class: "muted" }, t("no_waiting"))),
    el("section", { class: "card", id: "mine" },
      el("h2", {}, `${t("mine_title")} (${mine.length})`),
      mine.length ? el("table", {}, el("tbody", {}, mineRows)) : el("p", { class: "muted" }, t("no_mine"))));
}

function slaBadge(ticket) {
  const clocks = ticket.sla_clocks || [];
  const worst = clocks.find((c) => c.state === "breached") || clocks.find((c) => c.state === "warning") || clocks[0];
  if (!worst) return "";
  const left = worst.remaining_minutes;
  return el("span", { class: `badge ${worst.state || ""}` }, `${worst.clock} ${Math.round(left)}m`);
}

function ticketsCard() {
  const views = ticketViews();
  if (!views.length) return null;
  const tabs = el("div", { class: "tabs", role: "tablist" }, views.map((v) =>
    el("button", { class: v === state.view ? "active" : "", id: `tab-${v}`, onclick: () => { state.view = v; load(); } },
      t(`view_${v}`))));
  const pool = state.view === "pool" && state.pool.length
    ? el("div", { class: "toolbar", id: "pool-counts" }, state.pool.map((q) => el("span", { class: "badge" },
        t("pool_queue", { label: q.label, count: q.count, age: q.oldest_age ? q.oldest_age.text : t("none") }))))
    : null;
  const rows = state.tickets.map((k) => el("tr", { class: "clickable", dataset: { ticket: k.id },
    onclick: () => { location.href = `/console/tickets/${k.id}`; } },
    el("td", {}, el("a", { href: `/console/tickets/${k.id}` }, k.id)),
    el("td", {}, k.type_label), el("td", {}, k.queue_label),
    el("td", {}, el("span", { class: `badge ${k.effective_priority?.level || k.priority}` }, k.effective_priority?.level || k.priority)),
    el("td", {}, k.status_label), el("td", {}, k.age?.text || ""), el("td", {}, slaBadge(k)),
    el("td", { class: "muted" }, (k.summary || "").slice(0, 60))));
  return el("section", { class: "card", id: "tickets" }, el("h2", {}, t("tickets_title")), tabs, pool,
    state.tickets.length
      ? el("table", {}, el("thead", {}, el("tr", {}, ["ticket", "type", "queue", "priority", "status", "age", "sla", ""]
        .map((n) => el("th", {}, n ? t(n) : "")))), el("tbody", {}, rows))
      : el("p", { class: "muted" }, t("no_tickets")));
}

function render() {
  clear(app, conversationsCard(), ticketsCard());
}

async function load() {
  const views = ticketViews();
  if (!state.view) state.view = views[0];
  const jobs = [];
  if (can("handle_conversations")) jobs.push(api("GET", "/api/agent/queue").then((d) => { state.conversations = d; }));
  if (state.view) {
    jobs.push(api("GET", `/api/backoffice/tickets?view=${state.view}&lang=${LANG}&limit=100`)
      .then((d) => { state.tickets = d.tickets; }));
    if (state.view === "pool") jobs.push(api("GET", `/api/backoffice/pool?lang=${LANG}`).then((d) => { state.pool = d.queues; }));
  }
  try {
    await Promise.all(jobs);
  } catch (error) {
    toast(t("failed", { detail: error.message }));
  }
  render();
}

const reloadSoon = debounced(load, 250);

document.addEventListener("DOMContentLoaded", () => {
  load();
  const live = new Live((event) => {
    if (event.type === "conversation" || event.type === "ticket") reloadSoon();
  }, load);
  live.keep({ type: "subscribe", topic: "inbox" });
  // Ages keep moving between updates.
  setInterval(() => { if (!document.hidden) load(); }, 60000);
});
