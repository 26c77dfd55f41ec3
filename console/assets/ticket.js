// The ticket page (/console/tickets/{id}): header with the explained priority, the status
// timeline with actors and times, live SLA clocks, attachments with their OCR fields, the survey,
// the linked after-sales request, comments, and buttons for exactly the actions the server lists
// in allowed_actions (the API enforces the same rules; the buttons only mirror them).
"use strict";

addStrings({
  zh: {
    ticket: "工单", not_allowed: "无权查看此工单", not_found: "找不到此工单", back: "返回工作台",
    type: "类型", queue: "队列", priority: "优先级", status: "状态", customer: "客户", order: "订单", amount: "金额",
    order_amount: "订单金额", assignee: "处理人", unassigned: "未分配", age: "已等待", channels: "渠道",
    summary: "问题描述", flags: "历史风险", decision: "审核结论", score: "{n} 分",
    timeline: "处理进度", by: "操作人", reason: "原因", note: "备注", kind_opened: "创建", kind_transition: "状态变更",
    kind_assignment: "分配", kind_decision: "审核", kind_contact: "客户联系", kind_comment: "评论", kind_transfer: "转队列",
    kind_attachment: "附件", kind_escalation: "升级", kind_reminder: "提醒",
    actor_customer: "客户", actor_system: "系统（{rule}）",
    sla: "SLA 时限", clock_first_response: "首次响应", clock_next_response: "再次响应", clock_resolution: "解决时限",
    state_running: "计时中", state_warning: "即将超时", state_breached: "已超时", state_paused: "已暂停（等待客户）",
    state_met: "已达成", state_met_late: "超时后完成", due: "截止 {at}", remaining: "剩余 {left}",
    overdue: "已超时 {over}", business_left: "工作时间剩余 {n} 分钟", paused_note: "等待客户补充期间不计时",
    attachments: "附件与识别结果", evidence: "客户照片", needs_review: "需人工核对", no_attachments: "无附件",
    survey: "满意度评价", csat: "满意度", nps: "推荐意愿", survey_stage: "阶段", survey_comment: "留言",
    request: "售后申请进度", comments: "评论", internal: "内部备注", public_reply: "回复客户", no_comments: "暂无评论",
    actions: "操作", claim: "领取", release: "退回工单池", in_review: "开始审核", pending_customer: "请客户补充",
    approved: "审核通过", rejected: "驳回", processing: "处理中", resolved: "已解决", closed: "关闭",
    transfer: "转队列", assign: "分配", comment: "添加内部备注", reply: "回复客户", attach: "",
    amount_granted: "批准金额（元）", reject_reason: "驳回原因（客户会看到）", info_note: "需要客户补充什么",
    resolve_note: "处理结果说明", transfer_reason: "转交原因", assignee_id: "处理人工号", release_reason: "退回原因",
    note_placeholder: "内部备注，客户看不到", reply_placeholder: "发送给客户的回复", send: "提交", cancel: "取消",
    done: "已更新", changed_by_other: "工单已被他人更新，已刷新", no_actions: "当前无可执行操作",
    customer_view: "客户看到的进度",
  },
  en: {
    ticket: "Ticket", not_allowed: "You are not allowed to view this ticket", not_found: "No such ticket",
    back: "Back to the inbox", type: "Type", queue: "Queue", priority: "Priority", status: "Status",
    customer: "Customer", order: "Order", amount: "Amount", order_amount: "Order amount", assignee: "Assignee",
    unassigned: "unassigned", age: "Waiting", channels: "Channels", summary: "Summary", flags: "History flags",
    decision: "Decision", score: "{n} points",
    timeline: "Timeline", by: "By", reason: "Reason", note: "Note", kind_opened: "opened", kind_transition: "status",
    kind_assignment: "assignment", kind_decision: "decision", kind_contact: "customer contact", kind_comment: "comment",
    kind_transfer: "transfer", kind_attachment: "attachment", kind_escalation: "escalation", kind_reminder: "reminder",
    actor_customer: "customer", actor_system: "system ({rule})",
    sla: "SLA", clock_first_response: "First response", clock_next_response: "Next response",
    clock_resolution: "Resolution", state_running: "running", state_warning: "due soon", state_breached: "overdue",
    state_paused: "paused (waiting for the customer)", state_met: "met", state_met_late: "met late",
    due: "due {at}", remaining: "{left} left", overdue: "overdue by {over}", business_left: "{n} business minutes left",
    paused_note: "The clock stops while the customer is asked for more",
    attachments: "Attachments and OCR", evidence: "Customer photos", needs_review: "needs checking",
    no_attachments: "No attachments", survey: "Survey", csat: "CSAT", nps: "NPS", survey_stage: "Stage",
    survey_comment: "Comment", request: "After-sales request", comments: "Comments", internal: "internal note",
    public_reply: "reply to the customer", no_comments: "No comments yet",
    actions: "Actions", claim: "Claim", release: "Back to the pool", in_review: "Start review",
    pending_customer: "Ask the customer", approved: "Approve", rejected: "Reject", processing: "Processing",
    resolved: "Resolve", closed: "Close", transfer: "Transfer", assign: "Assign", comment: "Add an internal note",
    reply: "Reply to the customer", attach: "", amount_granted: "Amount granted (¥)",
    reject_reason: "Reason (the customer sees it)", info_note: "What the customer should send",
    resolve_note: "Resolution note", transfer_reason: "Reason for the transfer", assignee_id: "Staff ID",
    release_reason: "Reason", note_placeholder: "Internal note, never shown to the customer",
    reply_placeholder: "Reply sent to the customer", send: "Submit", cancel: "Cancel", done: "Updated",
    changed_by_other: "Someone else changed this ticket; reloaded", no_actions: "Nothing to do right now",
    customer_view: "What the customer sees",
  },
});

