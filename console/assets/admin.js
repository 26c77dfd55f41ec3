// The admin page (/console/admin): staff accounts (list, create with a one-time token, edit roles,
// skill groups, capacity and disabled, set a console password), the audit chain check, and a
// read-only view of the configuration documents. The API checks manage_users / configure /
// view_audit on every call; sections the member lacks the permission for are not drawn.
"use strict";

addStrings({
  zh: {
    staff: "员工账号", id: "工号", name: "姓名", roles: "角色", skills: "技能组", capacity: "容量", online: "在线",
    open_tickets: "处理中工单", disabled: "已停用", yes: "是", no: "否", edit: "编辑", set_password: "设置密码",
    save: "保存", cancel: "取消", create: "新建账号", create_title: "新建员工账号",
    token_once: "该账号的 API 令牌（只显示这一次，请妥善保存）：", new_password: "新密码（至少 10 位）",
    password_set: "已为 {id} 设置密码，其已登录的会话全部退出（{n} 个）", saved: "已保存",
    audit: "审计日志校验", verify: "校验审计链", audit_ok: "审计链完整：{n} 条记录", audit_bad: "审计链异常",
    config: "配置（只读）", load: "查看", kind_tickets: "队列与路由", kind_sla: "SLA 时限", kind_rules: "自动审核规则",
    role_customer_service: "客服", role_reviewer: "审核专员", role_dispatcher: "调度", role_admin: "管理员",
    role_quality: "质检", version: "版本 {n}",
  },
  en: {
    staff: "Staff", id: "ID", name: "Name", roles: "Roles", skills: "Skill groups", capacity: "Capacity",
    online: "Online", open_tickets: "Open tickets", disabled: "Disabled", yes: "yes", no: "no", edit: "Edit",
    set_password: "Set password", save: "Save", cancel: "Cancel", create: "New account", create_title: "New staff account",
    token_once: "The account's API token (shown only this once; keep it safe):",
    new_password: "New password (10 characters or more)",
    password_set: "Password set for {id}; their signed-in sessions ended ({n})", saved: "Saved",
    audit: "Audit log check", verify: "Verify the audit chain", audit_ok: "The audit chain is intact: {n} entries",
    audit_bad: "The audit chain is broken", config: "Configuration (read-only)", load: "Show",
    kind_tickets: "Queues and routing", kind_sla: "SLA targets", kind_rules: "Decision rules",
    role_customer_service: "Customer service", role_reviewer: "Reviewer", role_dispatcher: "Dispatcher",
    role_admin: "Admin", role_quality: "Quality", version: "version {n}",
  },
});

const ROLES = ["customer_service", "reviewer", "dispatcher", "admin", "quality"];
const app = document.getElementById("app");
const staffCard = el("section", { class: "card", id: "admin-staff" });
const auditCard = el("section", { class: "card", id: "admin-audit" });
const configCard = el("section", { class: "card", id: "admin-config" });
let queues = [];

function failed(failure) {
  toast(t("failed", { detail: failure.message }));
}

function roleBadges(roles) {
  return roles.map((role) => el("span", { class: "badge role", dataset: { role } }, t(`role_${role}`)));
}

function checkboxes(name, options, chosen) {
  return el("div", { class: "checks" }, options.map((option) => el("label", {},
    el("input", { type: "checkbox", name, value: option.value, checked: chosen.includes(option.value) }), " ", option.label)));
}

