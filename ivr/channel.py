"""The voice channel: Twilio's voice webhooks and media-stream websocket, as an ``InputChannel``.

Owns the hotline's routes and the glue between a call and the gateway:

- ``POST /webhooks/twilio/voice`` (the number's voice webhook, signed): nuisance check (polite
  ``<Say>`` + hang-up, ``call_rejected``), the caller looked up by number, the greeting with the
  likeliest scenarios first, and ``<Connect action=…/next><Stream url=wss://…/stream>``. A retried
  webhook for a known ``CallSid`` gets the same answer and starts nothing twice.
- ``GET /webhooks/twilio/voice/stream`` (websocket, signed handshake; the ``start`` event must carry
  the call's token): one :class:`ivr.call.StreamSession` per stream.
- ``POST /webhooks/twilio/voice/next`` (the ``<Connect>`` action, signed): the TwiML the call moves
  on to after the gateway closed the stream — transfer (``<Enqueue>``/``<Dial>``), goodbye, or in
  ``say`` mode the next ``<Say>`` + ``<Connect>``.
- ``POST /webhooks/twilio/voice/status`` (call status callback, signed): a call that ends while
  no stream is open (``say`` mode, during ``<Say>``) is finished here.
- ``POST /webhooks/twilio/voice/gather`` (``<Gather>`` action, signed; ``say`` mode): the keys a
  caller pressed while a prompt asking for a number (or reading one back) was spoken, ``*``
  clearing what came before it; answered like keys on the stream (:func:`ivr.call.answer_input`).

Every input (transcript, keys) is an :class:`InboundMessage` (channel ``voice``, sender the caller's
number, ``channel_message_id`` = ``CallSid:utterance-n``, the phone linked through ``profile``)
handed to the gateway's handler, which persists it before the turn runs; the turn's replies come
back and are spoken (the :class:`SpokenReplies` the gateway wires in, which is the dialogue's
``dialogue.render.spoken_prompt``: short text, keys for the choices).
Signatures are checked as for SMS (``twiliohooks``). Metrics go out as events.

Must not know the dialogue's internals, NLU or the database: it sees the inbound handler and the
:class:`VoiceFeed`, :class:`CallerDirectory` and :class:`CallEvents` the gateway wires in.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from aiohttp import web
from twilio.request_validator import RequestValidator

import intents
from channels.base import (
    DeliveryFailed,
    InboundHandler,
    InputChannel,
    InvalidInbound,
    OutputChannel,
    error_response,
    national_phone,
)
from channels.operations import TEXT, TWILIO_SIGNATURE, Operation, Reply, route, twilio_form
from channels.spec import ChannelDeps, ChannelSpec
from configuration import SettingsError
from ivr import menu, twiml
from ivr.call import DTMF, Call, CallTimers, Heard, Next, Outcome, Prompt, StreamSession, answer_input
from ivr.digits import ORDER_ID, PHONE, keyed
from ivr.engines import Engines
from ivr.media_stream import MediaStream, StreamStart
from ivr.nuisance import CallAttempts, NuisanceGuard
from ivr.phrases import Answer
from ivr.recognizer import EngineUnavailable, SpeechEngine, SpeechWorkers
from ivr.settings import VoiceSettings
from ivr.voice import EspeakVoice, PromptVoice
from store.models import MAX_TEXT_CHARS, InboundMessage, Message
from twiliohooks import SIGNATURE_HEADER, BadSignature, public_url, signed_form

log = logging.getLogger(__name__)

VOICE_PATH = "/webhooks/twilio/voice"
STREAM_PATH = "/webhooks/twilio/voice/stream"
NEXT_PATH = "/webhooks/twilio/voice/next"
STATUS_PATH = "/webhooks/twilio/voice/status"
GATHER_PATH = "/webhooks/twilio/voice/gather"
CALL_FORM = twilio_form("CallSid", CallStatus={"type": "string", "maxLength": 32})


def _webhook(path: str, what: str, *, published: bool = True) -> Operation:
    """A Twilio voice webhook: a signed form in, TwiML (or a bare 204) out."""
    return Operation(
        "POST", path, f"{what} (Twilio voice webhook)", "phone", body=CALL_FORM,
        replies=(Reply(media_type="text/xml", schema=TEXT, description="TwiML"), Reply(204, None, description="noted")),
        errors=(400, 403, 413, 503), security=(TWILIO_SIGNATURE,), published=published,
    )  # fmt: skip


ENGLISH = "__ivr_english__"
"""Payload of the greeting's "For English, press 9": handled by the IVR, not a message."""
KEEP_FINISHED_CALLS = 600.0
MAX_CALL_AGE = 4 * 3600.0
ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
INTENT_SCENARIOS = {i.name: i.ivr_scenario for i in intents.all_intents().values() if i.ivr_scenario}
"""The phone menu's scenario each intent belongs to (the intent registry's)."""


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the dialogue did during a call, as the gateway's records show it."""

    completed_flows: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()