const TICKET_ID = BOOT.params.ticket_id;
const TICKET_API = `/api/backoffice/tickets/${encodeURIComponent(TICKET_ID)}`;
const app = document.getElementById("app");
let view = null;
let clockTimer = null;
// Our own changes come back over the live socket too: a version already drawn means no "someone else" toast.
let shownVersion = 0;
let acting = false;
let deferred = null;

function actorName(actor) {
  if (!actor) return "";
  if (view?.actor_names?.[actor]) return view.actor_names[actor];
  if (actor === "customer" || actor.startsWith("customer")) return t("actor_customer");
  if (actor.startsWith("system:")) return t("actor_system", { rule: actor.slice(7) });
  return actor.replace(/^staff:/, "");
}

function statusLabel(status) {
  return view?.status_labels?.[status] ?? status;
}

function money(value) {
  return typeof value === "number" ? `¥${value.toFixed(2)}` : "";
}

function fmtCountdown(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s >= 86400) return fmtAge(s);
  const hh = String(Math.floor(s / 3600)).padStart(2, "0");
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return `${hh}:${mm}:${ss}`;
}

// -- loading ---------------------------------------------------------------------------------

async function load() {
  try {
    const data = await api("GET", `${TICKET_API}?lang=${LANG}`);
    render(data.ticket);
  } catch (failure) {
    showFailure(failure);
  }
}

function showFailure(failure) {
  stopClocks();
  if (failure.status === 403 || failure.status === 404) {
    clear(app, el("div", { class: "card denied", id: "ticket-denied", dataset: { status: failure.status } },
      el("h2", {}, t(failure.status === 403 ? "not_allowed" : "not_found")),
      el("p", { class: "muted" }, failure.message),
      el("a", { href: "/console/" }, t("back"))));
    return;
  }
  clear(app, el("div", { class: "card error", id: "ticket-error" }, t("failed", { detail: failure.message })));
}

async function act(method, path, body) {
  acting = true;
  try {
    const data = await api(method, `${TICKET_API}${path}?lang=${LANG}`, body);
    render(data.ticket);
    toast(t("done"));
    return true;
  } catch (failure) {
    if (failure.status === 403 || failure.status === 404) showFailure(failure);
    else toast(t("failed", { detail: failure.message }));
    return false;
  } finally {
    acting = false;
    // A change event that raced our own request: only a newer version than ours is someone else's.
    const raced = deferred;
    deferred = null;
    if (raced) onLive(raced);
  }
}

// -- drawing ---------------------------------------------------------------------------------