function checked(form, name) {
  return [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((input) => input.value);
}

function skillOptions() {
  return queues.map((queue) => ({ value: queue, label: queue }));
}

// -- staff -----------------------------------------------------------------------------------

async function loadStaff() {
  try {
    const data = await api("GET", "/api/backoffice/staff");
    drawStaff(data.staff);
  } catch (failure) {
    clear(staffCard, el("h2", {}, t("staff")), el("p", { class: "error" }, failure.message));
  }
}

function drawStaff(staff) {
  const rows = staff.map((member) => {
    const detail = el("td", { colspan: "9", class: "row-form" });
    const formRow = el("tr", { class: "form-row", id: `form-row-${member.id}` }, detail);
    const row = el("tr", { id: `staff-${member.id}`, dataset: { staff: member.id } },
      el("td", {}, member.id), el("td", {}, member.name), el("td", {}, roleBadges(member.roles)),
      el("td", {}, member.skill_groups.join(", ")), el("td", {}, member.capacity),
      el("td", {}, member.online ? t("yes") : t("no")), el("td", {}, member.open_tickets ?? 0),
      el("td", {}, member.disabled ? el("span", { class: "badge breached" }, t("disabled")) : ""),
      el("td", {}, el("div", { class: "toolbar" },
        can("manage_users") ? el("button", { type: "button", class: "secondary", id: `edit-${member.id}`,
          onclick: () => editForm(detail, member) }, t("edit")) : null,
        can("manage_users") ? el("button", { type: "button", class: "secondary", id: `password-${member.id}`,
          onclick: () => passwordForm(detail, member) }, t("set_password")) : null)));
    return [row, formRow];
  });
  clear(staffCard,
    el("h2", {}, t("staff")),
    can("manage_users") ? el("div", { class: "toolbar" },
      el("button", { type: "button", id: "create-staff", onclick: createForm }, t("create"))) : null,
    el("div", { id: "create-holder" }),
    el("table", { id: "staff-table" },
      el("thead", {}, el("tr", {}, ["id", "name", "roles", "skills", "capacity", "online", "open_tickets", "disabled", ""]
        .map((key) => el("th", {}, key ? t(key) : "")))),
      el("tbody", {}, rows.flat())));
}

function editForm(holder, member) {
  const form = el("form", { class: "action-form", id: `edit-form-${member.id}` },
    el("label", {}, t("name"), el("input", { name: "name", value: member.name, required: true })),
    el("div", {}, t("roles"), checkboxes("roles", ROLES.map((r) => ({ value: r, label: t(`role_${r}`) })), member.roles)),
    el("div", {}, t("skills"), checkboxes("skills", skillOptions(), member.skill_groups)),
    el("label", {}, t("capacity"), el("input", { name: "capacity", type: "number", min: "0", max: "500",
      value: String(member.capacity) })),
    el("label", {}, el("input", { name: "disabled", type: "checkbox", checked: member.disabled }), " ", t("disabled")),
    el("div", { class: "toolbar" }, el("button", { type: "submit" }, t("save")),
      el("button", { type: "button", class: "secondary", onclick: () => clear(holder) }, t("cancel"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = {
      name: form.elements.name.value.trim(), roles: checked(form, "roles"), skill_groups: checked(form, "skills"),
      capacity: Number(form.elements.capacity.value), disabled: form.elements.disabled.checked,
    };
    try {
      await api("PATCH", `/api/backoffice/staff/${encodeURIComponent(member.id)}`, changes);
      toast(t("saved"));
      await loadStaff();
    } catch (failure) {
      failed(failure);
    }
  });
  clear(holder, form);
}

function passwordForm(holder, member) {
  const message = el("p", { class: "error", id: `password-error-${member.id}` });
  const input = el("input", { name: "password", type: "password", autocomplete: "new-password", required: true,
    id: `new-password-${member.id}`, placeholder: t("new_password") });
  const form = el("form", { class: "action-form", id: `password-form-${member.id}` },
    el("label", {}, t("new_password"), input), message,
    el("div", { class: "toolbar" }, el("button", { type: "submit", id: `password-submit-${member.id}` }, t("save")),
      el("button", { type: "button", class: "secondary", onclick: () => clear(holder) }, t("cancel"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const done = await api("POST", `/api/backoffice/staff/${encodeURIComponent(member.id)}/password`,
        { password: input.value });
      clear(holder, el("p", { class: "ok-note", id: `password-done-${member.id}` },
        t("password_set", { id: member.id, n: done.sessions_ended })));
      // Our own password: this browser's session ended with the others.
      if (member.id === BOOT.me.id) location.reload();
    } catch (failure) {
      message.textContent = failure.message; // the server says why (too short, contains the ID …)
    }
  });
  clear(holder, form);
  input.focus();
}

function createForm() {
  const holder = document.getElementById("create-holder");
  const form = el("form", { class: "action-form card", id: "create-form" },
    el("h2", {}, t("create_title")),
    el("label", {}, t("id"), el("input", { name: "id", required: true, pattern: "[a-z0-9][a-z0-9_.\\-]{0,63}" })),
    el("label", {}, t("name"), el("input", { name: "name", required: true })),
    el("div", {}, t("roles"), checkboxes("roles", ROLES.map((r) => ({ value: r, label: t(`role_${r}`) })), [])),
    el("div", {}, t("skills"), checkboxes("skills", skillOptions(), [])),
    el("label", {}, t("capacity"), el("input", { name: "capacity", type: "number", min: "0", max: "500", value: "10" })),
    el("div", { class: "toolbar" }, el("button", { type: "submit", id: "create-submit" }, t("save")),
      el("button", { type: "button", class: "secondary", onclick: () => clear(holder) }, t("cancel"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await api("POST", "/api/backoffice/staff", {
        id: form.elements.id.value.trim(), name: form.elements.name.value.trim(), roles: checked(form, "roles"),
        skill_groups: checked(form, "skills"), capacity: Number(form.elements.capacity.value),
      });
      clear(holder, el("div", { class: "card token-once", id: "created-token" },
        el("p", {}, t("token_once")), el("code", {}, created.token)));
      const table = await api("GET", "/api/backoffice/staff");
      const keep = holder.firstChild;
      drawStaff(table.staff);
      document.getElementById("create-holder").append(keep);
    } catch (failure) {
      failed(failure);
    }
  });
  clear(holder, form);
}

// -- audit and configuration -------------------------------------------------------------------

function drawAudit() {
  const result = el("div", { id: "audit-result" });
  clear(auditCard, el("h2", {}, t("audit")),
    el("button", { type: "button", id: "verify-audit", onclick: async () => {
      try {
        const report = await api("GET", "/api/backoffice/audit/verify");
        clear(result,
          el("p", { class: report.ok ? "ok-note" : "error", dataset: { ok: report.ok } },
            report.ok ? t("audit_ok", { n: report.entries }) : t("audit_bad")),
          el("pre", { class: "json" }, JSON.stringify(report, null, 2)));
      } catch (failure) {
        clear(result, el("p", { class: "error" }, failure.message));
      }
    } }, t("verify")), result);
}

function drawConfig() {
  const output = el("div", { id: "config-output" });
  const kind = el("select", { id: "config-kind" },
    ["tickets", "sla", "rules"].map((k) => el("option", { value: k }, t(`kind_${k}`))));
  const show = async () => {
    try {
      const data = await api("GET", `/api/backoffice/config/${kind.value}`);
      clear(output, el("p", { class: "muted" }, t("version", { n: data.version })),
        el("pre", { class: "json", id: "config-json" }, JSON.stringify(data.document, null, 2)));
    } catch (failure) {
      clear(output, el("p", { class: "error" }, failure.message));
    }
  };
  clear(configCard, el("h2", {}, t("config")),
    el("div", { class: "toolbar" }, kind, el("button", { type: "button", id: "config-show", onclick: show }, t("load"))),
    output);
}

document.addEventListener("DOMContentLoaded", async () => {
  clear(app, staffCard, el("div", { class: "grid two" }, configCard, auditCard));
  if (can("configure")) {
    // The skill groups to offer are the configured queues.
    try {
      queues = Object.keys((await api("GET", "/api/backoffice/config/tickets")).document.queues || {});
    } catch (failure) {
      failed(failure);
    }
    drawConfig();
  } else {
    configCard.remove();
  }
  if (can("view_audit")) drawAudit();
  else auditCard.remove();
  await loadStaff();
});
