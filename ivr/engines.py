"""Which speech engine serves which language, from configuration; each model loaded once.

``IVR_ENGINE_ZH`` / ``IVR_ENGINE_EN`` (… per language) name the engine: ``vosk`` (the default, the
design's choice; needs ``VOSK_MODEL_<LANG>``) or ``whisper`` (faster-whisper base from the
installed wheels). A missing model fails here, at start, with the variable and path in the message.

Must not know Twilio or the call flow.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ivr.recognizer import EngineUnavailable, SpeechEngine
from ivr.whisper_engine import default_model_dir

ENGINE_NAMES = ("vosk", "whisper")
DEFAULT_ENGINE = "vosk"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    engines: dict[str, str] = field(default_factory=dict)
    """Language → engine name; languages not listed use :data:`DEFAULT_ENGINE`."""
    vosk_models: dict[str, Path] = field(default_factory=dict)
    """Language → Vosk model directory."""
    whisper_model_dir: Path = field(default_factory=default_model_dir)
    whisper_threads: int = 2
    """CTranslate2 threads per decode."""
    whisper_workers: int = 2
    """Utterances decoded at the same time (one per core by default)."""

    def engine_for(self, language: str) -> str:
        return self.engines.get(language, DEFAULT_ENGINE)


def build_engine(language: str, config: EngineConfig) -> SpeechEngine:
    name = config.engine_for(language)
    variable = f"VOSK_MODEL_{language.upper()}"
    if name == "vosk":
        path = config.vosk_models.get(language)
        if path is None:
            raise EngineUnavailable(
                f"IVR_ENGINE_{language.upper()}=vosk needs {variable}: the directory of a Vosk model for "
                f"'{language}' (nothing is downloaded), or set IVR_ENGINE_{language.upper()}=whisper"
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
