"""Settings of the staff console."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from configuration import setting


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The agents' and reviewers' web console."""

    title: ClassVar[str] = "Console"
    canned_replies_path: Path | None = setting(
        None, env="CANNED_REPLIES", help="agents' canned replies (YAML)", default_text="console/canned_replies.yml"
    )
    cookie_secure: bool = setting(
        True,
        env="CONSOLE_COOKIE_SECURE",
        help="the session cookie is Secure (browsers keep it on http://127.0.0.1 and localhost too); switch off "
        "only for plain-http hosts other than those",
    )