function render(ticket) {
  view = ticket;
  shownVersion = Math.max(shownVersion, ticket.version ?? 0);
  document.title = `${t("ticket")} ${ticket.id}`;
  clear(app,
    headerCard(ticket),
    el("div", { class: "grid two" },
      el("div", {}, timelineCard(ticket), commentsCard(ticket), attachmentsCard(ticket), requestCard(ticket)),
      el("div", {}, actionsCard(ticket), slaCard(ticket), surveyCard(ticket), customerViewCard(ticket))));
  startClocks();
}

function headerCard(ticket) {
  const priority = ticket.effective_priority || {};
  const factors = el("ul", { class: "factors", id: "priority-factors" },
    (priority.factors || []).map((f) => el("li", {}, el("span", { class: "badge" }, `+${f.points}`), " ", f.reason)));
  const names = ticket.actor_names || {};
  const assignee = ticket.assignee ? names[`staff:${ticket.assignee}`] || ticket.assignee : t("unassigned");
  return el("section", { class: "card ticket-head", id: "ticket-head" },
    el("h2", {}, `${t("ticket")} ${ticket.id} `,
      el("span", { class: `badge status status-${ticket.status}`, id: "ticket-status", dataset: { status: ticket.status } },
        ticket.status_label),
      " ", el("span", { class: `badge ${priority.level}`, id: "ticket-priority" }, priority.level)),
    el("dl", { class: "kv" },
      el("dt", {}, t("type")), el("dd", {}, ticket.type_label, ticket.category_label ? ` · ${ticket.category_label}` : ""),
      el("dt", {}, t("queue")), el("dd", { id: "ticket-queue" }, ticket.queue_label),
      el("dt", {}, t("assignee")), el("dd", { id: "ticket-assignee" }, assignee),
      el("dt", {}, t("customer")), el("dd", {}, ticket.customer_id, ticket.customer_tier ? ` (${ticket.customer_tier})` : ""),
      el("dt", {}, t("order")), el("dd", {},
        ticket.order_id ? el("a", { href: `/console/orders/${ticket.order_id}` }, ticket.order_id) : t("none"),
        ticket.order_amount ? ` · ${t("order_amount")} ${money(ticket.order_amount)}` : ""),
      el("dt", {}, t("amount")), el("dd", { id: "ticket-amount" }, money(ticket.amount)),
      el("dt", {}, t("channels")), el("dd", {}, (ticket.channels || []).map(channelBadge)),
      el("dt", {}, t("age")), el("dd", {}, ticket.age?.text || ""),
      el("dt", {}, t("priority")), el("dd", {}, t("score", { n: priority.score ?? 0 }), factors),
      el("dt", {}, t("summary")), el("dd", { class: "summary" }, ticket.summary),
      ticket.flags?.length ? [el("dt", {}, t("flags")), el("dd", { id: "ticket-flags" },
        ticket.flags.map((f) => el("div", { class: "badge warning" }, f.detail)))] : null,
      ticket.decision ? [el("dt", {}, t("decision")), el("dd", { id: "ticket-decision" },
        `${statusLabel(ticket.decision.outcome)} · ${actorName(ticket.decision.by)}`,
        ticket.decision.amount ? ` · ${money(ticket.decision.amount)}` : "",
        ticket.decision.reason ? ` · ${ticket.decision.reason}` : "")] : null));
}

function entryTitle(entry) {
  if (entry.kind === "opened" || entry.from_status === entry.status || !entry.from_status) {
    return statusLabel(entry.status);
  }
  return `${statusLabel(entry.from_status)} → ${statusLabel(entry.status)}`;
}

