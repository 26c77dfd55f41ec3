"""Validate the story drafts in this folder against tests/stories/FORMAT.md and print counts.

usage: python3 validate_stories.py [dir]
"""
import collections
import glob
import os
import re
import sys

import yaml

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))

ACTIONS = {"greet", "goodbye", "thank", "answer", "ask_order", "ask_item", "ask", "verify",
           "confirm", "submitted", "refused", "existing", "withdrawn", "changed", "urged",
           "inquiry", "complaint", "handoff", "clarify", "cancelled"}
WRITE_ACTIONS = {"submitted", "withdrawn", "changed", "urged", "inquiry", "complaint"}
SLOTS = {"address", "delivery_time", "size", "reason", "photo", "invoice_title", "tax_id",
         "email", "amount", "request", "pickup"}  # pickup: named in the brief, not in FORMAT.md
VARIETIES = {"zh-Hans", "zh-Hant-TW", "zh-Hant-HK", "en"}
CHANNELS = {"rest", "app", "telegram", "sms", "email"}
ORDER_STATUS = {"paid", "picking", "shipped", "delivered", "cancelled"}
REQ_TYPES = {"refund", "return_refund", "exchange", "resend", "compensation",
             "price_protection", "invoice"}
REQ_STATUS = {"applied", "reviewing", "approved", "awaiting_return", "payment_processing",
              "completed", "rejected", "cancelled"}
CATEGORIES_KNOWN = {"fresh", "customised", "hygiene", "digital"}
FOLLOWUP_KINDS = {"warehouse_expedite", "courier_expedite", "courier_inquiry"}
CHANGE_FIELDS = {"address", "delivery_slot", "status"}
STORY_KEYS = {"story", "tags", "customer", "now", "orders", "requests", "steps", "records"}
ORDER_KEYS = {"status", "paid_days_ago", "picking_days_ago", "shipped_days_ago",
              "delivered_days_ago", "last_scan", "items", "amount", "address"}
ITEM_KEYS = {"name", "sku", "price", "quantity", "category", "opened"}
EXPECT_KEYS = {"actions", "about", "slot", "says", "not_says", "variety", "no_write"}
ABOUT_KEYS = {"order", "sku", "request", "request_type"}
RECORD_KEYS = {"requests", "requests_count", "order_changes", "tickets", "tickets_count",
               "followups", "untouched", "handed_off", "priority_handoff"}
REC_REQ_KEYS = {"type", "order", "sku", "status_in", "withdrawn", "urges"}

VARIETY_TAGS = {"mandarin", "cantonese", "traditional", "english", "northeastern",
                "southwestern", "wu", "mixed"}
FAILURE_TAGS = {"wrong_target", "leaked_prompt", "follow_up", "early_details", "duplicate",
                "withdraw", "promise", "language", "confirmation", "verification",
                "multi_ask", "product_reference", "cross_channel"}
TASK_TAGS = {"order_status", "stalled", "change_address", "change_delivery_time", "refund",
             "return_refund", "exchange", "resend", "compensation", "price_protection",
             "complaint", "urge", "invoice", "policy_question", "handoff", "request_status",
             "withdraw_request", "change_request"}
OTHER_TAGS = {"angry", "evidence", "excluded_category", "policy", "cancelled",
              "channel_app", "channel_sms", "channel_telegram", "channel_email"}
VARIETY_OF_TAG = {"mandarin": "zh-Hans", "northeastern": "zh-Hans", "southwestern": "zh-Hans",
                  "wu": "zh-Hans", "mixed": "zh-Hans", "cantonese": "zh-Hant-HK",
                  "traditional": "zh-Hant-TW", "english": "en"}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")
TAX_ID = re.compile(r"(?<![0-9A-Za-z])[0-9A-Z]{15}(?:[0-9A-Z]{3})?(?![0-9A-Za-z])")

errors, warnings = [], []
counts = {k: collections.Counter() for k in ("task", "variety", "failure", "other", "file",
                                             "channel", "action")}
titles = collections.Counter()
total = 0


def err(where, msg):
    errors.append(f"{where}: {msg}")


