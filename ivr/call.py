"""One phone call, from the greeting to the transfer or hang-up: the state machine.

Owns what happens on a call's media stream: every 20 ms frame goes through the upsampler and the
speech detector; a speech onset while a prompt plays is a barge-in (``clear``); an utterance is fed
to the call language's recogniser (grammar / hotwords from the prompt's expected answers) and
ends at the recogniser's own endpoint or the silence timeout; keys are collected (a single key is a
choice after a short pause, a longer entry ends with ``#``, ``*`` clears it); when the prompt asked
for an order or phone number, an utterance is first decoded digits-only (Vosk digit grammar /
whisper digit prompt, folded to digits, a near miss of a number the shop knows for the caller taken
as that number), and a number, keyed or said, is read back for the caller to confirm (1) or enter
again (2) before it goes on (:func:`answer_input`); each input is handed to the
:class:`CallHost` one at a time, which persists it and returns the next :class:`Prompt`; prompts
are spoken as streamed audio (``IVR_PROMPTS=stream``) or, in ``say`` mode, by closing the stream so
Twilio fetches ``<Say>`` + ``<Connect>`` again. No input, or input not heard, is re-prompted and
finally ends politely. Timers run on audio time (Twilio streams silence too).

Must not know the store, the dialogue, or how TwiML is written (the host supplies it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from ivr.audio import Samples, SpeechDetector, SpeechEvent, Upsampler, to_float, ulaw_decode
from ivr.digits import (
    CONFIRM_KEY,
    CONFIRM_PHRASES,
    MIN_SPOKEN_DIGITS,
    ORDER_ID,
    REENTER_KEY,
    REENTER_PHRASES,
    closest,
    normalise_digits,
    read_back,
)
from ivr.media_stream import KeyPress, MarkPlayed, MediaFrame, MediaStream, StreamEvent, StreamStopped
from ivr.menu import END_KEY, HUMAN_KEY, REPEAT_KEY, word
from ivr.phrases import Answer, match_answer, phrase_list
from ivr.recognizer import Hypothesis, Recognition, SpeechEngine, SpeechWorkers
from ivr.voice import PromptVoice

log = logging.getLogger(__name__)

PRE_ROLL_FRAMES = 15
"""300 ms kept before a speech onset, so the first syllable reaches the recogniser."""
FEED_FRAMES = 5
"""Audio goes to a streaming recogniser in 100 ms chunks."""


class Next(StrEnum):
    LISTEN = "listen"
    TRANSFER = "transfer"
    HANG_UP = "hang_up"


class Outcome(StrEnum):
    SELF_SERVICE = "self_service"
    TRANSFERRED = "transferred"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    language: str
    answers: tuple[Answer, ...] = ()
    """What the prompt offers (spoken phrases and keys)."""
    then: Next = Next.LISTEN
    hotwords: tuple[str, ...] = ()
    """More phrases to bias recognition towards (not choices themselves)."""
    number: str | None = None
    """The number the prompt asks for (``order_id``, ``phone``): keys or a digits-only decoding, read back."""
    readback: str | None = None
    """The digits this prompt reads back for confirmation."""


CONFIRM = "__ivr_confirm__"
REENTER = "__ivr_reenter__"
"""Payloads of the read-back's answers: handled by the IVR, not messages."""
DTMF = "dtmf"
DIGITS_PASS = "digits_pass"
"""Which path gave a number's digits (``metadata.digits_via``)."""


@dataclass(frozen=True, slots=True)
class Heard:
    """One caller input, as the host receives it."""

    kind: str
    """``speech``, ``dtmf`` or ``system`` (the IVR asking for a person after repeated misses)."""
    text: str
    """What the dialogue gets: the transcript, or the chosen answer's payload, or the digits."""
    transcript: str | None = None
    digits: str | None = None
    confidence: float | None = None
    engine: str | None = None
    answer: Answer | None = None
    via: str | None = None
    """A number's path: ``dtmf`` or ``digits_pass``."""
    heard_digits: str | None = None
    """The digits pass's own digits, when a near miss was taken as a number the shop knows."""
    read_back: bool = False
    """The caller confirmed the number read back to them."""

    def record(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "answer"}
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Heard:
        known = {f.name for f in fields(cls)} - {"answer"}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(slots=True)
