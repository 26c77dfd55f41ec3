// An order as an agent acts on it (/console/orders/{order_id}): its items and state, its
// after-sales requests with both timelines (the agent's steps with actors and notes, the stages
// the customer sees), its pick-ups and follow-up tasks, and a form per action the order's state
// allows (intercept, redirect, cancel and refund, resend, compensate, approve a return or an
// exchange with a pick-up). The server checks the roles; a refusal is shown as it comes back.
"use strict";

addStrings({
  zh: {
    o_title: "订单 {id}", o_status: "状态", o_items: "商品", o_requests: "售后单", o_pickups: "上门取件",
    o_followups: "跟进任务", o_agent_view: "处理记录", o_customer_view: "客户看到", o_actions: "操作",
    o_customer: "客户编号", o_conversation: "会话编号", o_reason: "原因", o_address: "新地址", o_sku: "商品编码",
    o_quantity: "数量", o_amount: "金额", o_form: "方式", o_date: "取件日期", o_slot: "时段", o_spec: "新规格",
    o_done: "已提交：{id}", a_intercept: "拦截包裹", a_redirect: "改派地址", a_cancel_refund: "取消并退款",
    a_resend: "补发", a_compensate: "补偿", a_approve_return: "同意退货（上门取件）", a_approve_exchange: "同意换货（上门取件）",
    f_refund: "原路退款", f_store_credit: "无门槛券",
  },
  en: {
    o_title: "Order {id}", o_status: "Status", o_items: "Items", o_requests: "After-sales requests", o_pickups: "Pick-ups",
    o_followups: "Follow-up tasks", o_agent_view: "Steps", o_customer_view: "What the customer sees",
    o_actions: "Act", o_customer: "Customer ID", o_conversation: "Conversation ID", o_reason: "Reason",
    o_address: "New address", o_sku: "SKU", o_quantity: "Quantity", o_amount: "Amount", o_form: "As",
    o_date: "Pick-up date", o_slot: "Slot", o_spec: "New size/colour", o_done: "Submitted: {id}",
    a_intercept: "Intercept", a_redirect: "Redirect", a_cancel_refund: "Cancel and refund", a_resend: "Resend",
    a_compensate: "Compensate", a_approve_return: "Approve return (pick-up)", a_approve_exchange: "Approve exchange (pick-up)",
    f_refund: "refund", f_store_credit: "store credit",
  },
});

const ORDER_ID = BOOT.params.order_id;
const SLOTS = ["09:00-12:00", "12:00-14:00", "14:00-18:00", "18:00-21:00"];
const FIELDS = {
  intercept: [],
  redirect: [["address", "text"]],
  cancel_refund: [],
  resend: [["sku", "sku"], ["quantity", "number"]],
  compensate: [["amount", "number"], ["form", "form"]],
  approve_return: [["sku", "sku"], ["date", "date"], ["slot", "slot"]],
  approve_exchange: [["sku", "sku"], ["date", "date"], ["slot", "slot"], ["spec", "text"]],
};
const PATHS = { cancel_refund: "cancel-refund", approve_return: "approve-return", approve_exchange: "approve-return" };

function input(name, kind, order) {
  if (kind === "sku") return el("select", { name }, order.items.map((i) => el("option", { value: i.sku }, `${i.name} (${i.sku})`)));
  if (kind === "slot") return el("select", { name }, SLOTS.map((s) => el("option", { value: s }, s)));
  if (kind === "form") return el("select", { name }, ["refund", "store_credit"].map((f) => el("option", { value: f }, t(`f_${f}`))));
  return el("input", { name, type: kind, step: kind === "number" ? "any" : null, required: name !== "spec" });
}

function actionForm(action, order) {
  const form = el("form", { class: "card order-action", id: `action-${action}` },
    el("h3", {}, t(`a_${action}`)),
    el("label", {}, t("o_customer"), " ", el("input", { name: "customer_id" })),
    el("label", {}, t("o_conversation"), " ", el("input", { name: "conversation_id" })),
    FIELDS[action].map(([name, kind]) => el("label", {}, t(`o_${name}`), " ", input(name, kind, order))),
    el("label", {}, t("o_reason"), " ", el("input", { name: "reason", required: true })),
    el("button", { type: "submit" }, t(`a_${action}`)),
    el("span", { class: "result" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const [name, value] of new FormData(form).entries()) if (value !== "") body[name] = value;
    if (body.quantity) body.quantity = Number(body.quantity);
    if (body.amount) body.amount = Number(body.amount);
    if (action === "approve_exchange") body.exchange = true;
    const result = form.querySelector(".result");
    try {
      const done = await api("POST", `/api/backoffice/orders/${ORDER_ID}/${PATHS[action] || action}`, body);
      await loadOrder();
      toast(t("o_done", { id: done.request?.id || done.followup_id }));
    } catch (error) {
      clear(result, t("failed", { detail: error.message }));
    }
  });
  return form;
}

function requestCard(request) {
  return el("div", { class: "card request", dataset: { request: request.id } },
    el("h3", {}, `${request.id} · ${request.type} · ${request.status}`),
    el("div", { class: "grid cols" },
      el("div", {}, el("h4", {}, t("o_agent_view")),
        el("ol", {}, request.agent_timeline.map((s) =>
          el("li", {}, `${fmtTime(s.at)} ${s.label} · ${s.actor}${s.note ? ` · ${s.note}` : ""}`)))),
      el("div", {}, el("h4", {}, t("o_customer_view")),
        el("ol", {}, request.customer_timeline.map((s) => el("li", {}, `${fmtTime(s.at)} ${s.label}`))))));
}

async function loadOrder() {
  const view = await api("GET", `/api/backoffice/orders/${ORDER_ID}?lang=${LANG}`);
  const order = view.order;
  clear(document.getElementById("app"),
    el("h1", { class: "page-title" }, t("o_title", { id: order.order_id })),
    el("p", {}, `${t("o_status")}: ${order.status} · ¥${Number(order.amount).toFixed(2)} · ${order.address}`),
    el("section", { class: "card" }, el("h2", {}, t("o_items")),
      el("ul", {}, order.items.map((i) => el("li", {}, `${i.name} (${i.sku}) ×${i.quantity} ¥${i.price}`)))),
    el("section", {}, el("h2", {}, t("o_requests")), view.requests.map(requestCard)),
    el("section", { class: "card" }, el("h2", {}, t("o_pickups")),
      el("ul", {}, view.pickups.map((p) => el("li", {},
        `${p.pickup_id} ${p.date} ${p.window_start}-${p.window_end} · ${p.status} · ${p.location_precision || ""}`)))),
    el("section", { class: "card" }, el("h2", {}, t("o_followups")),
      el("ul", {}, view.followups.map((f) => el("li", {}, `${f.kind} · ${f.status}${f.result ? ` · ${f.result}` : ""}`)))),
    el("section", {}, el("h2", {}, t("o_actions")), view.actions.map((a) => actionForm(a, order))));
}

document.addEventListener("DOMContentLoaded", () => loadOrder().catch((error) => toast(t("failed", { detail: error.message }))));
