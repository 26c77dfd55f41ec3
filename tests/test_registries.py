"""One place per concept: the intent table and the channel registry are the only lists of intents
and channels, and they agree with Rasa's domain, the dialogue's flows, the backoffice's queues
and ticket types, the phone menu and the settings."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import intents
from backoffice.config import TicketsConfig, load_default
from backoffice.lifecycle import TicketType
from dialogue.flows import FLOW_CLASSES
from gateway.channel_registry import CHANNELS, identity_kinds
from gateway.settings import Settings
from ivr.menu import SCENARIOS

REPO = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("channels", "dialogue", "backoffice", "gateway", "ivr", "nlu", "quality", "console", "shop", "store",
               "media_ocr", "run.py")  # fmt: skip


def test_the_intent_table_and_rasas_domain_name_the_same_intents() -> None:
    domain = yaml.safe_load((REPO / "nlu" / "project" / "domain.yml").read_text(encoding="utf-8"))
    assert set(domain["intents"]) == set(intents.names())


def test_every_flow_serves_tasks_of_the_table() -> None:
    served = [intent for flow in FLOW_CLASSES for intent in flow.intents]
    assert len(served) == len(set(served)), "an intent is served by two flows"
    for name in served:
        found = intents.intent(name)
        assert found is not None and found.kind == "request", name
    unserved = set(intents.names("request")) - set(served)
    assert unserved == set(), f"tasks no flow serves: {unserved}"


def test_the_facts_name_things_that_exist() -> None:
    tickets = load_default("tickets")
    assert isinstance(tickets, TicketsConfig)
    queues = set(tickets.queues)
    for item in intents.all_intents().values():
        if item.ticket_type is not None:
            TicketType(item.ticket_type)
        if item.skill_group is not None:
            assert item.skill_group in queues, f"{item.name}: no queue {item.skill_group}"
        if item.ivr_scenario is not None:
            assert item.ivr_scenario in SCENARIOS, f"{item.name}: no phone scenario {item.ivr_scenario}"


def test_every_channel_has_a_section_labels_and_an_identity() -> None:
    names = [spec.name for spec in CHANNELS]
    assert len(names) == len(set(names))
    settings = Settings()
    for spec in CHANNELS:
        assert {"zh", "en"} <= set(spec.label), spec.name
        assert spec.identity in identity_kinds()
        assert isinstance(settings.channel(spec.name), spec.settings)
    assert [spec.name for spec in CHANNELS if spec.always_on] == ["rest"]


def _windows(path: Path, size: int = 3) -> list[tuple[int, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(n + 1, "\n".join(lines[n : n + size])) for n in range(len(lines))]


def _listings(names: tuple[str, ...], at_least: int, allowed: set[str]) -> list[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    words = re.compile(r"(?<![\w])(" + alternatives + r")(?![\w])")
    found = []
    for top in SOURCE_DIRS:
        root = REPO / top
        files = [root] if root.is_file() else [*root.rglob("*.py"), *root.rglob("*.js")]
        for path in files:
            relative = path.relative_to(REPO).as_posix()
            if relative in allowed or "node_modules" in relative or "/vendor/" in relative:
                continue
            for line, text in _windows(path):
                if len(set(words.findall(text))) >= at_least:
                    found.append(f"{relative}:{line}")
                    break
    return found


def test_no_module_keeps_its_own_list_of_intents() -> None:
    tasks = intents.names("request")
    # After-sales request types (shop/aftersales.py) share some names with intents but are their own list.
    assert _listings(tasks, 4, allowed={"shop/aftersales.py"}) == []


def test_no_module_keeps_its_own_list_of_channels() -> None:
    names = tuple(spec.name for spec in CHANNELS if spec.name not in ("email", "app"))  # also ordinary words
    # The quality demo's scripted conversations name channels as data, not as a list of them.
    assert _listings(names, 3, allowed={"gateway/channel_registry.py", "quality/demo.py"}) == []
