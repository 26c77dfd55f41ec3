"""Vosk (Kaldi) streaming recognition: the engine of a language whose model is configured (the design's choice).

Owns loading a Vosk model from a configured directory (``VOSK_MODEL_ZH``, ``VOSK_MODEL_EN`` …;
never ``vosk.Model(lang=…)``, which downloads), one ``KaldiRecognizer`` per utterance fed 16 kHz
PCM chunk by chunk (``AcceptWaveform`` → ``PartialResult`` while the caller speaks, ``Result`` at
Vosk's own endpoint, ``FinalResult`` when the silence timeout cuts first), and the grammar mode:
when a prompt expects a small set of answers the recogniser is built with that phrase list (plus
``[unk]`` where the model has it, so other speech does not turn into a menu choice); a number is
decoded with a grammar of the digit words (Vosk's grammar accepts any sequence of its phrases).

Must not know Twilio or the call flow.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ivr.audio import ASR_RATE, Samples, to_pcm16
from ivr.digits import digit_words
from ivr.recognizer import EngineUnavailable, Hypothesis, RecognitionStream, SpeechEngine

UNKNOWN_WORD = "[unk]"

_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


def load_vosk_model(path: Path, variable: str = "VOSK_MODEL") -> Any:
    """The model in ``path`` (loaded once per process and shared by all calls' recognisers)."""
    if not path.is_dir():
        raise EngineUnavailable(
            f"{variable}={path}: no such directory. Put a Vosk model there (e.g. vosk-model-cn-0.22 for "
            f"Chinese); nothing is downloaded at run time"
        )
    if not (path / "am").is_dir() and not (path / "final.mdl").exists():
        raise EngineUnavailable(f"{variable}={path}: not a Vosk model directory (no am/ inside)")
    try:
        import vosk
    except ImportError as exc:  # pragma: no cover - vosk is a pinned dependency
        raise EngineUnavailable("the vosk package is not installed") from exc
    resolved = path.resolve()
    with _models_lock:
        if resolved not in _models:
            vosk.SetLogLevel(-1)
            _models[resolved] = vosk.Model(str(resolved))
        return _models[resolved]


class VoskEngine(SpeechEngine):
    name: ClassVar[str] = "vosk"
    streaming: ClassVar[bool] = True

    def __init__(self, language: str, model_path: Path, *, variable: str = "VOSK_MODEL") -> None:
        super().__init__(language)
        self.model_path = model_path
        self.model = load_vosk_model(model_path, variable)
        self.has_unknown = self.model.vosk_model_find_word(UNKNOWN_WORD) >= 0

    def open_digits(self) -> RecognitionStream:
        """The digit grammar: the language's digit words (those in the model's word list) in any
        order and number (Vosk's grammar loops over its phrases), plus ``[unk]`` where the model has it."""
        known = [word for word in digit_words(self.language) if self.model.vosk_model_find_word(word) >= 0]
        return self.open(known or digit_words(self.language))

    def open(self, phrases: Sequence[str] = ()) -> RecognitionStream:
        import vosk

        if phrases:
            grammar = list(dict.fromkeys(p.strip() for p in phrases if p.strip()))
            if self.has_unknown:
                grammar.append(UNKNOWN_WORD)
            recognizer = vosk.KaldiRecognizer(self.model, ASR_RATE, json.dumps(grammar, ensure_ascii=False))
        else:
            recognizer = vosk.KaldiRecognizer(self.model, ASR_RATE)
        recognizer.SetWords(True)
        return VoskStream(recognizer, self.name)


class VoskStream(RecognitionStream):
    def __init__(self, recognizer: Any, engine: str) -> None:
        self.recognizer = recognizer
        self.engine = engine
        self._partial = ""
        self._finals: list[tuple[str, float]] = []

    def accept(self, samples: Samples) -> Hypothesis | None:
        if samples.size == 0:
            return None
        if self.recognizer.AcceptWaveform(to_pcm16(samples).tobytes()):
            text, confidence = _read(self.recognizer.Result())
            self._partial = ""
            if text:  # Vosk's endpoint after real words: the utterance is over
                self._finals.append((text, confidence))
                return self._final()
            return None
        partial = str(json.loads(self.recognizer.PartialResult()).get("partial", ""))
        partial = _without_unknown(partial)
        if partial and partial != self._partial:
            self._partial = partial
            return Hypothesis(partial, 0.0, final=False, engine=self.engine)
        return None

    def finish(self) -> Hypothesis:
        text, confidence = _read(self.recognizer.FinalResult())
        if text:
            self._finals.append((text, confidence))
        return self._final()

    def _final(self) -> Hypothesis:
        if not self._finals:
            return Hypothesis("", 0.0, final=True, engine=self.engine)
        text = " ".join(t for t, _ in self._finals)
        confidence = sum(c for _, c in self._finals) / len(self._finals)
        return Hypothesis(text, confidence, final=True, engine=self.engine)


def _without_unknown(text: str) -> str:
    return " ".join(word for word in text.split() if word != UNKNOWN_WORD)


def _read(result_json: str) -> tuple[str, float]:
    """Text and mean word confidence of a Vosk result (``[unk]`` words dropped)."""
    result = json.loads(result_json)
    words = [w for w in result.get("result", []) if w.get("word") != UNKNOWN_WORD]
    text = _without_unknown(str(result.get("text", "")))
    if not words:
        return text, 0.0 if not text else 0.5
    return text, sum(float(w.get("conf", 0.0)) for w in words) / len(words)