function timelineCard(ticket) {
  const items = (ticket.timeline || []).map((entry) => el("li", {
    class: `entry kind-${entry.kind}`, dataset: { status: entry.status, kind: entry.kind, actor: entry.actor },
  },
  el("div", { class: "entry-head" },
    el("strong", {}, entryTitle(entry)), " ",
    el("span", { class: "badge" }, t(`kind_${entry.kind}`) === `kind_${entry.kind}` ? entry.kind : t(`kind_${entry.kind}`)),
    " ", el("time", { class: "muted", datetime: entry.at }, fmtTime(entry.at))),
  el("div", { class: "entry-actor" }, `${t("by")}: `, el("span", { class: "actor" }, actorName(entry.actor))),
  entry.data?.amount && entry.kind === "decision" ? el("div", {}, `${t("amount")}: ${money(entry.data.amount)}`) : null,
  entry.data?.to_queue ? el("div", {}, `${t("queue")}: ${entry.data.from_queue} → ${entry.data.to_queue}`) : null,
  entry.reason ? el("div", { class: "entry-reason" }, `${t("reason")}: ${entry.reason}`) : null,
  entry.note && entry.kind !== "comment" ? el("div", { class: "entry-note" }, `${t("note")}: ${entry.note}`) : null,
  entry.kind === "comment" && entry.data?.text ? el("div", { class: "entry-note" },
    `${entry.data.public ? t("public_reply") : t("internal")}: ${entry.data.text}`) : null));
  return el("section", { class: "card" }, el("h2", {}, t("timeline")),
    el("ol", { class: "timeline", id: "ticket-timeline" }, items));
}

function slaCard(ticket) {
  const rows = (ticket.sla_clocks || []).map((clock) => {
    const stateClass = { breached: "breached", warning: "warning", met: "ok", met_late: "warning" }[clock.state] || "";
    const live = el("div", { class: "sla-live", dataset: { due: clock.due_at || "", state: clock.state } });
    const lines = [];
    if (clock.due_at) lines.push(el("div", { class: "muted" }, t("due", { at: fmtTime(clock.due_at) })));
    if (clock.state === "running" || clock.state === "warning") {
      lines.push(live, el("div", { class: "muted" }, t("business_left", { n: Math.round(clock.remaining_minutes) })));
    } else if (clock.state === "breached") {
      lines.push(el("div", { class: "sla-over" },
        t("overdue", { over: fmtAge(Math.max(0, -clock.remaining_minutes) * 60) })));
    } else if (clock.state === "paused") {
      lines.push(el("div", {}, t("business_left", { n: Math.round(clock.remaining_minutes) })),
        el("div", { class: "muted" }, t("paused_note")));
    }
    return el("div", { class: `sla-clock sla-${clock.state}`, dataset: { clock: clock.clock, state: clock.state } },
      el("div", {}, el("strong", {}, t(`clock_${clock.clock}`)), " ",
        el("span", { class: `badge ${stateClass}` }, t(`state_${clock.state}`))),
      lines);
  });
  return el("section", { class: "card", id: "ticket-sla" }, el("h2", {}, t("sla")), rows);
}

// The countdown to each running clock's due time, redrawn every second without a re-fetch.
function tickClocks() {
  for (const node of app.querySelectorAll(".sla-live")) {
    const due = node.dataset.due;
    if (!due) continue;
    const left = (new Date(due).getTime() - Date.now()) / 1000;
    node.textContent = left > 0 ? t("remaining", { left: fmtCountdown(left) }) : t("overdue", { over: fmtAge(-left) });
    node.classList.toggle("sla-over", left <= 0);
  }
}

function startClocks() {
  stopClocks();
  tickClocks();
  clockTimer = setInterval(tickClocks, 1000);
}

function stopClocks() {
  if (clockTimer) clearInterval(clockTimer);
  clockTimer = null;
}

function attachmentsCard(ticket) {
  const results = ticket.ocr_results || [];
  const withOcr = new Set(results.map((r) => r.media_id));
  const rest = (ticket.evidence || []).filter((id) => !withOcr.has(id));
  const body = [];
  for (const result of results) {
    const fields = Object.entries(result.fields || {}).filter(([, v]) => v !== null && v !== undefined);
    body.push(el("div", { class: "ocr-pair", dataset: { result: result.id } },
      el("img", { src: result.image, alt: result.media_id, loading: "lazy" }),
      el("div", { class: "ocr-fields" },
        result.needs_review ? el("div", { class: "badge warning" }, t("needs_review")) : null,
        el("dl", { class: "kv" }, fields.map(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))]).flat()),
        (result.review_reasons || []).map((reason) => el("div", { class: "muted" }, reason)))));
  }
  if (rest.length) body.push(el("div", {}, `${t("evidence")}: `, rest.map((id) => el("code", {}, id, " "))));
  if (!body.length) body.push(el("p", { class: "muted" }, t("no_attachments")));
  return el("section", { class: "card", id: "ticket-attachments" }, el("h2", {}, t("attachments")), body);
}

