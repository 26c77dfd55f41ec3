"""The one small interface every speech engine implements, and how calls use it without blocking.

An engine (:class:`SpeechEngine`) opens a :class:`RecognitionStream` per utterance, optionally
restricted to or biased towards a phrase list (the answers the current prompt expects); audio goes
in as 16 kHz float samples, hypotheses come out — partial ones while the caller speaks (streaming
engines) and one final one with a confidence. Engines are CPU-bound and synchronous;
:class:`Recognition` runs them on a dedicated thread pool (``SpeechWorkers``) in order, so the
event loop keeps serving websockets and webhooks while a model decodes.

Must not know Twilio, the call flow, or which engine is configured for which language
(``ivr/engines.py`` chooses).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from errors import Unavailable
from ivr.audio import Samples
from ivr.digits import digit_words

T = TypeVar("T")


class EngineUnavailable(Unavailable, RuntimeError):
    """An engine cannot run here: a model path is missing or a package is not installed.

    The message names what is missing; nothing is ever downloaded at run time.
    """

    code = "speech_engine_unavailable"


@dataclass(frozen=True, slots=True)
class Hypothesis:
    text: str
    confidence: float
    """0–1; 0 for partial results that carry none."""
    final: bool
    engine: str


class RecognitionStream(ABC):
    """One utterance being decoded. Not thread-safe: :class:`Recognition` calls it in order."""

    @abstractmethod
    def accept(self, samples: Samples) -> Hypothesis | None:
        """Take more audio; a partial hypothesis when the engine has a new one, or a final one when
        the engine's own endpointing decided the utterance is over."""

    @abstractmethod
    def finish(self) -> Hypothesis:
        """No more audio: the final hypothesis (empty text when nothing was understood)."""


class SpeechEngine(ABC):
    name: ClassVar[str]
    streaming: ClassVar[bool]
    """True when the engine decodes while audio arrives (partials, own endpointing); False when it
    needs the whole utterance (cut by end-of-speech detection) at :meth:`RecognitionStream.finish`."""

    def __init__(self, language: str) -> None:
        self.language = language

    @abstractmethod
    def open(self, phrases: Sequence[str] = ()) -> RecognitionStream:
        """A stream for one utterance; ``phrases`` are the answers the prompt expects."""

    def open_digits(self) -> RecognitionStream:
        """A stream for a digits-only answer (an order or phone number): restricted to or biased
        towards the language's digit words; the caller folds the text to digits
        (:func:`ivr.digits.normalise_digits`). Pauses between digit groups do not end it."""
        return self.open(digit_words(self.language))

    def transcribe(self, samples: Samples, phrases: Sequence[str] = (), *, digits: bool = False) -> Hypothesis:
        """A whole recording at once (in chunks of 100 ms through a stream, as a call feeds it)."""
        stream = self.open_digits() if digits else self.open(phrases)
        step = 1600
        for start in range(0, samples.size, step):
            stream.accept(samples[start : start + step])
        return stream.finish()


class SpeechWorkers:
    """The threads speech models run on, shared by all calls (models release the GIL while decoding)."""

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="speech")
            return self._executor

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None


class Recognition:
    """An utterance decoded off the event loop: ``feed`` audio, then ``finish``.

    Calls are serialised (a stream is not thread-safe) and never block the loop. A non-streaming
    engine's ``accept`` only buffers, so it runs inline rather than queueing behind other calls'
    decodes on the pool.
    """

    def __init__(
        self, engine: SpeechEngine, workers: SpeechWorkers, phrases: Sequence[str] = (), *, digits: bool = False
    ) -> None:
        self.engine = engine
        self.phrases = tuple(phrases)
        self.digits = digits
        """A digits-only decoding: the engine's own endpoints (pauses between digit groups) do not
        end it; the utterance ends at the silence timeout."""
        self._workers = workers
        self._stream: RecognitionStream | None = None
        self._lock = asyncio.Lock()
        self.latest: Hypothesis | None = None
        self.final: Hypothesis | None = None

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._workers.executor, function, *args)

    async def feed(self, samples: Samples) -> Hypothesis | None:
        if self.final is not None:
            return None
        async with self._lock:
            if self._stream is None:
                self._stream = await self._run(self._open)
            if self.engine.streaming:
                hypothesis = await self._run(self._stream.accept, samples)
            else:
                hypothesis = self._stream.accept(samples)
        if hypothesis is not None:
            self.latest = hypothesis
            if hypothesis.final and self.digits:
                return Hypothesis(hypothesis.text, hypothesis.confidence, final=False, engine=hypothesis.engine)
            if hypothesis.final:
                self.final = hypothesis
        return hypothesis

    def _open(self) -> RecognitionStream:
        return self.engine.open_digits() if self.digits else self.engine.open(self.phrases)

    async def finish(self) -> Hypothesis:
        if self.final is not None:
            return self.final
        async with self._lock:
            if self._stream is None:
                self._stream = await self._run(self._open)
            self.final = await self._run(self._stream.finish)
        assert self.final is not None
        return self.final
