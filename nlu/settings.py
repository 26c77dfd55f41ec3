"""Settings of the NLU: which Rasa servers, how long to wait, how sure to be."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from configuration import setting

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class NluSettings:
    """Understanding customers: the Rasa servers and the confidence threshold."""

    title: ClassVar[str] = "NLU"
    rasa_urls: tuple[str, ...] = setting(
        (),
        env="RASA_URL",
        help="one or more Rasa servers, comma-separated (round-robin; a failed server is taken out for 5 s, "
        "then probed with `/status`)",
        default_text="train if needed and start `rasa run --enable-api` from `.venv-rasa` on loopback",
    )
    rasa_servers: int = setting(
        1, env="RASA_SERVERS", minimum=1,
        help="without `RASA_URL`: how many embedded Rasa servers to start (each serves one request at a time, ~0.9 GB)",
    )  # fmt: skip
    rasa_token: str | None = setting(
        None, env="RASA_TOKEN", secret=True, help="the Rasa servers' auth token", default_text="random per start"
    )
    timeout_seconds: float = setting(
        5.0, env="NLU_TIMEOUT_SECONDS", minimum=0.1, help="after this the turn falls back (keywords, a menu, a human)"
    )
    confidence_threshold: float = setting(
        0.5,
        env="NLU_CONFIDENCE_THRESHOLD",
        minimum=0.0,
        help="below this intent confidence the dialogue asks to rephrase (`run.py nlu eval` calibrates it)",
    )
    models_dir: Path = REPO_ROOT / "models"
    """Trained models (not a variable: `make setup` trains here)."""