def check_placeholders(where, text, names):
    for m in PLACEHOLDER.findall(text):
        if m not in names:
            err(where, f"placeholder {{{m}}} names nothing defined")


for path in sorted(glob.glob(os.path.join(DIR, "*.yml"))):
    fname = os.path.basename(path)
    try:
        doc = yaml.safe_load(open(path, encoding="utf-8"))
    except yaml.YAMLError as e:
        err(fname, f"YAML error {e}")
        continue
    if not isinstance(doc, dict) or doc.get("version") != "1" or not isinstance(doc.get("stories"), list):
        err(fname, 'must be {version: "1", stories: [...]}')
        continue
    for si, st in enumerate(doc["stories"]):
        total += 1
        counts["file"][fname] += 1
        w = f"{fname}#{si + 1}"
        if not isinstance(st, dict) or not isinstance(st.get("story"), str):
            err(w, "story without a title")
            continue
        w = f"{fname}#{si + 1} '{st['story'][:40]}'"
        titles[st["story"]] += 1
        for k in st:
            if k not in STORY_KEYS:
                err(w, f"unknown key {k}")
        tags = st.get("tags") or []
        if not tags:
            err(w, "no tags")
        for t in tags:
            if t in TASK_TAGS:
                counts["task"][t] += 1
            elif t in VARIETY_TAGS:
                counts["variety"][t] += 1
            elif t in FAILURE_TAGS:
                counts["failure"][t] += 1
            elif t in OTHER_TAGS:
                counts["other"][t] += 1
            else:
                err(w, f"unknown tag {t}")
        vtags = [t for t in tags if t in VARIETY_TAGS]
        if len(vtags) != 1:
            err(w, f"needs exactly one variety tag, has {vtags}")
        if not any(t in TASK_TAGS for t in tags):
            err(w, "no task tag")
        if not any(t in FAILURE_TAGS for t in tags):
            warnings.append(f"{w}: no failure-kind tag")
        cust = st.get("customer") or {}
        for k in cust:
            if k not in {"channel", "signed_in"}:
                err(w, f"customer: unknown key {k}")
        base_channel = cust.get("channel", "rest")
        if base_channel not in CHANNELS:
            err(w, f"bad channel {base_channel}")
        counts["channel"][base_channel] += 1
        signed_in = cust.get("signed_in", True)

        orders = st.get("orders") or {}
        if not orders:
            err(w, "no orders")
        skus = {}
        for on, o in orders.items():
            ow = f"{w} order {on}"
            for k in o:
                if k not in ORDER_KEYS:
                    err(ow, f"unknown key {k}")
            s = o.get("status")
            if s not in ORDER_STATUS:
                err(ow, f"bad status {s}")
            items = o.get("items") or []
            if not items:
                err(ow, "no items")
            skus[on] = set()
            for it in items:
                for k in it:
                    if k not in ITEM_KEYS:
                        err(ow, f"item unknown key {k}")
                if not all(k in it for k in ("name", "sku", "price")):
                    err(ow, f"item needs name, sku, price: {it}")
                skus[on].add(it.get("sku"))
                if it.get("opened") and it.get("category") != "hygiene":
                    warnings.append(f"{ow}: opened on a non-hygiene item")
            paid = o.get("paid_days_ago", 3)
            for k in ("picking_days_ago", "shipped_days_ago", "delivered_days_ago"):
                if k in o and o[k] > paid:
                    err(ow, f"{k} later than payment")
            if s == "shipped":
                if "shipped_days_ago" not in o:
                    err(ow, "shipped without shipped_days_ago")
                if "last_scan" not in o:
                    warnings.append(f"{ow}: shipped without last_scan")
            if s == "delivered" and "delivered_days_ago" not in o:
                err(ow, "delivered without delivered_days_ago")
            if s in {"paid", "picking"} and ("shipped_days_ago" in o or "last_scan" in o):
                err(ow, "not shipped but has shipping data")
            if "shipped_days_ago" in o and "delivered_days_ago" in o and o["delivered_days_ago"] > o["shipped_days_ago"]:
                err(ow, "delivered before shipped")
            if "last_scan" in o and set(o["last_scan"]) != {"hours_ago", "place"}:
                err(ow, "last_scan needs hours_ago and place")

        reqs = st.get("requests") or {}
        for rn, r in reqs.items():
            rw = f"{w} request {rn}"
            if r.get("type") not in REQ_TYPES:
                err(rw, f"bad type {r.get('type')}")
            if r.get("order") not in orders:
                err(rw, f"order {r.get('order')} not defined")
            elif "sku" in r and r["sku"] not in skus[r["order"]]:
                err(rw, f"sku {r['sku']} not on order {r['order']}")
            if r.get("status") not in REQ_STATUS:
                err(rw, f"bad status {r.get('status')}")
            if rn in orders:
                err(rw, "request name clashes with an order name")
        names = set(orders) | set(reqs)

        steps = st.get("steps") or []
        if not (2 <= len(steps) <= 8):
            err(w, f"{len(steps)} steps (want 2-8)")
        written = set()
        for i, step in enumerate(steps):
            sw = f"{w} step {i + 1}"
            if not isinstance(step, dict) or not isinstance(step.get("user"), str):
                err(sw, "user line missing or not a string")
                continue
            if not isinstance(step.get("expect"), dict):
                err(sw, "expect missing")
                continue
            for k in step:
                if k not in {"user", "expect", "channel"}:
                    err(sw, f"unknown key {k}")
            if step.get("channel", base_channel) not in CHANNELS:
                err(sw, f"bad channel {step.get('channel')}")
            if "channel" in step:
                counts["channel"][step["channel"] + " (step)"] += 1
            check_placeholders(sw, step["user"], names)
            if TWELVE_DIGITS.search(step["user"]):
                err(sw, "literal 12-digit number in a user line: use {A}")
            for tid in TAX_ID.findall(step["user"]):
                if not re.search(r"\d", tid):
                    continue
            ex = step["expect"]
            for k in ex:
                if k not in EXPECT_KEYS:
                    err(sw, f"expect: unknown key {k}")
            acts = ex.get("actions", [])
            if not isinstance(acts, list):
                err(sw, "actions must be a list")
                acts = []
            for a in acts:
                if a not in ACTIONS:
                    err(sw, f"action {a} not in the vocabulary")
                counts["action"][a] += 1
            if "slot" in ex:
                if "ask" not in acts:
                    err(sw, "slot without ask")
                if ex["slot"] not in SLOTS:
                    err(sw, f"bad slot {ex['slot']}")
            if "ask" in acts and "slot" not in ex:
                warnings.append(f"{sw}: ask without slot")
            about = ex.get("about") or {}
            for k in about:
                if k not in ABOUT_KEYS:
                    err(sw, f"about: unknown key {k}")
            if "order" in about and about["order"] not in orders:
                err(sw, f"about.order {about['order']} not defined")
            if "request" in about:
                if about["request"] not in reqs:
                    err(sw, f"about.request {about['request']} not defined")
                elif "order" in about and reqs[about["request"]]["order"] != about["order"]:
                    err(sw, "about.request is on another order")
            if "sku" in about:
                if "order" not in about:
                    err(sw, "about.sku without about.order")
                elif about["sku"] not in skus.get(about["order"], set()):
                    err(sw, f"about.sku {about['sku']} not on order {about['order']}")
            if "request_type" in about and about["request_type"] not in REQ_TYPES:
                err(sw, f"bad request_type {about['request_type']}")
            if "variety" in ex and ex["variety"] not in VARIETIES:
                err(sw, f"bad variety {ex['variety']}")
            if "variety" in ex and vtags and VARIETY_OF_TAG[vtags[0]] != ex["variety"]:
                warnings.append(f"{sw}: variety {ex['variety']} differs from story tag {vtags[0]}")
            for k in ("says", "not_says"):
                v = ex.get(k, [])
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    err(sw, f"{k} must be a list of strings")
                    continue
                for x in v:
                    check_placeholders(sw, x, names)
            if ex.get("no_write") and set(acts) & WRITE_ACTIONS:
                err(sw, "no_write with a write action")
            if set(acts) & WRITE_ACTIONS and "order" in about:
                written.add(about["order"])
            if "submitted" in acts or "withdrawn" in acts or "changed" in acts:
                prev = steps[i - 1]["expect"].get("actions", []) if i else []
                if "confirm" not in prev:
                    err(sw, f"{acts} not preceded by a confirm")
            if "confirm" in acts and not ex.get("no_write"):
                warnings.append(f"{sw}: confirm step without no_write")
            if not signed_in and i == 0 and set(acts) & (WRITE_ACTIONS | {"confirm"}):
                err(sw, "not signed in: action before verify")

        rec = st.get("records") or {}
        for k in rec:
            if k not in RECORD_KEYS:
                err(w, f"records: unknown key {k}")
        for r in rec.get("requests", []):
            for k in r:
                if k not in REC_REQ_KEYS:
                    err(w, f"records.requests unknown key {k}")
            if r.get("type") not in REQ_TYPES:
                err(w, f"records.requests bad type {r.get('type')}")
            if r.get("order") not in orders:
                err(w, f"records.requests order {r.get('order')} not defined")
            elif "sku" in r and r["sku"] not in skus[r["order"]]:
                err(w, f"records.requests sku {r['sku']} not on order {r['order']}")
            for s in r.get("status_in", []):
                if s not in REQ_STATUS:
                    err(w, f"records.requests bad status {s}")
        for c in rec.get("order_changes", []):
            if c.get("order") not in orders:
                err(w, f"order_changes order {c.get('order')} not defined")
            if c.get("field") not in CHANGE_FIELDS:
                err(w, f"order_changes bad field {c.get('field')}")
        for t in rec.get("tickets", []):
            if "order" in t and t["order"] not in orders:
                err(w, f"tickets order {t['order']} not defined")
        for f in rec.get("followups", []):
            if f.get("kind") not in FOLLOWUP_KINDS:
                err(w, f"followups bad kind {f.get('kind')}")
            if f.get("order") not in orders:
                err(w, f"followups order {f.get('order')} not defined")
        untouched = rec.get("untouched", [])
        for u in untouched:
            if u not in orders:
                err(w, f"untouched {u} not defined")
        touched = set(written)
        touched |= {r.get("order") for r in rec.get("requests", [])
                    if r.get("order") and not any(
                        rr["order"] == r["order"] and rr["type"] == r["type"] for rr in reqs.values())}
        touched |= {c.get("order") for c in rec.get("order_changes", [])}
        touched |= {t.get("order") for t in rec.get("tickets", []) if t.get("order")}
        touched |= {f.get("order") for f in rec.get("followups", [])}
        clash = touched & set(untouched)
        if clash:
            err(w, f"untouched orders are written on: {sorted(clash)}")
        if "requests_count" in rec:
            if rec["requests_count"] < len(reqs):
                err(w, "requests_count below the pre-existing requests")
        if rec.get("priority_handoff") and not rec.get("handed_off"):
            warnings.append(f"{w}: priority_handoff without handed_off: true")
        if not rec:
            warnings.append(f"{w}: no records")

for t, n in titles.items():
    if n > 1:
        err("titles", f"duplicate story title {t}")

print(f"stories: {total}")
for k in ("file", "variety", "task", "failure", "other", "channel", "action"):
    print(f"\n{k}:")
    for name, n in sorted(counts[k].items(), key=lambda x: (-x[1], x[0])):
        print(f"  {name:24} {n}")
mins = dict(mandarin=30, cantonese=12, traditional=10, english=12, northeastern=6,
            southwestern=6, wu=5, mixed=2)
for v, m in mins.items():
    if counts["variety"][v] < m:
        errors.append(f"variety {v}: {counts['variety'][v]} < {m}")
for f in FAILURE_TAGS:
    if counts["failure"][f] == 0:
        errors.append(f"failure kind {f} not covered")
if total < 90:
    errors.append(f"only {total} stories (< 90)")
print("\nwarnings:")
for x in warnings:
    print("  " + x)
print("\nerrors:")
for x in errors:
    print("  " + x)
sys.exit(1 if errors else 0)
