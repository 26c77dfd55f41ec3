// Conversation view: the customer's whole history across channels (badges, photos with what OCR
// read), internal notes, the bot's summary and the customer's profile; reply on the customer's
// own channel, canned replies, notes, transfer, hand back to the bot, close with a survey; who
// else is viewing or typing, live.
"use strict";

addStrings({
  zh: {
    history: "会话记录（全部渠道）", reply_placeholder: "回复客户（将通过客户所在渠道发送）", note_placeholder: "内部备注（客户不可见）",
    send: "发送", add_note: "添加备注", as_note: "内部备注", canned: "快捷回复", claim: "接入会话", hand_back: "交还机器人",
    close_survey: "结束并邀请评价", transfer: "转接", to_agent: "转给同事", to_queue: "转到技能组", transfer_reason: "转接原因",
    bot_summary: "机器人摘要", profile: "客户资料", orders: "订单", requests: "售后申请", tickets: "工单", intents: "近期意图",
    other_conversations: "其他会话", state_bot: "机器人处理中", state_waiting_agent: "等待人工", state_agent: "人工处理中",
    state_closed: "已结束", owner: "处理人：{agent}", viewing: "{names} 正在查看", typing: "{names} 正在输入…",
    you: "您", customer: "客户", bot: "机器人", system: "系统", note: "备注", sent: "已发送", delivered: "已送达", read: "已读",
    failed_send: "发送失败", reason: "原因", slots: "已收集信息", none: "无", not_yours: "该会话由 {agent} 处理，您只能查看。",
    handed_back: "已交还机器人", closed_with_survey: "已结束，已邀请客户评价", transferred: "已转接", ocr: "识别结果",
    taken: "已被其他客服接入", read_only: "只读", choose: "请选择…", intent: "意图", customer_id: "客户编号", name: "姓名",
    why_customer_asked: "客户要求人工", why_negative_emotion: "情绪激动", why_not_understood: "多次未识别",
    why_nlu_unavailable: "NLU 不可用", why_food_safety: "食品安全", why_knowledge_miss: "知识库无答案",
    why_verification_failed: "身份验证失败", why_repeated_urge: "多次催单",
  },
  en: {
    history: "History (all channels)", reply_placeholder: "Reply to the customer (sent on their channel)",
    note_placeholder: "Internal note (the customer never sees it)", send: "Send", add_note: "Add note", as_note: "Internal note",
    canned: "Canned replies", claim: "Take conversation", hand_back: "Hand back to the bot",
    close_survey: "Close with survey", transfer: "Transfer", to_agent: "To a colleague", to_queue: "To a skill group",
    transfer_reason: "Reason", bot_summary: "Bot summary", profile: "Customer", orders: "Orders", requests: "Requests",
    tickets: "Tickets", intents: "Recent intents", other_conversations: "Other conversations", state_bot: "With the bot",
    state_waiting_agent: "Waiting for an agent", state_agent: "With an agent", state_closed: "Closed",
    owner: "Handled by {agent}", viewing: "{names} viewing", typing: "{names} typing…", you: "You", customer: "Customer",
    bot: "Bot", system: "System", note: "Note", sent: "sent", delivered: "delivered", read: "read", failed_send: "failed",
    reason: "Reason", slots: "Collected", none: "none", not_yours: "{agent} handles this conversation; you can only read it.",
    handed_back: "Handed back to the bot", closed_with_survey: "Closed; the customer was asked to rate it",
    transferred: "Transferred", ocr: "Read by OCR", taken: "Another agent took it", read_only: "read only", choose: "Choose…",
    intent: "Intent", customer_id: "Customer ID", name: "Name", why_customer_asked: "Asked for an agent",
    why_negative_emotion: "Upset customer", why_not_understood: "Not understood repeatedly", why_nlu_unavailable: "NLU unavailable",
    why_food_safety: "Food safety", why_knowledge_miss: "No answer known", why_verification_failed: "Verification failed",
    why_repeated_urge: "Urged repeatedly",
  },
});

