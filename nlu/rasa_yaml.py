"""Reading and writing Rasa 3.x NLU YAML (``version: "3.1"``) without importing Rasa.

Understands both example forms (a ``|`` block of ``- text`` lines, and a list of ``text`` +
``metadata`` items) and the entity markup ``[span](entity)``, ``[span](entity:value)`` and
``[span]{"entity": "…", "value": "…"}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_MARKUP = re.compile(r"\[(?P<span>[^\]]+)\](?:\((?P<short>[^)]+)\)|(?P<json>\{[^}]*\}))")


class RasaDataError(ValueError):
    """The file is not Rasa NLU YAML this reader understands; the message says where."""


@dataclass(frozen=True, slots=True)
class AnnotatedEntity:
    entity: str
    value: str
    span: str


@dataclass(frozen=True, slots=True)
class Example:
    intent: str
    text: str
    """Plain text, markup removed."""
    entities: tuple[AnnotatedEntity, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


def strip_markup(annotated: str) -> tuple[str, tuple[AnnotatedEntity, ...]]:
    entities: list[AnnotatedEntity] = []

    def plain(match: re.Match[str]) -> str:
        span = match.group("span")
        if match.group("json"):
            try:
                spec = json.loads(match.group("json"))
            except json.JSONDecodeError as exc:
                raise RasaDataError(f"bad entity annotation {match.group(0)!r}: {exc}") from exc
            entities.append(AnnotatedEntity(str(spec["entity"]), str(spec.get("value", span)), span))
        else:
            name, _, value = match.group("short").partition(":")
            entities.append(AnnotatedEntity(name, value or span, span))
        return span

    return _MARKUP.sub(plain, annotated), tuple(entities)


def load_document(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RasaDataError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RasaDataError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise RasaDataError(f"{path}: expected a mapping with an `nlu:` list")
    return document


def read_examples(path: Path) -> list[Example]:
    """Every intent example in a Rasa NLU YAML file."""
    document = load_document(path)
    items = document.get("nlu") or []
    if not isinstance(items, list):
        raise RasaDataError(f"{path}: `nlu:` must be a list")
    examples: list[Example] = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or "intent" not in item:
            continue  # regex, lookup and synonym blocks
        intent = str(item["intent"])
        for raw, metadata in _raw_examples(item.get("examples"), path, number):
            text, entities = strip_markup(raw)
            examples.append(Example(intent, text, entities, metadata))
    return examples


def _raw_examples(value: Any, path: Path, number: int) -> Iterable[tuple[str, dict[str, Any]]]:
    if isinstance(value, str):
        for line in value.splitlines():
            line = line.strip()
            if line.startswith("- "):
                yield line[2:].strip(), {}
            elif line:
                raise RasaDataError(f"{path}: item {number}: example line without '- ': {line!r}")
    elif isinstance(value, list):
        for entry in value:
            if not isinstance(entry, dict) or "text" not in entry:
                raise RasaDataError(f"{path}: item {number}: each example needs `text:`")
            metadata = entry.get("metadata") or {}
            yield str(entry["text"]).strip(), dict(metadata) if isinstance(metadata, dict) else {}
    else:
        raise RasaDataError(f"{path}: item {number}: `examples:` must be a block or a list")


def render_training_yaml(examples: Iterable[tuple[str, list[str]]], other_items: list[dict[str, Any]]) -> str:
    """A training file: one ``|`` block per intent, plus regex/lookup items unchanged."""
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in examples:
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {text}" for text in texts)
    body = "\n".join(lines) + "\n"
    if other_items:
        body += yaml.safe_dump(other_items, allow_unicode=True, sort_keys=False)
    return body