class VoiceFeed(Protocol):
    async def conversation_state(self, channel: str, sender_id: str) -> str | None:
        """The state (``bot``, ``waiting_agent`` …) of this channel identity's open conversation."""
        ...

    async def call_facts(self, conversation_id: str, since: datetime) -> CallFacts: ...

    async def note_call(self, conversation_id: str, call: dict[str, Any], since: datetime) -> None:
        """Put the call (number, path, transcript since ``since``) into the agent's hand-off summary."""
        ...


class SpokenText(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def keys(self) -> Mapping[str, str]:
        """DTMF digit → the choice's payload."""
        ...


class SpokenReplies(Protocol):
    """A turn's replies as one spoken prompt. The wording is the dialogue's (it owns spoken
    prompts); the phone line asks for it through this rather than importing the dialogue."""

    def spoken(self, replies: Sequence[Message], language: str) -> SpokenText: ...


class CallerDirectory(Protocol):
    async def lookup(self, phone: str, sender_id: str) -> menu.CallerInfo:
        """The shop's customer with this (national) phone number, their latest order and open
        request, and the state of the caller's voice conversation (``sender_id`` on this channel)."""
        ...


class CallStates(Protocol):
    """Where a call's state is kept between its webhooks and streams, which a load balancer may
    send to different gateway processes."""

    async def save_call(self, sid: str, record: dict[str, Any]) -> None: ...

    async def load_call(self, sid: str) -> dict[str, Any] | None: ...


class CallEvents(Protocol):
    async def record(
        self, name: str, data: dict[str, Any], *, conversation_id: str | None = None, customer_id: str | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    auth_token: str
    agent: twiml.AgentTarget
    account_sid: str | None = None
    public_base_url: str | None = None
    prompts: str = "stream"
    """``stream``: local prompt audio on the websocket, barge-in by ``clear``; ``say``: Twilio's voices."""
    languages: tuple[str, ...] = ("zh", "en")
    default_language: str = "zh"
    timers: CallTimers = field(default_factory=CallTimers)
    trusted_attestations: tuple[str, ...] = ("A",)
    """STIR/SHAKEN levels (Twilio's ``StirVerstat`` ``TN-Validation-Passed-<level>``) that prove the
    calling number is the caller's."""
    trust_caller_id: bool = False
    """The carrier guarantees the calling number (a private line): it is proof without attestation."""

    def caller_proven(self, fields: Mapping[str, str]) -> bool:
        if self.trust_caller_id:
            return True
        verdict = fields.get("StirVerstat", "")
        prefix = "TN-Validation-Passed-"
        return verdict.startswith(prefix) and verdict[len(prefix) :] in self.trusted_attestations


class VoiceInput(InputChannel):
    name: ClassVar[str] = "voice"
    replies_in_response: ClassVar[bool] = True
    """Replies are spoken in the call; nothing is left for an outbox sender."""

    def __init__(
        self,
        config: VoiceConfig,
        engines: Engines,
        *,
        voice: PromptVoice | None,
        guard: NuisanceGuard,
        speaker: SpokenReplies,
        directory: CallerDirectory | None = None,
        feed: VoiceFeed | None = None,
        events: CallEvents | None = None,
        workers: SpeechWorkers | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        states: CallStates | None = None,
    ) -> None:
        if config.prompts not in ("stream", "say"):
            raise ValueError(f"IVR_PROMPTS must be stream or say, not {config.prompts!r}")
        if config.prompts == "stream" and voice is None:
            raise ValueError("IVR_PROMPTS=stream needs a prompt voice")
        self.config = config
        self.engines = engines
        self.voice = voice if config.prompts == "stream" else None
        self.guard = guard
        self.speaker = speaker
        self.directory = directory
        self.feed = feed
        self.events = events
        self.workers = workers or SpeechWorkers()
        self.clock = clock
        self.validator = RequestValidator(config.auth_token)
        self.states = states
        """None: calls live in this process only (one voice process, or tests)."""
        self.calls: dict[str, Call] = {}
        self._streaming: set[str] = set()
        """Calls whose media stream this process is serving: their state here is the current one."""
        self._caller_info: dict[str, menu.CallerInfo] = {}
        self._base_urls: dict[str, str] = {}
        """Each call's public base URL, as Twilio called the voice webhook (for the stream and action URLs)."""
        self._call_started: dict[str, datetime] = {}
        self._finished_at: dict[str, float] = {}
        self._on_message: InboundHandler | None = None

    # -- CallHost --------------------------------------------------------------------------

    def engine(self, language: str) -> SpeechEngine:
        return self.engines.get(language)

    def known_numbers(self, call: Call, kind: str) -> tuple[str, ...]:
        if kind == ORDER_ID:
            return self._caller_info.get(call.sid, menu.CallerInfo()).order_ids
        if kind == PHONE:  # the number calling, as the shop stores it and in full
            national = national_phone(call.caller)
            full = "".join(c for c in call.caller if c.isdigit())
            return tuple(dict.fromkeys(n for n in (national, full) if n))
        return ()

    async def respond(self, call: Call, heard: Heard) -> Prompt:
        if heard.answer is not None and heard.answer.payload == ENGLISH:
            call.language = "en"
            return self._greeting_prompt(call, self._caller_info.get(call.sid, menu.CallerInfo()))
        assert self._on_message is not None, "routes() binds the inbound handler first"
        call.inputs += 1
        scenario = menu.scenario_of(heard.text)
        if scenario is not None:
            call.scenarios.append(scenario)
        national = national_phone(call.caller)
        inbound = InboundMessage(
            channel=self.name,
            sender_id=call.caller,
            channel_message_id=f"{call.sid}:utterance-{call.inputs}",
            text=heard.text[:MAX_TEXT_CHARS],
            # Anyone can send any caller ID: it names the customer only when attested (or the
            # carrier vouches for it); otherwise the number is a hint the dialogue verifies.
            profile={"phone": national} if national and call.caller_proven else {},
            metadata={
                "call_sid": call.sid,
                **({} if call.caller_proven else {"caller_id_unverified": True}),
                "input": heard.kind,
                "language": call.language,
                "to": call.called,
                **({"transcript": heard.transcript} if heard.transcript is not None else {}),
                **({"confidence": heard.confidence} if heard.confidence is not None else {}),
                **({"engine": heard.engine} if heard.engine else {}),
                **({"digits": heard.digits} if heard.digits else {}),
                **({"digits_via": heard.via} if heard.via else {}),
                **({"digits_heard": heard.heard_digits} if heard.heard_digits else {}),
                **({"read_back": True} if heard.read_back else {}),
                **({"scenario": scenario} if scenario else {}),
            },
        )
        replies = await self._on_message(inbound)  # persisted before the turn runs
        if replies:
            call.conversation_id, call.customer_id = replies[0].conversation_id, replies[0].customer_id
        state = await self.feed.conversation_state(self.name, call.caller) if self.feed else None
        prompt = self._reply_prompt(call, replies, handed_off=state in ("waiting_agent", "agent"))
        call.prompt = prompt
        await self._save(call)  # the input count keys the next utterance, wherever the call goes on
        return prompt

    def _reply_prompt(self, call: Call, replies: list[Message], *, handed_off: bool) -> Prompt:
        language = menu.spoken_language(" ".join(m.text for m in replies), call.language)
        spoken = self.speaker.spoken(replies, language)
        if handed_off or not replies:  # no reply at all: an agent owns the conversation
            text = spoken.text or menu.word("with_agent", language)
            return Prompt(text, language, then=Next.TRANSFER)
        offered = replies[-1].quick_replies
        answers = [
            Answer((q.title,), q.payload, key=key)
            for key, q in zip(spoken.keys, offered, strict=False)
            if spoken.keys[key] == q.payload
        ]
        human = menu.SCENARIOS["human"]
        answers.append(Answer(human.phrases[language], human.utterance[language], key=menu.HUMAN_KEY))
        text = menu.with_keypad_hint(spoken.text, language)
        return Prompt(text, language, tuple(answers), number=menu.number_asked(spoken.text))

    def listen_twiml(self, call: Call, prompt: Prompt) -> str:
        keyed_in = prompt.number is not None or prompt.readback is not None
        return twiml.connect_stream(
            self._stream_url(call),
            self._next_url(call),
            call.token,
            say=prompt.text,
            language=prompt.language,
            gather_url=self._base_urls.get(call.sid, "https://localhost") + GATHER_PATH if keyed_in else None,
            num_digits=1 if prompt.readback is not None else None,
        )

    def final_twiml(self, call: Call, prompt: Prompt, *, spoken: bool) -> str:
        say = None if spoken else prompt.text
        if prompt.then is Next.TRANSFER:
            return twiml.transfer(
                self.config.agent, say=say, language=prompt.language, conversation_id=call.conversation_id
            )
        return twiml.hang_up(say=say, language=prompt.language)

    async def ended(self, call: Call) -> None:
        self._finished_at[call.sid] = time.monotonic()
        await self._save(call)
        since = self._call_started.get(call.sid, self.clock())
        facts = CallFacts()
        if self.feed is not None and call.conversation_id:
            facts = await self.feed.call_facts(call.conversation_id, since)
        if call.ended_by == "transfer":
            call.outcome = Outcome.TRANSFERRED
        elif facts.completed_flows:
            call.outcome = Outcome.SELF_SERVICE
        else:
            call.outcome = Outcome.ABANDONED
        scenario = next(iter(call.scenarios), None) or next((INTENT_SCENARIOS.get(i, i) for i in facts.intents), None)
        data: dict[str, Any] = {
            "call_sid": call.sid,
            "caller": call.caller,
            "duration_seconds": round(call.seconds, 2),
            "outcome": call.outcome.value,
            "ended_by": call.ended_by,
            "scenario": scenario,
            "scenarios": list(dict.fromkeys(call.scenarios)),
            "completed_flows": list(facts.completed_flows),
            "inputs": call.inputs,
            "barge_ins": call.barge_ins,
            "language": call.language,
            "reply_latency_seconds": [round(x, 3) for x in call.reply_latencies],
        }
        name = {
            Outcome.TRANSFERRED: "call_transferred",
            Outcome.SELF_SERVICE: "call_self_service_completed",
            Outcome.ABANDONED: "call_abandoned",
        }[call.outcome]
        if call.outcome is Outcome.TRANSFERRED and self.feed is not None and call.conversation_id:
            await self.feed.note_call(
                call.conversation_id,
                {
                    "call_sid": call.sid,
                    "caller": call.caller,
                    "language": call.language,
                    "scenarios": data["scenarios"],
                    "agent": self.config.agent.describe(),
                },
                since,
            )
        await self._event(name, data, call)
        await self._event("call_ended", data, call)

    async def _event(self, name: str, data: dict[str, Any], call: Call | None = None) -> None:
        if self.events is None:
            return
        try:
            await self.events.record(
                name,
                data,
                conversation_id=call.conversation_id if call else None,
                customer_id=call.customer_id if call else None,
            )
        except Exception:  # metrics must never break a call
            log.exception("recording the %s event failed", name)

    # -- routes ----------------------------------------------------------------------------

    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        self._on_message = on_message
        return [
            route(_webhook(VOICE_PATH, "A call comes in"), self._incoming),
            route(_webhook(NEXT_PATH, "What the call does after a media stream ended"), self._next),
            route(_webhook(STATUS_PATH, "Call status callback"), self._status),
            # Not in /api/openapi.json yet: the keypad menu's answer (say mode) came after the document.
            route(_webhook(GATHER_PATH, "The caller's keypad or speech answer", published=False), self._gathered),
            route(Operation("GET", STREAM_PATH, "The call's media stream (Twilio's websocket)", "phone",
                            published=False), self._websocket),
        ]  # fmt: skip

    async def _signed_form(self, request: web.Request) -> dict[str, str] | web.Response:
        """The signed form, or the 403 to answer with."""
        try:
            return await signed_form(request, self.validator, self.config.public_base_url)
        except BadSignature as refused:
            return error_response(refused)

    def _check_fields(self, fields: dict[str, str], *required: str) -> None:
        for name in required:
            if not fields.get(name):
                raise InvalidInbound("missing_field", f"the field '{name}' is required", field=name)
        if self.config.account_sid and fields.get("AccountSid") and fields["AccountSid"] != self.config.account_sid:
            raise InvalidInbound("invalid_field", "the call is for another Twilio account", field="AccountSid")

    async def _incoming(self, request: web.Request) -> web.Response:
        fields = await self._signed_form(request)
        if isinstance(fields, web.Response):
            return fields
        try:
            self._check_fields(fields, "CallSid", "From")
        except InvalidInbound as error:
            log.warning("twilio voice webhook: %s", error.message)
            return error_response(error)
        self._forget_old_calls()
        sid = fields["CallSid"]
        existing = await self._call(sid)
        if existing is not None:  # Twilio retried the webhook: same answer, nothing started twice
            return _xml(self._answer_twiml(request, existing))
        caller = fields["From"]
        verdict = await self.guard.verdict(caller)
        if not verdict.allowed:
            language = self.config.default_language
            await self._event(
                "call_rejected",
                {"call_sid": sid, "caller": caller, "reason": verdict.reason, "recent_calls": verdict.recent_calls},
            )
            log.info("call %s rejected: %s", sid, verdict.reason)  # the caller's number is in the event
            return _xml(twiml.reject(_REJECTED[verdict.reason or "rate"][language], language))
        info = menu.CallerInfo()
        national = national_phone(caller)
        proven = self.config.caller_proven(fields)
        if self.directory is not None and national and proven:  # a spoofed number learns nothing
            try:
                info = await self.directory.lookup(national, caller)
            except Exception:  # an unknown caller is served all the same
                log.exception("caller lookup for call %s failed", sid)
        language = info.language if info.language in self.config.languages else self.config.default_language
        call = Call(
            sid=sid, caller=caller, called=fields.get("To", ""), language=language, token=self._token(sid),
            caller_proven=proven,
        )  # fmt: skip
        call.customer_id = info.customer_id
        self._caller_info[sid] = info
        call.prompt = self._greeting_prompt(call, info)
        self.calls[sid] = call
        self._call_started[sid] = self.clock()
        self._base_urls[sid] = _base_of(public_url(request, self.config.public_base_url))
        await self._save(call)
        await self._event(
            "call_started",
            {
                "call_sid": sid,
                "caller": caller,
                "to": call.called,
                "known_caller": info.customer_id is not None,
                "language": language,
                "prompts": self.config.prompts,
            },
            call,
        )
        return _xml(self._answer_twiml(request, call))

    def _greeting_prompt(self, call: Call, info: menu.CallerInfo) -> Prompt:
        language = call.language
        if info.with_agent:
            return Prompt(menu.word("with_agent", language), language, then=Next.TRANSFER)
        order = menu.scenario_order(info)
        answers = list(menu.menu_answers(order, language))
        offer_english = language == "zh" and "en" in self.config.languages
        if offer_english:
            answers.append(Answer(("English",), ENGLISH, key=menu.ENGLISH_KEY))
        text = menu.greeting(info, order, language, offer_english=offer_english)
        return Prompt(text, language, tuple(answers))

    def _answer_twiml(self, request: web.Request, call: Call) -> str:
        prompt = call.prompt
        if self.config.prompts == "say" and prompt is not None:
            if prompt.then is not Next.LISTEN:
                return self.final_twiml(call, prompt, spoken=False)
            return self.listen_twiml(call, prompt)
        return twiml.connect_stream(self._stream_url(call), self._next_url(call), call.token)

    async def _next(self, request: web.Request) -> web.Response:
        fields = await self._signed_form(request)
        if isinstance(fields, web.Response):
            return fields
        call = await self._call(fields.get("CallSid", ""))
        if call is None:
            return _xml(twiml.hang_up(say=None, language=self.config.default_language))
        if fields.get("CallStatus") in ENDED_STATUSES:
            await self._caller_left(call)
            return _xml(twiml.hang_up(say=None, language=call.language))
        if call.next_twiml is None:
            # The stream ended without the gateway closing it (a stream error): listen again.
            log.warning("call %s: stream ended unexpectedly (%s)", call.sid, fields.get("StreamError", "no error"))
            return _xml(twiml.connect_stream(self._stream_url(call), self._next_url(call), call.token))
        return _xml(call.next_twiml)  # kept, so a retried request gets the same answer

    async def _status(self, request: web.Request) -> web.Response:
        fields = await self._signed_form(request)
        if isinstance(fields, web.Response):
            return fields
        call = await self._call(fields.get("CallSid", ""))
        if call is not None and fields.get("CallStatus") in ENDED_STATUSES:
            await self._caller_left(call)
        return web.Response(status=204)

    async def _gathered(self, request: web.Request) -> web.Response:
        """``say`` mode: keys pressed during a ``<Gather>`` (a number, or 1/2 at its read-back)."""
        fields = await self._signed_form(request)
        if isinstance(fields, web.Response):
            return fields
        call = await self._call(fields.get("CallSid", ""))
        if call is None or call.finished:
            return _xml(twiml.hang_up(say=None, language=call.language if call else self.config.default_language))
        if fields.get("CallStatus") in ENDED_STATUSES:
            await self._caller_left(call)
            return _xml(twiml.hang_up(say=None, language=call.language))
        prompt = call.prompt
        keys = keyed(fields.get("Digits", ""))
        if prompt is None or not keys:  # all cleared with *: the question again
            return _xml(self._answer_twiml(request, call))
        answer = next((a for a in prompt.answers if a.key == keys), None)
        heard = Heard(
            kind="dtmf",
            text=answer.payload if answer else keys,
            digits=keys,
            answer=answer,
            via=DTMF if answer is None and prompt.number else None,
        )
        call.no_input = 0
        try:
            following = await answer_input(call, heard, self)
        except Exception:
            log.exception("call %s: answering keyed input failed", call.sid)
            following = Prompt(_SORRY[call.language], call.language, then=Next.TRANSFER)
        call.prompt = following
        if following.then is Next.LISTEN:
            body = self.listen_twiml(call, following)
        else:
            body = self.final_twiml(call, following, spoken=False)
            call.finished = True
            call.ended_by = "transfer" if following.then is Next.TRANSFER else "ivr"
            await self.ended(call)
        await self._save(call)
        return _xml(body)

    async def _caller_left(self, call: Call) -> None:
        if not call.finished:
            call.finished = True
            call.ended_by = "caller"
            await self.ended(call)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        url = public_url(request, self.config.public_base_url)
        signature = request.headers.get(SIGNATURE_HEADER, "")
        candidates = {url, _with_scheme(url, "wss"), _with_scheme(url, "https")}
        if not signature or not any(self.validator.validate(u, {}, signature) for u in candidates):
            log.warning("media stream from %s: bad signature for %s", request.remote, url)
            return error_response(BadSignature(f"invalid {SIGNATURE_HEADER}"))
        socket = web.WebSocketResponse(max_msg_size=256 * 1024)
        await socket.prepare(request)
        stream = MediaStream(socket)
        events = stream.events()
        async for event in events:
            if not isinstance(event, StreamStart):
                continue  # media before start cannot be placed in a call
            call = await self._call(event.call_sid)
            problem = self._stream_problem(event, call)
            if problem is not None or call is None:
                log.warning("media stream %s refused: %s", event.stream_sid, problem)
                await socket.close(code=1008, message=(problem or "unknown call").encode()[:120])
                break
            call.next_twiml = None
            session = StreamSession(
                call, stream, self, self.workers, self.config.timers, streamed_prompts=self.config.prompts == "stream"
            )
            self._streaming.add(call.sid)
            try:
                await session.run(events)
            finally:
                self._streaming.discard(call.sid)
                await self._save(call)  # what /next answers, whichever process Twilio asks
            break
        if not socket.closed:
            await socket.close()
        return socket

    def _stream_problem(self, start: StreamStart, call: Call | None) -> str | None:
        if call is None:
            return f"unknown call {start.call_sid}"
        if call.finished:
            return f"call {start.call_sid} is over"
        if not hmac.compare_digest(start.parameters.get(twiml.TOKEN_PARAMETER, ""), call.token):
            return "wrong or missing call token"
        if start.encoding != "audio/x-mulaw" or start.sample_rate != 8000 or start.channels != 1:
            return f"unsupported media format {start.encoding} {start.sample_rate} Hz x{start.channels}"
        return None

    # -- call state across processes ---------------------------------------------------------

    async def _call(self, sid: str) -> Call | None:
        """The call's current state: this process's own while it serves the call's stream,
        else the last one saved by whichever process served it."""
        if self.states is None or not sid or sid in self._streaming:
            return self.calls.get(sid)
        try:
            record = await self.states.load_call(sid)
        except Exception:  # the store is unreachable: what this process knows is all there is
            log.exception("loading call %s failed", sid)
            return self.calls.get(sid)
        if record is None:
            return self.calls.get(sid)
        call = Call.from_record(record["call"])
        self.calls[sid] = call
        info = dict(record.get("caller_info") or {})
        self._caller_info[sid] = menu.CallerInfo(
            **{
                **info,
                "scenarios_first": tuple(info.get("scenarios_first", ())),
                "order_ids": tuple(info.get("order_ids", ())),
            }
        )
        if record.get("base_url"):
            self._base_urls[sid] = str(record["base_url"])
        if record.get("started"):
            self._call_started[sid] = datetime.fromisoformat(str(record["started"]))
        return call

    async def _save(self, call: Call) -> None:
        if self.states is None:
            return
        info = self._caller_info.get(call.sid, menu.CallerInfo())
        record = {
            "call": call.record(),
            "caller_info": asdict(info),  # the tuple is stored as an array
            "base_url": self._base_urls.get(call.sid),
            "started": self._call_started.get(call.sid, self.clock()).isoformat(),
        }
        try:
            await self.states.save_call(call.sid, record)
        except Exception:  # the call goes on in this process; another could not pick it up
            log.exception("saving call %s failed", call.sid)

    # -- helpers ---------------------------------------------------------------------------

    def _token(self, call_sid: str) -> str:
        return hmac.new(self.config.auth_token.encode(), f"voice:{call_sid}".encode(), hashlib.sha256).hexdigest()[:32]

    def _stream_url(self, call: Call) -> str:
        return _with_scheme(self._base_urls.get(call.sid, "https://localhost"), "wss") + STREAM_PATH

    def _next_url(self, call: Call) -> str:
        return self._base_urls.get(call.sid, "https://localhost") + NEXT_PATH

    def _forget_old_calls(self) -> None:
        now = time.monotonic()
        for sid, call in list(self.calls.items()):
            finished = self._finished_at.get(sid)
            if (finished is not None and now - finished > KEEP_FINISHED_CALLS) or call.seconds > MAX_CALL_AGE:
                for table in (self.calls, self._finished_at, self._call_started, self._caller_info, self._base_urls):
                    table.pop(sid, None)

    async def start(self, on_message: InboundHandler) -> None:
        """Load the speech models now (in a thread): a broken model stops the start, not a call."""
        self._on_message = self._on_message or on_message
        await asyncio.to_thread(self.engines.load)

    async def stop(self) -> None:
        self.workers.close()


_SORRY = {
    "zh": "抱歉，系统出了点问题，正在为您转接人工客服。",
    "en": "Sorry, something went wrong. Let me put you through to an agent.",
}
_REJECTED = {
    "blocklist": {
        "zh": "抱歉，该号码暂时无法接通本服务，再见。",
        "en": "Sorry, this number cannot be served. Goodbye.",
    },
    "rate": {
        "zh": "抱歉，您的来电过于频繁，请稍后再拨，再见。",
        "en": "Sorry, you have called very often. Please try again later. Goodbye.",
    },
}


def _xml(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/xml")


def _base_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _with_scheme(url: str, scheme: str) -> str:
    parts = urlsplit(url)
    return parts._replace(scheme=scheme).geturl()


class VoiceServices(VoiceFeed, CallerDirectory, CallStates, CallEvents, CallAttempts, SpokenReplies, Protocol):
    """Everything the phone line asks of the gateway's records, in one object."""


class VoiceDeps(ChannelDeps, Protocol):
    @property
    def voice(self) -> VoiceServices: ...


class CallOnlyOutput(OutputChannel):
    """The phone's replies are spoken in the call; an agent's text message cannot be spoken into a
    call that is over, so it fails at once, visibly."""

    name: ClassVar[str] = "voice"

    async def send(self, message: Message) -> str | None:
        raise DeliveryFailed("the voice channel cannot deliver messages outside a call", permanent=True)


def build(section: VoiceSettings, deps: VoiceDeps) -> tuple[InputChannel, OutputChannel]:
    voice = None
    if section.prompts == "stream":
        try:
            voice = EspeakVoice()
        except EngineUnavailable as exc:
            raise SettingsError(str(exc), variable="IVR_PROMPTS") from exc
    config = VoiceConfig(
        auth_token=section.auth_token or "",
        agent=section.agent_target(),
        account_sid=section.account_sid,
        public_base_url=deps.public_base_url,
        prompts=section.prompts,
        languages=section.languages,
        default_language=section.default_language,
        timers=CallTimers(silence_seconds=section.silence_seconds, no_input_seconds=section.no_input_seconds),
        trusted_attestations=section.trusted_attestations,
        trust_caller_id=section.trust_caller_id,
    )
    services = deps.voice
    guard = NuisanceGuard(
        section.blocklist,
        max_calls=section.rate_max_calls,
        window_seconds=section.rate_window_seconds,
        attempts=services,  # one window for every gateway process
    )
    line = VoiceInput(
        config,
        Engines(section.engine_config(), section.languages),
        voice=voice,
        guard=guard,
        speaker=services,
        directory=services,
        feed=services,
        events=services,
        workers=SpeechWorkers(section.asr_workers),
        states=services,
    )
    return line, CallOnlyOutput()


SPEC = ChannelSpec(
    name=VoiceInput.name,
    label={"zh": "电话", "en": "phone"},
    identity="voice",
    settings=VoiceSettings,
    build=build,
    outside_account=True,
    spoken=True,
)