const app = document.getElementById("app");
const conversationId = BOOT.params.conversation_id;
let data = null;
let colleagues = { agents: [], queues: [] };
let present = [];
let live = null;
let lastTyping = 0;

const INBOUND = "in";

function author(message) {
  if (message.direction === INBOUND) return t("customer");
  if (message.author === `agent:${BOOT.me.id}`) return t("you");
  if (message.author.startsWith("agent:")) return message.author.slice(6);
  if (message.author === "bot") return t("bot");
  return t("system");
}

function deliveryState(message) {
  if (message.direction === INBOUND) return "";
  if (message.failed) return t("failed_send");
  if (message.read) return t("read");
  return message.delivered ? t("delivered") : t("sent");
}

function attachmentView(attachment) {
  const parts = [];
  if (attachment.inline && attachment.url) {
    parts.push(el("a", { href: attachment.url, target: "_blank", rel: "noopener" },
      el("img", { src: attachment.url, alt: attachment.filename || attachment.kind, class: "attachment-image" })));
  } else if (attachment.url) {
    parts.push(el("a", { href: attachment.url }, attachment.filename || attachment.kind));
  }
  if (attachment.ocr) {
    const fields = Object.entries(attachment.ocr.fields || {}).filter(([, f]) => f && (f.value ?? f) !== null);
    parts.push(el("div", { class: "ocr-fields" }, el("strong", {}, `${t("ocr")}: `),
      fields.map(([name, field]) => el("div", {}, `${name}: ${typeof field === "object" ? field.value : field}`))));
  }
  return parts;
}

function threadItems() {
  const items = data.messages.map((m) => ({ at: m.created_at, id: m.id, kind: "message", m }));
  for (const note of data.notes) items.push({ at: note.created_at, id: note.id, kind: "note", note });
  items.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : 1));
  return items.map((item) => {
    if (item.kind === "note") {
      return el("div", { class: "bubble note", dataset: { note: item.id } },
        el("div", { class: "meta" }, `${t("note")} · ${item.note.author_name} · ${fmtTime(item.note.created_at)}`), item.note.text);
    }
    const m = item.m;
    const agent = m.author.startsWith("agent:");
    const side = m.direction === INBOUND ? "inbound" : "outbound";
    return el("div", { class: `bubble ${side}${agent ? " agent" : ""}`, dataset: { message: m.id } },
      el("div", { class: "meta" }, channelBadge(m.channel), ` ${author(m)} · ${fmtTime(m.created_at)}`,
        m.intent ? ` · ${m.intent}` : "", deliveryState(m) ? ` · ${deliveryState(m)}` : ""),
      m.text, m.attachments.map(attachmentView));
  });
}

function presenceLine() {
  const others = present.filter((p) => p.staff_id !== BOOT.me.id);
  const typing = others.filter((p) => p.typing).map((p) => p.name);
  const viewing = others.filter((p) => !p.typing).map((p) => p.name);
  const parts = [];
  if (typing.length) parts.push(t("typing", { names: typing.join("、") }));
  if (viewing.length) parts.push(t("viewing", { names: viewing.join("、") }));
  return el("div", { class: "presence", id: "presence" }, parts.join("　"));
}

function mine() {
  return data.conversation.state === "agent" && data.conversation.agent_id === BOOT.me.id;
}

async function act(method, path, body, done) {
  try {
    const result = await api(method, path, body);
    if (done) toast(done);
    await load();
    return result;
  } catch (error) {
    toast(error.status === 409 ? t("taken") : t("failed", { detail: error.message }));
    await load();
    return null;
  }
}