function requestCard(ticket) {
  const request = ticket.request;
  if (!request) return null;
  return el("section", { class: "card", id: "ticket-request" },
    el("h2", {}, `${t("request")} ${request.id}`),
    el("ol", { class: "timeline" }, (request.agent_timeline || []).map((step) => el("li", { dataset: { step: step.step } },
      el("strong", {}, step.label), " ", el("span", { class: "muted" }, fmtTime(step.at)),
      el("div", {}, `${t("by")}: ${actorName(step.actor)}`), step.note ? el("div", {}, step.note) : null))));
}

function surveyCard(ticket) {
  const survey = ticket.survey;
  if (!survey) return null;
  return el("section", { class: "card", id: "ticket-survey" }, el("h2", {}, t("survey")),
    el("dl", { class: "kv" },
      el("dt", {}, t("csat")), el("dd", {}, survey.csat ?? "—"),
      el("dt", {}, t("nps")), el("dd", {}, survey.nps ?? "—"),
      el("dt", {}, t("survey_stage")), el("dd", {}, survey.stage),
      survey.comment ? [el("dt", {}, t("survey_comment")), el("dd", {}, survey.comment)] : null));
}

function customerViewCard(ticket) {
  const stages = ticket.customer_timeline || [];
  if (!stages.length) return null;
  return el("section", { class: "card" }, el("h2", {}, t("customer_view")),
    el("ol", { class: "timeline" }, stages.map((s) => el("li", {}, s.label, " ", el("span", { class: "muted" }, fmtTime(s.at))))));
}

function commentsCard(ticket) {
  const comments = ticket.comments || [];
  const list = comments.length
    ? comments.map((c) => el("div", { class: `bubble ${c.public ? "agent" : "note"}`, dataset: { public: c.public } },
      el("div", { class: "meta" }, `${actorName(c.author)} · ${c.public ? t("public_reply") : t("internal")} · ${fmtTime(c.at)}`),
      c.text))
    : [el("p", { class: "muted" }, t("no_comments"))];
  return el("section", { class: "card", id: "ticket-comments" }, el("h2", {}, t("comments")),
    el("div", { class: "thread" }, list));
}

// -- actions ---------------------------------------------------------------------------------

