"""The after-sales ticket service's figures: classification accuracy on labelled customer
descriptions (look-alike cases on purpose), and the cost of the ticket operations on the
embedded store.

1. Classification: every case of ``bench/data/ticket_classification.yml`` through the NLU
   normaliser (as the dialogue hands it over) and the classifier; category and type accuracy,
   and the look-alike pairs' confusion.
2. Operations on nx-27017 (a fresh database in a temporary directory, the demo orders, eight
   online reviewers): opening tickets (classification, history checks, rules, auto-assignment,
   audit entry, alerts), a reviewer's claim → in review → approve, one sweep over all open
   tickets, and the audit check over the whole log. p50/p95 per operation.

    .venv/bin/python bench/backoffice.py [--tickets 500] [--decisions 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backoffice import Backoffice, TicketStatus, TicketType
from backoffice.audit import AuditLog
from backoffice.classify import classify
from backoffice.permissions import Role
from nlu.normalize import default_normaliser
from shop import MongoOrderService, load_orders_file
from shop.aftersales import AfterSalesService
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "bench" / "data" / "ticket_classification.yml"
LOOK_ALIKES = {"product_damage", "packaging_damage", "late_delivery", "lost_parcel", "quality", "not_as_described"}


def classification_figures() -> dict[str, Any]:
    cases = yaml.safe_load(CASES.read_text(encoding="utf-8"))["cases"]
    normaliser = default_normaliser()
    category_right = type_right = typed = 0
    confusion: Counter[tuple[str, str]] = Counter()
    misses: list[str] = []
    for case in cases:
        text = normaliser.normalise(case["text"]).text
        declared = TicketType(case["declared"]) if case.get("declared") else None
        found = classify(text=text, declared_type=declared)
        if found.category == case["category"]:
            category_right += 1
        else:
            misses.append(f"{case['text']} → {found.category} (expected {case['category']})")
        if case["category"] in LOOK_ALIKES:
            confusion[(case["category"], found.category)] += 1
        if "type" in case:
            typed += 1
            type_right += found.type.value == case["type"]
    return {
        "cases": len(cases),
        "category_accuracy": category_right / len(cases),
        "typed": typed,
        "type_accuracy": type_right / typed if typed else 0.0,
        "confusion": confusion,
        "misses": misses,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def operation_figures(tickets: int, decisions: int) -> dict[str, Any]:
    cases = yaml.safe_load(CASES.read_text(encoding="utf-8"))["cases"]
    with tempfile.TemporaryDirectory(prefix="bench-backoffice-") as tmp:
        mongo = EmbeddedMongo(Path(tmp))
        await mongo.start()
        store = ConversationStore.from_uri(mongo.uri, "bench")
        try:
            await store.ensure_indexes()
            orders = MongoOrderService(store.db)
            await orders.ensure_indexes()
            await orders.upsert(load_orders_file(ROOT / "shop" / "demo_orders.json"))
            audit = AuditLog(store.db)
            aftersales = AfterSalesService(store.db, auditor=audit.request_steps)
            backoffice = Backoffice(store, orders=orders, aftersales=aftersales, audit=audit)
            await backoffice.ensure_indexes()
            queues = ["logistics", "product", "finance", "complaints", "general"]
            for n in range(8):
                await backoffice.staff.create(
                    f"agent{n}", name=f"agent {n}", roles=[Role.REVIEWER], skill_groups=[queues[n % len(queues)]],
                    capacity=500, online=True,
                )  # fmt: skip
            opened: list[float] = []
            ids: list[str] = []
            order_ids = ["202611150001", "202611020003", "202611190006", None]
            for i in tqdm(range(tickets), desc="open tickets", unit="ticket", file=sys.stderr):
                case = cases[i % len(cases)]
                started = time.perf_counter()
                ticket, _ = await backoffice.desk.open(
                    type=TicketType(case["declared"]) if case.get("declared") else None,
                    customer_id=f"customer{i % (tickets // 3 + 1)}",
                    summary=case["text"], conversation_id=None, channel="rest",
                    order_id=order_ids[i % len(order_ids)] if i % 7 else f"9{i:011d}", amount=float(20 + i % 400),
                )  # fmt: skip
                opened.append(time.perf_counter() - started)
                ids.append(ticket.id)
            decided: list[float] = []
            members = {m.id: m.actor() for m in await backoffice.staff.all()}
            candidates = [t for t in await backoffice.desk.find({"status": TicketStatus.ASSIGNED.value}, limit=10_000)]
            for ticket in tqdm(candidates[:decisions], desc="review and decide", unit="ticket", file=sys.stderr):
                actor = members[ticket.assignee or ""]
                started = time.perf_counter()
                await backoffice.workflow.move(actor, ticket.id, TicketStatus.IN_REVIEW)
                target = TicketStatus.APPROVED if ticket.type.value != "complaint" else TicketStatus.RESOLVED
                await backoffice.workflow.move(actor, ticket.id, target, reason="bench")
                decided.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = await backoffice.monitor.sweep()
            sweep_seconds = time.perf_counter() - started
            started = time.perf_counter()
            verification = await backoffice.audit.verify()
            verify_seconds = time.perf_counter() - started
            statuses = Counter(t.status.value for t in await backoffice.desk.find({}, limit=100_000))
            return {
                "opened": opened,
                "decided": decided,
                "sweep_seconds": sweep_seconds,
                "open_tickets": sum(n for s, n in statuses.items() if s != "closed"),
                "sweep": report,
                "verify_seconds": verify_seconds,
                "audit_entries": verification.entries,
                "audit_ok": verification.ok,
                "statuses": statuses,
            }
        finally:
            await store.close()
            await mongo.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--decisions", type=int, default=100)
    args = parser.parse_args()
    figures = classification_figures()
    print(f"classification on {figures['cases']} labelled descriptions ({CASES.relative_to(ROOT)}):")
    print(f"  category accuracy  {figures['category_accuracy']:.1%}")
    print(f"  type accuracy      {figures['type_accuracy']:.1%} of {figures['typed']} without a declared type")
    print("  look-alike confusion (expected → found: count):")
    for (expected, found), count in sorted(figures["confusion"].items()):
        print(f"    {expected:18} → {found:18} {count}")
    for miss in figures["misses"]:
        print(f"  miss: {miss}")
    load = os.getloadavg()[0]
    ops = asyncio.run(operation_figures(args.tickets, args.decisions))
    print(f"\noperations on the embedded nx-27017 (load average {load:.1f} at start):")
    print("| operation | count | p50 ms | p95 ms |")
    print("|---|---|---|---|")
    for name, values in (("open a ticket", ops["opened"]), ("claimed ticket: in review + decision", ops["decided"])):
        if values:
            print(
                f"| {name} | {len(values)} | {statistics.median(values) * 1000:.1f} | "
                f"{percentile(values, 0.95) * 1000:.1f} |"
            )
    print(f"sweep over {ops['open_tickets']} open tickets: {ops['sweep_seconds']:.2f} s ({ops['sweep']})")
    print(f"audit verify over {ops['audit_entries']} entries: {ops['verify_seconds']:.2f} s, ok={ops['audit_ok']}")
    print(f"statuses: {dict(ops['statuses'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