function composer() {
  const c = data.conversation;
  if (c.state === "waiting_agent") {
    return el("div", { class: "toolbar" }, el("button", { id: "claim", onclick: () =>
      act("POST", `/api/agent/conversations/${conversationId}/claim`, {}) }, t("claim")));
  }
  const text = el("textarea", { id: "reply", placeholder: t("reply_placeholder"), maxlength: 4000 });
  const asNote = el("input", { type: "checkbox", id: "as-note" });
  asNote.addEventListener("change", () => { text.placeholder = asNote.checked ? t("note_placeholder") : t("reply_placeholder"); });
  text.addEventListener("input", () => {
    if (Date.now() - lastTyping > 2000 && !asNote.checked) {
      lastTyping = Date.now();
      live.send({ type: "typing", conversation_id: conversationId });
    }
  });
  const canned = el("select", { id: "canned", "aria-label": t("canned") }, el("option", { value: "" }, t("canned")),
    data.canned_replies.map((r) => el("option", { value: r.text }, r.text.slice(0, 40))));
  canned.addEventListener("change", () => { if (canned.value) { text.value = canned.value; text.focus(); } canned.value = ""; });
  const send = el("button", { id: "send", onclick: async () => {
    const value = text.value.trim();
    if (!value) return;
    send.disabled = true;
    const clientId = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const ok = asNote.checked
      ? await act("POST", `/api/agent/conversations/${conversationId}/notes`, { text: value })
      : await act("POST", `/api/agent/conversations/${conversationId}/messages`, { text: value, client_message_id: clientId });
    send.disabled = false;
    if (ok) text.value = "";
  } }, t("send"));
  text.addEventListener("keydown", (event) => { if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) send.click(); });
  if (!mine()) {
    asNote.checked = true;
    asNote.disabled = true;
    text.placeholder = t("note_placeholder");
  }
  const agentSelect = el("select", { id: "transfer-agent" }, el("option", { value: "" }, t("to_agent")),
    colleagues.agents.map((a) => el("option", { value: a.id }, `${a.name}${a.online ? "" : " (offline)"}`)));
  const queueSelect = el("select", { id: "transfer-queue" }, el("option", { value: "" }, t("to_queue")),
    colleagues.queues.map((q) => el("option", { value: q.id }, q.labels[LANG] || q.id)));
  const reason = el("input", { id: "transfer-reason", placeholder: t("transfer_reason"), maxlength: 500 });
  const actions = mine() ? el("div", { class: "toolbar" },
    agentSelect, queueSelect, reason,
    el("button", { class: "secondary", id: "transfer", onclick: () => {
      const body = agentSelect.value ? { to_agent: agentSelect.value } : queueSelect.value ? { queue: queueSelect.value } : null;
      if (!body) return toast(t("choose"));
      act("POST", `/api/agent/conversations/${conversationId}/transfer`, { ...body, reason: reason.value }, t("transferred"));
    } }, t("transfer")),
    el("button", { class: "secondary", id: "hand-back", onclick: () =>
      act("POST", `/api/agent/conversations/${conversationId}/close`, { survey: false }, t("handed_back")) }, t("hand_back")),
    el("button", { id: "close-survey", onclick: () =>
      act("POST", `/api/agent/conversations/${conversationId}/close`, { survey: true }, t("closed_with_survey")) },
      t("close_survey"))) : null;
  return el("div", {},
    !mine() && c.state === "agent" ? el("p", { class: "muted", id: "read-only" }, t("not_yours", { agent: c.agent_id })) : null,
    text, el("div", { class: "toolbar" }, canned, el("label", {}, asNote, ` ${t("as_note")}`), send), actions);
}

function reasonText(reason) {
  const key = `why_${reason}`;
  return t(key) === key ? reason : t(key);
}

function list(items, render) {
  return items && items.length ? el("ul", {}, items.map((i) => el("li", {}, render(i)))) : el("p", { class: "muted" }, t("none"));
}