class Call:
    """A call's state, kept across media streams (``say`` mode reconnects after every prompt)."""

    sid: str
    caller: str
    called: str
    language: str
    token: str
    started_at: float = field(default_factory=time.time)
    """Wall-clock seconds: the call may move between gateway processes (see :meth:`record`)."""
    prompt: Prompt | None = None
    inputs: int = 0
    next_twiml: str | None = None
    """What the ``<Connect>`` action URL answers once the gateway closes the stream."""
    finished: bool = False
    outcome: Outcome | None = None
    ended_by: str | None = None
    scenarios: list[str] = field(default_factory=list)
    conversation_id: str | None = None
    customer_id: str | None = None
    barge_ins: int = 0
    no_input: int = 0
    not_heard: int = 0
    reply_latencies: list[float] = field(default_factory=list)
    """Seconds from the end of an utterance (as detected) to the first byte of the spoken reply."""
    streams: int = 0
    pending: dict[str, Any] | None = None
    """A number being read back: the input (:meth:`Heard.record`) and the prompt that asked for it."""
    caller_proven: bool = False
    """The calling number is the caller's (attested by the carrier), not just what the call claims."""

    @property
    def seconds(self) -> float:
        return time.time() - self.started_at

    def record(self) -> dict[str, Any]:
        """The call as plain data, so the next webhook or stream of the call may be served by
        another gateway process (:meth:`from_record`)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "prompt"}
        data["outcome"] = self.outcome.value if self.outcome else None
        data["prompt"] = _prompt_record(self.prompt) if self.prompt else None
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Call:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["outcome"] = Outcome(data["outcome"]) if data.get("outcome") else None
        values["prompt"] = _prompt_from(data["prompt"]) if data.get("prompt") else None
        values["scenarios"] = list(data.get("scenarios") or [])
        values["reply_latencies"] = [float(x) for x in data.get("reply_latencies") or []]
        return cls(**values)


def _prompt_record(prompt: Prompt) -> dict[str, Any]:
    return {
        "text": prompt.text,
        "language": prompt.language,
        "answers": [{"phrases": list(a.phrases), "payload": a.payload, "key": a.key} for a in prompt.answers],
        "then": prompt.then.value,
        "hotwords": list(prompt.hotwords),
        "number": prompt.number,
        "readback": prompt.readback,
    }


def _prompt_from(data: dict[str, Any]) -> Prompt:
    return Prompt(
        text=str(data["text"]),
        language=str(data["language"]),
        answers=tuple(Answer(tuple(a["phrases"]), a["payload"], key=a.get("key")) for a in data.get("answers") or []),
        then=Next(data.get("then", Next.LISTEN.value)),
        hotwords=tuple(data.get("hotwords") or ()),
        number=data.get("number"),
        readback=data.get("readback"),
    )


class CallHost(Protocol):
    """What the call needs from the channel: answers to inputs, voices, recognisers, TwiML."""

    voice: PromptVoice | None
    """Prompt audio for ``stream`` mode; None in ``say`` mode."""

    def engine(self, language: str) -> SpeechEngine: ...

    def known_numbers(self, call: Call, kind: str) -> tuple[str, ...]:
        """The numbers of this kind the shop knows for the caller (their orders, their phone)."""
        ...

    async def respond(self, call: Call, heard: Heard) -> Prompt:
        """Persist the input, run the turn, and say what comes next."""
        ...

    def listen_twiml(self, call: Call, prompt: Prompt) -> str:
        """``say`` mode: TwiML that speaks the prompt and reconnects the stream."""
        ...

    def final_twiml(self, call: Call, prompt: Prompt, *, spoken: bool) -> str:
        """TwiML that transfers or hangs up (after speaking the prompt unless already ``spoken``)."""
        ...

    async def ended(self, call: Call) -> None:
        """The bot's part of the call is over (transfer, hang-up, or the caller left): metrics."""
        ...


