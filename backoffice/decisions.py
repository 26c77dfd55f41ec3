"""Automatic decisions: the first enabled rule whose conditions all hold approves or rejects a
ticket, and says why, condition by condition. Anything no rule decides waits for a reviewer.

Pure evaluation over the facts the ticket desk gathers; the rules are configuration
(``backoffice/config/decision_rules.yml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from backoffice.config import DecisionRule, RulesConfig
from backoffice.lifecycle import TicketType


@dataclass(frozen=True, slots=True)
class DecisionFacts:
    type: TicketType
    category: str
    reason: str | None = None
    amount: float = 0.0
    days_since_delivery: float | None = None
    customer_tier: str | None = None
    item_categories: Sequence[str] = ()
    claims_in_window: int = 0
    """The customer's other money/goods tickets in the history window."""
    has_evidence: bool = False
    flags: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    rule: str
    outcome: str
    """approve or reject"""
    explanation: tuple[str, ...] = field(default_factory=tuple)


def _check(rule: DecisionRule, facts: DecisionFacts) -> tuple[bool, list[str]]:
    """Whether every condition holds, and each one in words."""
    when = rule.when
    held: list[str] = []
    checks: list[tuple[bool, str]] = []
    if when.types is not None:
        checks.append((facts.type in when.types, f"type {facts.type.value}"))
    if when.categories is not None:
        checks.append((facts.category in when.categories, f"category {facts.category}"))
    if when.reasons is not None:
        checks.append((facts.reason in when.reasons, f"reason {facts.reason}"))
    if when.amount_max is not None:
        checks.append((facts.amount <= when.amount_max, f"amount {facts.amount:.2f} ≤ {when.amount_max:g}"))
    if when.amount_min is not None:
        checks.append((facts.amount >= when.amount_min, f"amount {facts.amount:.2f} ≥ {when.amount_min:g}"))
    if when.days_since_delivery_max is not None:
        days = facts.days_since_delivery
        checks.append(
            (days is not None and days <= when.days_since_delivery_max,
             f"delivered {days:.1f} days ago ≤ {when.days_since_delivery_max}" if days is not None else "delivered")
        )  # fmt: skip
    if when.customer_tiers is not None:
        tier = (facts.customer_tier or "").lower()
        checks.append((tier in [t.lower() for t in when.customer_tiers], f"customer tier {tier or 'none'}"))
    if when.excluded_item_categories is not None:
        excluded = set(facts.item_categories) & set(when.excluded_item_categories)
        checks.append((not excluded, "no excluded item category" if not excluded else f"excluded {sorted(excluded)}"))
    if when.max_claims_in_window is not None:
        checks.append(
            (facts.claims_in_window <= when.max_claims_in_window,
             f"{facts.claims_in_window} earlier claims ≤ {when.max_claims_in_window}")
        )  # fmt: skip
    if when.requires_evidence:
        checks.append((facts.has_evidence, "photo evidence"))
    if when.without_flags is not None:
        raised = set(facts.flags) & set(when.without_flags)
        checks.append((not raised, "no history flags" if not raised else f"flagged {sorted(raised)}"))
    for ok, words in checks:
        if not ok:
            return False, held
        held.append(words)
    return True, held


def decide(rules: RulesConfig, facts: DecisionFacts) -> Decision | None:
    for rule in rules.rules:
        if not rule.enabled:
            continue
        ok, explanation = _check(rule, facts)
        if ok:
            return Decision(rule.id, rule.decide, tuple(explanation))
    return None
