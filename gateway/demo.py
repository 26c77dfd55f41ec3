"""Secrets ``make run`` makes once per installation so every capability works with no variable
set: kept in ``var/demo-secrets.json`` (readable by its owner only), used only where the
environment leaves the secret unset, and only by ``serve --demo-staff`` and the CLI commands
that help try the demo (``run.py rest customer-token``)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

FILE_NAME = "demo-secrets.json"


def demo_secret(var_dir: Path, name: str) -> str:
    """The installation's demo secret called ``name``, made on first use."""
    path = var_dir / FILE_NAME
    stored: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if name not in stored:
        stored[name] = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(stored, out, indent=2)
    return stored[name]