async def answer_input(call: Call, heard: Heard, host: CallHost) -> Prompt:
    """What follows an input: a number the prompt asked for is read back first, and goes on to
    the host (persisted, the turn run) only once the caller confirmed it; "enter again" asks the
    question again. Anything else goes to the host as it is. Used by the media stream and by the
    ``<Gather>`` webhook alike, so the call may move between them."""
    prompt = call.prompt
    payload = heard.answer.payload if heard.answer is not None else None
    if prompt is not None and prompt.readback is not None and call.pending is not None:
        pending = call.pending
        if payload == CONFIRM:
            call.pending = None
            confirmed = Heard.from_record(pending["heard"])
            return await host.respond(call, dataclasses.replace(confirmed, read_back=True))
        if payload == REENTER:
            call.pending = None
            return _reprompt("reenter", _prompt_from(pending["asked"]), prompt.language)
        if heard.answer is None and heard.kind != "system":  # neither: read it back again
            return _reprompt("not_heard", prompt, prompt.language)
        call.pending = None  # another choice (0: a person) leaves the number unused
        return await host.respond(call, heard)
    if prompt is not None and prompt.number and heard.digits and heard.answer is None and heard.kind != "system":
        call.pending = {"heard": heard.record(), "asked": _prompt_record(prompt)}
        return read_back_prompt(prompt, heard.digits)
    return await host.respond(call, heard)


def read_back_prompt(asked: Prompt, digits: str) -> Prompt:
    """ "您输入的订单号是 2 0 2 6 …，确认请按1，重新输入请按2。" (0 still reaches a person)."""
    language = asked.language
    answers = [
        Answer(CONFIRM_PHRASES.get(language, CONFIRM_PHRASES["en"]), CONFIRM, key=CONFIRM_KEY),
        Answer(REENTER_PHRASES.get(language, REENTER_PHRASES["en"]), REENTER, key=REENTER_KEY),
        *(a for a in asked.answers if a.key == HUMAN_KEY),
    ]
    text = read_back(asked.number or ORDER_ID, digits, language)
    return Prompt(text, language, tuple(answers), readback=digits)


@dataclass(frozen=True, slots=True)
class CallTimers:
    silence_seconds: float = 0.8
    no_input_seconds: float = 8.0
    max_utterance_seconds: float = 15.0
    choice_seconds: float = 1.0
    """After one key, wait this long for a second before taking it as a menu choice."""
    digits_seconds: float = 3.0
    """Between keys of a longer entry (without the closing ``#``)."""
    no_input_retries: int = 2
    not_heard_retries: int = 2
    barge_in: bool = True


