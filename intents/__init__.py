"""The intent vocabulary: every intent the NLU returns and its facts, in one table.

Owns ``intents/intents.yml`` (labels for staff and customers, whether the bot can finish it, the
skill group, ticket type and phone scenario it maps to) and reading it. Every layer that names
intents — the dialogue's flows and replies, the backoffice's ticket types and queues, the phone
menu, the console, the quality reports — reads them here; ``tests/test_intents.py`` fails when
this table, Rasa's ``domain.yml`` and the flows disagree.

Must not know: how intents are recognised, or what any layer does with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TABLE = Path(__file__).resolve().parent / "intents.yml"
KINDS = ("request", "conversation", "handoff", "none")
FALLBACK = "nlu_fallback"
"""Not an intent the model learns: what the NLU says below its confidence threshold."""


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    kind: str
    label: Mapping[str, str]
    topic: Mapping[str, str]
    self_service: bool = False
    skill_group: str | None = None
    ticket_type: str | None = None
    ivr_scenario: str | None = None

    def label_in(self, language: str) -> str:
        return self.label.get(language) or self.label["zh"]

    def topic_in(self, language: str) -> str:
        return self.topic.get(language) or self.topic["zh"]


def _read(path: Path) -> dict[str, Intent]:
    rows: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    intents: dict[str, Intent] = {}
    for name, row in rows.items():
        if row.get("kind") not in KINDS:
            raise ValueError(f"{path}: {name}.kind must be one of {', '.join(KINDS)}")
        for text in ("label", "topic"):
            if not isinstance(row.get(text), dict) or not row[text].get("zh") or not row[text].get("en"):
                raise ValueError(f"{path}: {name}.{text} needs zh and en")
        intents[str(name)] = Intent(name=str(name), **row)
    return intents


@cache
def all_intents() -> Mapping[str, Intent]:
    return _read(TABLE)


def intent(name: str) -> Intent | None:
    return all_intents().get(name)


def names(kind: str | None = None) -> tuple[str, ...]:
    return tuple(i.name for i in all_intents().values() if kind is None or i.kind == kind)


def label(name: str, language: str) -> str:
    """Staff's name for the intent (the name itself if unknown)."""
    found = intent(name)
    return found.label_in(language) if found else name


def topic(name: str, language: str) -> str:
    """The customers' word for the intent's task (the name itself if unknown)."""
    found = intent(name)
    return found.topic_in(language) if found else name


__all__ = ["FALLBACK", "Intent", "all_intents", "intent", "label", "names", "topic"]
