"""Gateway settings, from the environment with embedded defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from nlu.understanding import DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_TIMEZONE

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    mongodb_uri: str | None = None
    """A real MongoDB (replica set or sharded cluster); unset starts the embedded nx-27017."""
    mongodb_database: str = "aftersales"
    rasa_urls: tuple[str, ...] = ()
    """Rasa servers started with ``--enable-api``; empty starts one from ``.venv-rasa``."""
    rasa_token: str | None = None
    nlu_timeout_seconds: float = 5.0
    nlu_confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    """Intent confidence below which the dialogue asks to rephrase (``run.py nlu eval`` calibrates it)."""
    timezone: str = DEFAULT_TIMEZONE
    """The shop's time zone: what 明天 and 周六 mean."""
    var_dir: Path = REPO_ROOT / "var"
    models_dir: Path = REPO_ROOT / "models"
    ocr_engine: str = "combined"
    """Photo OCR engine: combined, rapidocr or tesseract."""
    ocr_workers: int = 1
    """OCR worker processes (each about 300 MB and one CPU core while reading)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        urls = tuple(u.strip() for u in env.get("RASA_URL", "").split(",") if u.strip())
        return cls(
            host=env.get("GATEWAY_HOST", defaults.host),
            port=int(env.get("GATEWAY_PORT", defaults.port)),
            mongodb_uri=env.get("MONGODB_URI") or None,
            mongodb_database=env.get("MONGODB_DATABASE", defaults.mongodb_database),
            rasa_urls=urls,
            rasa_token=env.get("RASA_TOKEN") or None,
            nlu_timeout_seconds=float(env.get("NLU_TIMEOUT_SECONDS", defaults.nlu_timeout_seconds)),
            nlu_confidence_threshold=float(env.get("NLU_CONFIDENCE_THRESHOLD", defaults.nlu_confidence_threshold)),
            timezone=env.get("SHOP_TIMEZONE", defaults.timezone),
            var_dir=Path(env.get("GATEWAY_VAR_DIR", defaults.var_dir)),
            ocr_engine=env.get("OCR_ENGINE", defaults.ocr_engine),
            ocr_workers=int(env.get("OCR_WORKERS", defaults.ocr_workers)),
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