class StreamSession:
    """One media stream of a call: runs until Twilio stops it or the call moves on."""

    def __init__(
        self,
        call: Call,
        stream: MediaStream,
        host: CallHost,
        workers: SpeechWorkers,
        timers: CallTimers,
        *,
        streamed_prompts: bool,
    ) -> None:
        self.call = call
        self.stream = stream
        self.host = host
        self.workers = workers
        self.timers = timers
        self.streamed = streamed_prompts
        self.detector = SpeechDetector(
            silence=timers.silence_seconds, max_utterance=timers.max_utterance_seconds, onset_frames=5
        )
        self.upsampler = Upsampler()
        self.pre_roll: deque[Samples] = deque(maxlen=PRE_ROLL_FRAMES)
        self.playing: str | None = None
        """Name of the mark of the prompt being played; None when quiet."""
        self.marks = 0
        self.busy = False
        """An input is being answered (speech is ignored meanwhile, keys wait)."""
        self.no_input_deadline: float | None = None
        self.keys = ""
        self.key_deadline: float | None = None
        self.recognition: Recognition | None = None
        self.audio_queue: asyncio.Queue[Samples | None] | None = None
        self.utterance_task: asyncio.Task[None] | None = None
        self.inputs: asyncio.Queue[Heard] = asyncio.Queue()
        self.turns: asyncio.Task[None] | None = None
        self.closing = False
        self.speech_end: float | None = None

    @property
    def now(self) -> float:
        """Audio time of this stream."""
        return self.detector.seconds

    # -- the loop ------------------------------------------------------------------------

    async def run(self, events: AsyncIterator[StreamEvent]) -> None:
        """Serve the stream's events (after its ``start``) until it stops or the call moves on."""
        self.call.streams += 1
        self.turns = asyncio.create_task(self._answer_inputs(), name=f"call-{self.call.sid}-turns")
        try:
            if self.call.prompt is not None:
                if self.streamed:
                    await self._speak(self.call.prompt)
                else:
                    self._listen_after_prompt()  # Twilio just said it
            async for event in events:
                if isinstance(event, MediaFrame):
                    await self._on_frame(event.payload)
                elif isinstance(event, KeyPress):
                    await self._on_key(event.digit)
                elif isinstance(event, MarkPlayed):
                    await self._on_mark(event.name)
                elif isinstance(event, StreamStopped):
                    break
                if self.closing:
                    break
        finally:
            await self._wind_down()

    async def _wind_down(self) -> None:
        for task in (self.utterance_task, self.turns):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not self.closing and not self.call.finished:
            # Twilio stopped the stream without the gateway asking: the caller hung up.
            self.call.ended_by = "caller"
            self.call.finished = True
            await self.host.ended(self.call)

    # -- audio ---------------------------------------------------------------------------

    async def _on_frame(self, payload: bytes) -> None:
        frame = to_float(ulaw_decode(payload))
        wide = self.upsampler.process(frame)
        event = self.detector.push(frame)
        if self.recognition is not None and self.audio_queue is not None:
            self.audio_queue.put_nowait(wide)
        else:
            self.pre_roll.append(wide)
        if event is SpeechEvent.STARTED:
            await self._speech_started()
        elif event in (SpeechEvent.ENDED, SpeechEvent.TOO_LONG):
            self._speech_ended()
        await self._check_timers()

    async def _speech_started(self) -> None:
        if self.busy or self.closing or self.recognition is not None:
            return
        prompt = self.call.prompt
        if self.playing is not None:
            if not self.timers.barge_in or (prompt is not None and prompt.then is not Next.LISTEN):
                return  # the last words before a transfer or goodbye are not interrupted
            await self._barge_in()
        self.no_input_deadline = None
        phrases = phrase_list(prompt.answers, prompt.hotwords) if prompt else []
        language = prompt.language if prompt else self.call.language
        digits = prompt is not None and prompt.number is not None
        self.recognition = Recognition(self.host.engine(language), self.workers, phrases, digits=digits)
        self.audio_queue = asyncio.Queue()
        for chunk in self.pre_roll:
            self.audio_queue.put_nowait(chunk)
        self.pre_roll.clear()
        self.utterance_task = asyncio.create_task(self._recognise(self.recognition, self.audio_queue))

    def _speech_ended(self) -> None:
        if self.audio_queue is not None:
            self.speech_end = time.monotonic()
            self.audio_queue.put_nowait(None)
            self.audio_queue = None

    async def _recognise(self, recognition: Recognition, queue: asyncio.Queue[Samples | None]) -> None:
        """Feed one utterance to the recogniser; hand the final transcript on."""
        pending: list[Samples] = []
        utterance: list[Samples] = []
        final: Hypothesis | None = None
        try:
            while True:
                chunk = await queue.get()
                if chunk is not None:
                    pending.append(chunk)
                    if recognition.digits:
                        utterance.append(chunk)
                if pending and (chunk is None or len(pending) >= FEED_FRAMES):
                    hypothesis = await recognition.feed(np.concatenate(pending))
                    pending = []
                    if hypothesis is not None and hypothesis.final:
                        final = hypothesis  # the engine's endpoint came first
                        self.speech_end = time.monotonic()
                        break
                    if hypothesis is not None:
                        log.debug("call %s partial: %d characters", self.call.sid, len(hypothesis.text))
                if chunk is None:
                    break
            if final is None:
                final = await recognition.finish()
        finally:
            if self.recognition is recognition:
                self.recognition = None
                self.audio_queue = None
                self.detector.reset()
        if recognition.digits:
            await self._heard_number(recognition, final, utterance)
        else:
            await self._heard_speech(final)

    async def _heard_number(self, recognition: Recognition, final: Hypothesis, utterance: list[Samples]) -> None:
        """A digits-only decoding of an answer to "which number?": enough digits make a number
        (a near miss of one the shop knows for the caller is taken as it); otherwise the utterance
        was something else ("转人工", "第一个") and is decoded again as ordinary speech."""
        prompt = self.call.prompt
        language = prompt.language if prompt else self.call.language
        digits = normalise_digits(final.text, language)
        if prompt is not None and prompt.number and len(digits) >= MIN_SPOKEN_DIGITS:
            known = closest(digits, self.host.known_numbers(self.call, prompt.number))
            self.call.not_heard = 0
            self.inputs.put_nowait(
                Heard(
                    kind="speech",
                    text=known or digits,
                    transcript=final.text,
                    digits=known or digits,
                    confidence=final.confidence,
                    engine=final.engine,
                    via=DIGITS_PASS,
                    heard_digits=digits if known and known != digits else None,
                )
            )
            return
        again = Recognition(recognition.engine, self.workers, recognition.phrases)
        if utterance:
            await again.feed(np.concatenate(utterance))
        await self._heard_speech(await again.finish())

    async def _heard_speech(self, hypothesis: Hypothesis) -> None:
        prompt = self.call.prompt
        if not hypothesis.text.strip():
            await self._not_heard()
            return
        self.call.not_heard = 0
        match = match_answer(hypothesis.text, prompt.answers) if prompt else None
        self.inputs.put_nowait(
            Heard(
                kind="speech",
                text=match.answer.payload if match else hypothesis.text,
                transcript=hypothesis.text,
                confidence=hypothesis.confidence,
                engine=hypothesis.engine,
                answer=match.answer if match else None,
            )
        )

    async def _not_heard(self) -> None:
        self.call.not_heard += 1
        prompt = self.call.prompt
        language = prompt.language if prompt else self.call.language
        if self.call.not_heard > self.timers.not_heard_retries:
            self.call.not_heard = 0  # a person takes over rather than asking a fourth time
            self.inputs.put_nowait(Heard(kind="system", text=_HUMAN_REQUEST[language]))
            return
        await self._present(_reprompt("not_heard", prompt, language), remember=False)

    # -- keys ----------------------------------------------------------------------------

    async def _on_key(self, digit: str) -> None:
        if self.closing:
            return
        if self.playing is not None and self.timers.barge_in:
            prompt = self.call.prompt
            if prompt is None or prompt.then is Next.LISTEN:
                await self._barge_in()
        self.no_input_deadline = None
        if digit == REPEAT_KEY and not self.keys:
            if self.call.prompt is not None and not self.busy:
                await self._present(self.call.prompt)
            return
        if digit == REPEAT_KEY:  # clears what was keyed so far
            self.keys, self.key_deadline = "", None
            return
        if digit == END_KEY:
            if self.keys:
                self._submit_keys()
            return
        self.keys += digit
        wait = self.timers.choice_seconds if len(self.keys) == 1 else self.timers.digits_seconds
        self.key_deadline = self.now + wait

    def _submit_keys(self) -> None:
        keys, self.keys, self.key_deadline = self.keys, "", None
        prompt = self.call.prompt
        answer = next((a for a in prompt.answers if a.key == keys), None) if prompt else None
        via = DTMF if answer is None and prompt is not None and prompt.number else None
        self.inputs.put_nowait(
            Heard(kind="dtmf", text=answer.payload if answer else keys, digits=keys, answer=answer, via=via)
        )

    # -- timers --------------------------------------------------------------------------

    async def _check_timers(self) -> None:
        if self.key_deadline is not None and self.now >= self.key_deadline:
            self._submit_keys()
        if (
            self.no_input_deadline is not None
            and self.now >= self.no_input_deadline
            and not self.busy
            and self.recognition is None
            and not self.keys
        ):
            self.no_input_deadline = None
            await self._no_input()

    async def _no_input(self) -> None:
        self.call.no_input += 1
        prompt = self.call.prompt
        language = prompt.language if prompt else self.call.language
        if self.call.no_input > self.timers.no_input_retries:
            await self._present(Prompt(word("goodbye", language), language, then=Next.HANG_UP))
            return
        await self._present(_reprompt("still_there", prompt, language), remember=False)

    def _listen_after_prompt(self) -> None:
        self.no_input_deadline = self.now + self.timers.no_input_seconds

    # -- answering -------------------------------------------------------------------------

    async def _answer_inputs(self) -> None:
        while True:
            heard = await self.inputs.get()
            self.busy = True
            try:
                if heard.kind != "system":
                    self.call.no_input = 0
                prompt = await answer_input(self.call, heard, self.host)
                await self._present(prompt)
            except Exception:
                log.exception("call %s: answering an input failed", self.call.sid)
                language = self.call.prompt.language if self.call.prompt else self.call.language
                await self._present(Prompt(_SORRY[language], language, then=Next.TRANSFER))
            finally:
                self.busy = False

    async def _present(self, prompt: Prompt, *, remember: bool = True) -> None:
        """Say a prompt and act on it: listen again, or transfer / hang up once it is heard.
        A re-prompt ("still there?") is not remembered, so the next one repeats the question only."""
        if remember or prompt.then is not Next.LISTEN or self.call.prompt is None:
            self.call.prompt = prompt
        if self.streamed:
            await self._speak(prompt)
            return
        # say mode: Twilio speaks it; the stream closes and the action URL answers with the TwiML.
        if prompt.then is Next.LISTEN:
            self.call.next_twiml = self.host.listen_twiml(self.call, prompt)
            await self._close()
        else:
            await self._finish(prompt, spoken=False)

    async def _speak(self, prompt: Prompt) -> None:
        audio = await self.host.voice.speak(prompt.text, prompt.language) if self.host.voice else b""
        self.marks += 1
        name = f"prompt-{self.marks}"
        self.playing = name
        if self.speech_end is not None:
            self.call.reply_latencies.append(time.monotonic() - self.speech_end)
            self.speech_end = None
        if not await self.stream.play(audio, name):
            self.playing = None
            return
        self.no_input_deadline = None

    async def _on_mark(self, name: str) -> None:
        if name != self.playing:
            return  # a prompt dropped by clear, or an older one
        self.playing = None
        prompt = self.call.prompt
        if prompt is not None and prompt.then is not Next.LISTEN:
            await self._finish(prompt, spoken=True)
            return
        self._listen_after_prompt()

    async def _barge_in(self) -> None:
        self.playing = None
        self.call.barge_ins += 1
        await self.stream.clear()

    async def _finish(self, prompt: Prompt, *, spoken: bool) -> None:
        self.call.next_twiml = self.host.final_twiml(self.call, prompt, spoken=spoken)
        if not self.call.finished:
            self.call.finished = True
            self.call.ended_by = "transfer" if prompt.then is Next.TRANSFER else "ivr"
            await self.host.ended(self.call)
        await self._close()

    async def _close(self) -> None:
        self.closing = True
        await self.stream.close()


_HUMAN_REQUEST = {"zh": "转人工", "en": "talk to an agent"}
_SORRY = {
    "zh": "抱歉，系统出了点问题，正在为您转接人工客服。",
    "en": "Sorry, something went wrong. Let me put you through to an agent.",
}


def _reprompt(key: str, prompt: Prompt | None, language: str) -> Prompt:
    """ "Not heard" / "still there?" followed by the question again, offering the same answers
    (and still asking for the same number, or reading back the same one)."""
    if prompt is None:
        return Prompt(word(key, language), language)
    text = word(key, language) + ("" if language == "zh" else " ") + prompt.text
    return dataclasses.replace(prompt, text=text, then=Next.LISTEN)
