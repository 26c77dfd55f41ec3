// The review queue (质检复核): one item at a time, bot answers ("AI回答的好不好") or agents'
// corrections ("人工纠正的对不对"); score it, optionally name the right intent and comment, and
// the next item comes. Progress is the caller's scored items of all items in the last 30 days.
"use strict";

addStrings({
  zh: {
    v_title: "质检复核", v_bot: "AI 回答", v_agent: "人工纠正", v_progress: "已评 {scored} / 共 {total}",
    v_customer: "客户说", v_intent: "识别意图", v_confidence: "置信度", v_bot_reply: "机器人回复",
    v_agent_reply: "客服回复", v_reason: "转人工原因", v_question_bot: "AI 回答得好不好？",
    v_question_agent: "人工纠正得对不对？", v_good: "好", v_bad: "不好", v_correct: "对", v_incorrect: "不对",
    v_right_intent: "正确的意图（可选）", v_same: "（与识别一致 / 不填）", v_comment: "备注（可选）",
    v_done: "这一类都评完了，谢谢！", v_saved: "已保存", v_skip: "跳过",
  },
  en: {
    v_title: "Review queue", v_bot: "Bot answers", v_agent: "Agent corrections", v_progress: "Scored {scored} of {total}",
    v_customer: "Customer", v_intent: "Intent read", v_confidence: "confidence", v_bot_reply: "Bot reply",
    v_agent_reply: "Agent reply", v_reason: "Hand-off reason", v_question_bot: "Was the bot's answer good?",
    v_question_agent: "Was the agent's correction right?", v_good: "Good", v_bad: "Bad", v_correct: "Correct",
    v_incorrect: "Incorrect", v_right_intent: "Right intent (optional)", v_same: "(as read / none)",
    v_comment: "Comment (optional)", v_done: "Nothing left to score here. Thank you!", v_saved: "Saved", v_skip: "Skip",
  },
});

// The intents a reviewer may name as the right one: tasks, asking for a person, and "none of these".
const REVIEW_INTENTS = INTENTS.filter((i) => ["request", "handoff", "none"].includes(i.kind)).map((i) => i.name);
const review = { kind: "bot_answer", queue: null, index: 0 };

function intentName(intent) {
  if (!intent) return t("none");
  const label = t(`intent_${intent}`);
  return label === `intent_${intent}` ? intent : label;
}

function renderReviewShell() {
  const tab = (kind, label) => el("button", { type: "button", id: `tab-${kind}`,
    class: review.kind === kind ? "active" : null, onclick: () => { review.kind = kind; renderReviewShell(); loadQueue(); } },
  t(label));
  clear(document.getElementById("app"), el("h1", { class: "page-title" }, t("v_title")),
    el("div", { class: "tabs" }, tab("bot_answer", "v_bot"), tab("agent_correction", "v_agent")),
    el("p", { id: "review-progress", class: "muted" }),
    el("section", { class: "card", id: "review-item" }));
}

async function loadQueue() {
  try {
    review.queue = await api("GET", `/api/console/reviews/queue?kind=${review.kind}&limit=20`);
  } catch (error) {
    clear(document.getElementById("review-item"), el("p", { class: "error" }, t("failed", { detail: error.message })));
    return;
  }
  review.index = 0;
  showItem();
}

function showItem() {
  const queue = review.queue;
  clear(document.getElementById("review-progress"), t("v_progress", { scored: queue.scored, total: queue.total }));
  const item = queue.items[review.index];
  const box = document.getElementById("review-item");
  if (!item) {
    clear(box, el("p", { id: "review-done" }, t("v_done")));
    document.body.dataset.loaded = "true";
    return;
  }
  const facts = review.kind === "bot_answer"
    ? [el("dt", {}, t("v_customer")), el("dd", { class: "review-customer" }, item.customer_text),
      el("dt", {}, t("v_intent")), el("dd", { class: "review-intent" }, intentName(item.intent),
        item.confidence != null ? ` (${t("v_confidence")} ${Number(item.confidence).toFixed(2)})` : ""),
      el("dt", {}, t("v_bot_reply")), el("dd", {}, item.bot_replies.map((r) => el("div", { class: "bubble outbound" }, r)))]
    : [el("dt", {}, t("v_customer")), el("dd", {}, item.customer_texts.map((r) => el("div", { class: "bubble inbound" }, r))),
      el("dt", {}, t("v_intent")), el("dd", { class: "review-intent" }, intentName(item.intent)),
      el("dt", {}, t("v_reason")), el("dd", {}, item.handoff_reason || ""),
      el("dt", {}, t("v_agent_reply")), el("dd", {}, el("div", { class: "bubble agent" }, item.agent_text),
        el("span", { class: "muted" }, item.agent))];
  const intent = el("select", { id: "review-intent" }, el("option", { value: "" }, t("v_same")),
    REVIEW_INTENTS.map((i) => el("option", { value: i }, intentName(i))));
  const comment = el("textarea", { id: "review-comment", maxlength: "1000" });
  const verdicts = queue.verdicts.map((verdict, n) => el("button", {
    type: "button", id: `verdict-${verdict}`, class: n === 0 ? "verdict good" : "verdict danger",
    onclick: () => score(item, verdict, intent.value, comment.value),
  }, t(`v_${verdict}`)));
  clear(box, el("p", { class: "muted" }, channelBadge(item.channel), " ", fmtTime(item.at)),
    el("dl", { class: "kv", dataset: { item: item.item_id } }, facts),
    el("h2", {}, t(review.kind === "bot_answer" ? "v_question_bot" : "v_question_agent")),
    el("div", { class: "toolbar" }, verdicts,
      el("button", { type: "button", class: "secondary", id: "review-skip", onclick: () => { review.index += 1; showItem(); } },
        t("v_skip"))),
    el("label", { class: "review-field" }, t("v_right_intent"), intent),
    el("label", { class: "review-field" }, t("v_comment"), comment));
  document.body.dataset.loaded = "true";
}

async function score(item, verdict, rightIntent, comment) {
  const body = { item_id: item.item_id, verdict };
  if (rightIntent) body.right_intent = rightIntent;
  if (comment.trim()) body.comment = comment.trim();
  try {
    await api("POST", "/api/console/reviews", body);
  } catch (error) {
    toast(t("failed", { detail: error.message }));
    return;
  }
  toast(t("v_saved"));
  review.queue.items.splice(review.index, 1);
  review.queue.scored += 1;
  if (!review.queue.items.length) await loadQueue();
  else showItem();
}

document.addEventListener("DOMContentLoaded", () => {
  renderReviewShell();
  loadQueue();
});