function sidebar() {
  const summary = data.bot_summary || {};
  const profile = data.profile;
  const customer = data.customer || {};
  return el("div", {},
    el("section", { class: "card", id: "bot-summary" }, el("h2", {}, t("bot_summary")),
      el("dl", { class: "kv" },
        el("dt", {}, t("reason")), el("dd", {}, summary.reason ? `${reasonText(summary.reason)} (${summary.reason})` : t("none")),
        el("dt", {}, t("intent")), el("dd", {}, summary.intent || t("none")),
        el("dt", {}, t("slots")), el("dd", {}, Object.entries(summary.slots || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("；") || t("none")))),
    el("section", { class: "card", id: "profile" }, el("h2", {}, t("profile")),
      el("dl", { class: "kv" }, el("dt", {}, t("customer_id")), el("dd", {}, customer.id || ""),
        el("dt", {}, t("name")), el("dd", {}, customer.name || ""),
        Object.entries(customer.identities || {}).map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("h3", {}, t("orders")), list(profile.orders, (o) => el("a", { href: `/console/orders/${o.order_id}` },
        `${o.order_id} · ${o.status} · ¥${o.amount} · ${(o.items || []).join("、")}`)),
      el("h3", {}, t("requests")), list(profile.aftersales_requests, (r) => `${r.id} · ${r.type} · ${r.status}${r.amount ? ` · ¥${r.amount}` : ""}`),
      el("h3", {}, t("tickets")), list(profile.tickets, (k) => el("a", { href: `/console/tickets/${k.id}` }, `${k.id} · ${k.type} · ${k.status}`)),
      el("h3", {}, t("intents")), list(profile.intents.slice(-8).reverse(), (i) => [channelBadge(i.channel), ` ${i.intent} — ${i.text}`])),
    el("section", { class: "card", id: "other-conversations" }, el("h2", {}, t("other_conversations")),
      list(data.conversations.filter((c) => c.id !== conversationId), (c) =>
        el("a", { href: `/console/conversations/${c.id}` }, channelBadge(c.channel), ` ${t(`state_${c.state}`)} · ${fmtTime(c.updated_at)}`))));
}

let composerNode = null;
let composerFor = null;

function render() {
  const c = data.conversation;
  const thread = el("div", { class: "thread", id: "thread" }, threadItems());
  // The composer survives reloads (what is typed, the note switch, focus) while the holder stays.
  const holder = `${c.state}|${c.agent_id || ""}`;
  if (composerFor !== holder) {
    composerNode = composer();
    composerFor = holder;
  }
  clear(app, el("div", { class: "grid two" },
    el("div", {},
      el("section", { class: "card" },
        el("h2", {}, channelBadge(c.channel), ` ${data.customer?.name || c.customer_id} · `,
          el("span", { id: "state", dataset: { state: c.state } }, t(`state_${c.state}`)),
          c.agent_id ? el("span", { class: "muted" }, ` · ${t("owner", { agent: c.agent_id })}`) : ""),
        presenceLine(), thread, composerNode)),
    sidebar()));
  thread.scrollTop = thread.scrollHeight;
}

function renderPresence() {
  const node = document.getElementById("presence");
  if (node) node.replaceWith(presenceLine());
}

async function load() {
  const focused = document.activeElement?.id === "reply";
  try {
    data = await api("GET", `/api/agent/conversations/${conversationId}/workspace?lang=${LANG}`);
  } catch (error) {
    clear(app, el("p", { class: "error", id: "load-error" }, t("failed", { detail: error.message })));
    return;
  }
  present = data.present;
  render();
  const reply = document.getElementById("reply");
  if (reply && focused) reply.focus();
}

const reloadSoon = debounced(load, 150);

document.addEventListener("DOMContentLoaded", async () => {
  live = new Live((event) => {
    if (event.type === "presence" && event.conversation_id === conversationId) {
      present = event.present;
      renderPresence();
    } else if (event.type === "message" || event.type === "note" || event.type === "conversation") {
      reloadSoon();
    }
  }, load);
  live.keep({ type: "subscribe", topic: "conversation", conversation_id: conversationId });
  colleagues = await api("GET", "/api/agent/agents").catch(() => colleagues);
  await load();
  setInterval(() => live.send({ type: "viewing", conversation_id: conversationId }), 15000);
  window.addEventListener("beforeunload", () => live.send({ type: "leave", conversation_id: conversationId }));
});
