// Shared by every console page: boot data, strings (zh default, en), the JSON API client with the
// CSRF header, a small DOM builder (text only: nothing from the server becomes HTML), time
// formatting, the header, and the live websocket with reconnects.
"use strict";

const BOOT = JSON.parse(document.getElementById("boot").textContent);
const LANG = BOOT.lang === "en" ? "en" : "zh";
const STRINGS = { zh: {}, en: {} };

function addStrings(table) {
  for (const lang of ["zh", "en"]) Object.assign(STRINGS[lang], table[lang] || {});
}

function t(key, vars) {
  let text = STRINGS[LANG][key] ?? STRINGS.zh[key] ?? key;
  for (const [name, value] of Object.entries(vars || {})) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

addStrings({
  zh: {
    brand: "售后客服工作台", inbox: "工作台", quality: "质检看板", refunds: "退款报表", review: "质检复核", admin: "管理",
    ocr_review: "照片复核", analytics: "问题分析",
    sign_out: "退出", live_on: "实时连接", live_off: "连接中断，正在重连", failed: "操作失败：{detail}",
    minutes: "{n} 分钟", hours: "{n} 小时", days: "{n} 天", just_now: "刚刚", none: "无",
  },
  en: {
    brand: "After-sales console", inbox: "Inbox", quality: "Quality", refunds: "Refunds", review: "Review", admin: "Admin",
    ocr_review: "Photo review", analytics: "Problems",
    sign_out: "Sign out", live_on: "Live", live_off: "Disconnected, reconnecting", failed: "Failed: {detail}",
    minutes: "{n} min", hours: "{n} h", days: "{n} d", just_now: "just now", none: "none",
  },
});

// Channel and intent names come from the server's registries (in the page's boot data).
const CHANNELS = BOOT.channels.map((c) => c.name);
const INTENTS = BOOT.intents;
for (const lang of ["zh", "en"]) {
  for (const channel of BOOT.channels) STRINGS[lang][`channel_${channel.name}`] = channel.label[lang];
  for (const intent of BOOT.intents) STRINGS[lang][`intent_${intent.name}`] = intent.label[lang];
}

// Every API error is {"error": {"code", "message", "details"}}: the message is for people, the
// code (stable, snake_case) for the script.
class ApiFailure extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") options.headers["X-CSRF-Token"] = BOOT.csrf;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401) {
    location.href = `/console/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new ApiFailure(401, "unauthorized", "signed out");
  }
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : {};
  if (!response.ok) {
    const error = data.error || {};
    throw new ApiFailure(response.status, error.code || "error", error.message || response.statusText, error.details);
  }
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function channelBadge(channel) {
  return el("span", { class: `badge channel-${channel}`, dataset: { channel } }, t(`channel_${channel}`));
}

function fmtTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(LANG === "en" ? "en-GB" : "zh-CN", { hour12: false });
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return t("just_now");
  if (seconds < 3600) return t("minutes", { n: Math.floor(seconds / 60) });
  if (seconds < 86400) return t("hours", { n: (seconds / 3600).toFixed(1) });
  return t("days", { n: (seconds / 86400).toFixed(1) });
}

function ageSince(iso) {
  return iso ? Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000) : null;
}

// Chart.js (loaded on pages with charts): one chart per canvas id, replaced when redrawn.
const CHARTS = {};
function drawChart(id, config) {
  CHARTS[id]?.destroy();
  config.options = { responsive: true, maintainAspectRatio: false, animation: false, ...config.options };
  CHARTS[id] = new Chart(document.getElementById(id), config);
  return CHARTS[id];
}

// Run fn once, `ms` after the last of a burst of calls (live events arrive in bursts).
function debounced(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

function toast(text) {
  const node = el("div", { class: "toast", role: "status" }, text);
  document.body.append(node);
  setTimeout(() => node.remove(), 4000);
}

function can(permission) {
  return BOOT.me.permissions.includes(permission);
}

function renderHeader() {
  const nav = el("nav", {});
  for (const item of BOOT.nav) {
    nav.append(el("a", { href: item.href, class: item.page === BOOT.page ? "current" : null, id: `nav-${item.page}` },
      t(item.page)));
  }
  const dot = el("span", { class: "live-dot", id: "live-dot", title: t("live_off") });
  const language = el("select", { id: "language", "aria-label": "language" },
    el("option", { value: "zh", selected: LANG === "zh" }, "中文"),
    el("option", { value: "en", selected: LANG === "en" }, "English"));
  language.addEventListener("change", async () => {
    await api("PATCH", "/api/backoffice/me", { language: language.value });
    const url = new URL(location.href);
    url.searchParams.delete("lang");
    location.href = url.toString();
  });
  const signOut = el("form", { method: "post", action: "/console/logout" },
    el("input", { type: "hidden", name: "csrf_token", value: BOOT.csrf }),
    el("button", { type: "submit", id: "sign-out" }, t("sign_out")));
  clear(document.getElementById("top"),
    el("span", { class: "brand" }, t("brand")), nav,
    el("span", { class: "me" }, dot, el("span", { id: "me-name" }, BOOT.me.name), language, signOut));
}

// The live websocket: every page subscribes to what it shows; on reconnect pages reload.
class Live {
  constructor(onEvent, onReconnect) {
    this.onEvent = onEvent;
    this.onReconnect = onReconnect;
    this.pending = [];
    this.delay = 500;
    this.everConnected = false;
    this.connect();
  }
  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new WebSocket(`${scheme}://${location.host}/console/ws`);
    this.socket.addEventListener("open", () => {
      this.delay = 500;
      document.getElementById("live-dot")?.classList.add("on");
      for (const message of this.pending) this.socket.send(JSON.stringify(message));
      if (this.everConnected && this.onReconnect) this.onReconnect();
      this.everConnected = true;
    });
    this.socket.addEventListener("message", (event) => this.onEvent(JSON.parse(event.data)));
    this.socket.addEventListener("close", () => {
      document.getElementById("live-dot")?.classList.remove("on");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    });
  }
  // Sent now and again after every reconnect (subscriptions, presence).
  keep(message) {
    this.pending = this.pending.filter((m) => m.type !== message.type || m.topic !== message.topic);
    this.pending.push(message);
    this.send(message);
  }
  send(message) {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}

document.addEventListener("DOMContentLoaded", renderHeader);