// A small inline form under the buttons: one at a time, each with the fields its API call needs.
function openForm(holder, action, fields, submit) {
  const inputs = {};
  const rows = fields.map((field) => {
    let input;
    if (field.type === "textarea") input = el("textarea", { name: field.name, placeholder: field.label, required: field.required });
    else if (field.type === "select") {
      input = el("select", { name: field.name }, field.options.map((o) => el("option", { value: o.value }, o.label)));
    } else {
      input = el("input", { name: field.name, type: field.type || "text", placeholder: field.label,
        step: field.step, min: field.min, max: field.max, value: field.value, required: field.required });
    }
    inputs[field.name] = input;
    return el("label", { class: "action-field" }, el("span", {}, field.label), input);
  });
  const form = el("form", { class: "action-form", id: `form-${action}` }, rows,
    el("div", { class: "toolbar" },
      el("button", { type: "submit", id: `submit-${action}` }, t("send")),
      el("button", { type: "button", class: "secondary", onclick: () => clear(holder) }, t("cancel"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(Object.entries(inputs).map(([k, node]) => [k, node.value.trim()]));
    for (const field of fields) if (field.required && !values[field.name]) { inputs[field.name].focus(); return; }
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    if (!(await submit(values))) for (const button of form.querySelectorAll("button")) button.disabled = false;
  });
  clear(holder, form);
  (Object.values(inputs)[0] || form).focus();
}

function transition(to, extra) {
  return act("POST", "/transition", { to, ...extra });
}

function actionButtons(ticket, holder) {
  const allowed = new Set(ticket.allowed_actions || []);
  const queues = (ticket.queues || []).filter((q) => q.queue !== ticket.queue)
    .map((q) => ({ value: q.queue, label: q.label }));
  const handlers = {
    claim: () => act("POST", "/claim", {}),
    release: () => openForm(holder, "release", [{ name: "reason", label: t("release_reason"), required: true }],
      (v) => act("POST", "/release", { reason: v.reason })),
    in_review: () => transition("in_review"),
    pending_customer: () => openForm(holder, "pending_customer",
      [{ name: "note", label: t("info_note"), type: "textarea", required: true }],
      (v) => transition("pending_customer", { note: v.note })),
    approved: () => openForm(holder, "approved", [
      { name: "amount", label: t("amount_granted"), type: "number", step: "0.01", min: "0",
        max: ticket.order_amount || undefined, value: ticket.amount ? ticket.amount.toFixed(2) : "" },
      { name: "reason", label: t("reason") },
    ], (v) => transition("approved", { amount: v.amount === "" ? undefined : Number(v.amount), reason: v.reason || undefined })),
    rejected: () => openForm(holder, "rejected", [{ name: "reason", label: t("reject_reason"), type: "textarea", required: true }],
      (v) => transition("rejected", { reason: v.reason })),
    processing: () => transition("processing"),
    resolved: () => openForm(holder, "resolved", [{ name: "note", label: t("resolve_note"), type: "textarea" }],
      (v) => transition("resolved", { note: v.note || undefined })),
    closed: () => transition("closed"),
    transfer: () => openForm(holder, "transfer", [
      { name: "queue", label: t("queue"), type: "select", options: queues },
      { name: "reason", label: t("transfer_reason"), required: true },
    ], (v) => act("POST", "/transfer", { queue: v.queue, reason: v.reason })),
    assign: () => openForm(holder, "assign", [
      { name: "assignee", label: t("assignee_id"), required: true },
      { name: "reason", label: t("reason") },
    ], (v) => act("POST", "/assign", { assignee: v.assignee, ...(v.reason ? { reason: v.reason } : {}) })),
    comment: () => openForm(holder, "comment", [{ name: "text", label: t("note_placeholder"), type: "textarea", required: true }],
      (v) => act("POST", "/comments", { text: v.text, public: false })),
    reply: () => openForm(holder, "reply", [{ name: "text", label: t("reply_placeholder"), type: "textarea", required: true }],
      (v) => act("POST", "/comments", { text: v.text, public: true })),
  };
  const danger = new Set(["rejected", "closed"]);
  const secondary = new Set(["release", "transfer", "assign", "comment", "reply"]);
  return Object.keys(handlers).filter((action) => allowed.has(action)).map((action) => el("button", {
    type: "button", id: `action-${action}`, dataset: { action },
    class: danger.has(action) ? "danger" : secondary.has(action) ? "secondary" : null,
    onclick: handlers[action],
  }, t(action)));
}

function actionsCard(ticket) {
  const holder = el("div", { id: "action-form" });
  const buttons = actionButtons(ticket, holder);
  return el("section", { class: "card", id: "ticket-actions" }, el("h2", {}, t("actions")),
    buttons.length ? el("div", { class: "toolbar" }, buttons) : el("p", { class: "muted", id: "no-actions" }, t("no_actions")),
    holder);
}

// -- live updates ----------------------------------------------------------------------------

let reloading = false;
let newestSeen = 0;

async function reloadUntilCurrent() {
  reloading = true;
  try {
    do await load(); while (view && newestSeen > shownVersion && document.getElementById("ticket-head"));
  } finally {
    reloading = false;
  }
}

function onLive(event) {
  if (event.type === "subscribed" && event.ticket_id === TICKET_ID) {
    // Re-read once: a change made between the first fetch and the subscription is not lost.
    (view ? load() : Promise.resolve()).then(() => { document.body.dataset.live = "ticket"; });
    return;
  }
  if (event.type !== "ticket" || event.id !== TICKET_ID) return;
  if (acting) {
    deferred = event;
    return;
  }
  if (event.version && event.version <= shownVersion) return; // already drawn (our own change, or re-read)
  newestSeen = Math.max(newestSeen, event.version || 0);
  if (reloading) return; // one change often arrives as several events: one toast, one re-read
  toast(t("changed_by_other"));
  reloadUntilCurrent();
}

document.addEventListener("DOMContentLoaded", () => {
  load();
  const live = new Live(onLive, load);
  live.keep({ type: "subscribe", topic: "ticket", ticket_id: TICKET_ID });
  // A fresh view every minute keeps the business-time figures (remaining, overdue) right.
  setInterval(() => { if (view) load(); }, 60_000);
});
