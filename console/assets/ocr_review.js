// The photo review queue (照片复核): OCR readings a person must look at — a doubtful field, a
// failed check, a return slip that does not match its request. Each shows the photo with the
// doubtful fields outlined (personal data blurred), the document type, the fields with the
// reasons, and a box per field: "correct" saves the typed value (who and why are recorded), and a
// reading whose doubts are all settled leaves the queue. Data: GET /api/ocr/review.
"use strict";

addStrings({
  zh: {
    o_title: "照片复核", o_empty: "没有待复核的照片。", o_reasons: "需要复核的原因", o_save: "更正", o_confirm: "确认无误",
    o_why: "更正原因", o_why_default: "人工核对照片", o_saved: "已保存", o_source: "来源", o_type: "单据类型",
    type_return_slip: "退货单", type_waybill: "快递面单", type_vat_invoice: "增值税发票", o_reload: "刷新",
  },
  en: {
    o_title: "Photo review", o_empty: "No photos wait for review.", o_reasons: "Why it needs a look", o_save: "Correct",
    o_confirm: "Confirm as read", o_why: "Why", o_why_default: "checked on the photo", o_saved: "Saved",
    o_source: "Source", o_type: "Document", type_return_slip: "return slip", type_waybill: "courier waybill",
    type_vat_invoice: "VAT invoice", o_reload: "Reload",
  },
});

function sourceText(source) {
  const parts = [];
  if (source.request_id) parts.push(`request ${source.request_id}`);
  if (source.ticket_id) parts.push(`ticket ${source.ticket_id}`);
  if (source.channel) parts.push(source.channel);
  if (source.upload) parts.push(source.upload);
  return parts.join(" · ") || "—";
}

function fieldRow(result, name, value) {
  const input = el("input", { type: "text", value: value === null || value === undefined ? "" : String(value),
    name, "aria-label": name });
  const why = el("input", { type: "text", placeholder: t("o_why"), value: t("o_why_default"), class: "why" });
  const doubtful = (result.doubtful_fields || []).includes(name);
  const save = async (typed) => {
    try {
      await api("POST", `/api/ocr/${result.id}/corrections`, { field: name, value: typed,
        why: why.value || t("o_why_default") });
      toast(t("o_saved"));
      loadReviews();
    } catch (error) {
      toast(t("failed", { detail: error.message }));
    }
  };
  return el("tr", { class: doubtful ? "doubtful" : null, dataset: { field: name } },
    el("th", {}, name), el("td", {}, input), el("td", {}, why),
    el("td", {}, el("button", { type: "button", class: "save", onclick: () => save(input.value.trim() === "" ? null
      : (name === "quantity" && /^\d+$/.test(input.value.trim()) ? Number(input.value.trim()) : input.value.trim())) },
    doubtful ? t("o_save") : t("o_confirm"))));
}

function reviewCard(result) {
  const fields = Object.entries(result.fields || {});
  return el("article", { class: "card ocr-review", dataset: { result: result.id } },
    el("div", { class: "ocr-pair" },
      el("a", { href: result.image_url, target: "_blank", rel: "noopener" },
        el("img", { src: result.image_url, alt: result.image })),
      el("div", {},
        el("p", {}, el("strong", {}, `${t("o_type")}: `), t(`type_${result.document_type}`),
          el("span", { class: "muted" }, ` · ${t("o_source")}: ${sourceText(result.source || {})} · ${fmtTime(result.created_at)}`)),
        el("h3", {}, t("o_reasons")),
        el("ul", { class: "reasons" }, (result.review_reasons || []).map((r) => el("li", {}, r))),
        el("table", { class: "ocr-fields-table" }, el("tbody", {}, fields.map(([name, value]) => fieldRow(result, name, value)))))));
}

async function loadReviews() {
  const box = document.getElementById("o-list");
  let data;
  try {
    data = await api("GET", "/api/ocr/review?limit=50");
  } catch (error) {
    clear(box, el("p", { class: "error" }, t("failed", { detail: error.message })));
    return;
  }
  clear(box, data.results.length ? data.results.map(reviewCard) : el("p", { class: "muted", id: "o-empty" }, t("o_empty")));
  document.body.dataset.loaded = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  clear(document.getElementById("app"), el("h1", { class: "page-title" }, t("o_title")),
    el("div", { class: "toolbar" }, el("button", { type: "button", id: "o-reload", onclick: loadReviews }, t("o_reload"))),
    el("section", { id: "o-list" }));
  loadReviews();
});
