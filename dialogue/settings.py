"""Settings of the dialogue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from configuration import setting


@dataclass(frozen=True, slots=True)
class DialogueSettings:
    """The self-service dialogue: where its answers come from."""

    title: ClassVar[str] = "Dialogue"
    knowledge_path: Path | None = setting(
        None,
        env="KNOWLEDGE_BASE",
        help="the after-sales FAQ policy questions are answered from",
        default_text="dialogue/knowledge/aftersales.yml",
    )
