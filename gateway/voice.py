"""Wiring the phone IVR into the gateway: its settings, and the store-backed services it sees.

The voice channel (``ivr/``) must not know the database; this composition-root module gives it
the three narrow services it asks for, backed by the store and the shop: the caller directory
(customer, latest order, open after-sales request and voice-conversation state by phone number),
the voice feed (conversation state after a turn, what the dialogue completed during a call, the
call's transcript added to the agent's hand-off summary) and the metrics event log.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.settings import Settings
from ivr import twiml
from ivr.call import CallTimers
from ivr.channel import CallFacts, VoiceConfig, VoiceInput
from ivr.engines import ENGINE_NAMES, EngineConfig, Engines
from ivr.menu import CallerInfo
from ivr.nuisance import NuisanceGuard
from ivr.recognizer import EngineUnavailable, SpeechWorkers
from ivr.voice import EspeakVoice
from ivr.whisper_engine import default_model_dir
from shop import MongoOrderService
from shop.aftersales import AfterSalesService
from store import ConversationStore, Event, stored_datetime
from store.models import Direction

IVR_LANGUAGES = ("zh", "en")


class VoiceSettingsError(ValueError):
    """The IVR is configured half-way (the gateway turns this into its ``SettingsError``)."""


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        engines=dict(settings.ivr_engines),
        vosk_models=dict(settings.vosk_models),
        whisper_model_dir=settings.ivr_whisper_model_dir or default_model_dir(),
        whisper_threads=settings.ivr_whisper_threads,
        whisper_workers=settings.ivr_asr_workers,
    )


def agent_target(settings: Settings) -> twiml.AgentTarget:
    given = {
        "IVR_AGENT_QUEUE": settings.ivr_agent_queue,
        "IVR_AGENT_NUMBER": settings.ivr_agent_number,
        "IVR_AGENT_SIP": settings.ivr_agent_sip,
    }
    chosen = [name for name, value in given.items() if value]
    if len(chosen) != 1:
        raise VoiceSettingsError(
            "the phone IVR (TWILIO_VOICE_NUMBER) needs exactly one transfer target: IVR_AGENT_QUEUE (a Twilio "
            "queue agents dequeue from), IVR_AGENT_NUMBER or IVR_AGENT_SIP"
            + (f"; got {', '.join(chosen)}" if chosen else "")
        )
    if settings.ivr_agent_sip and not settings.ivr_agent_sip.startswith(("sip:", "sips:")):
        raise VoiceSettingsError(f"IVR_AGENT_SIP must be a sip: address, not {settings.ivr_agent_sip!r}")
    return twiml.AgentTarget(
        queue=settings.ivr_agent_queue,
        number=settings.ivr_agent_number,
        sip=settings.ivr_agent_sip,
        caller_id=settings.ivr_agent_caller_id,
    )


def check_voice_settings(settings: Settings) -> None:
    """Everything the IVR needs, checked before anything starts; the message says what is missing."""
    if not settings.twilio_auth_token:
        raise VoiceSettingsError(
            "the phone IVR (TWILIO_VOICE_NUMBER) needs TWILIO_AUTH_TOKEN to check Twilio's signatures"
        )
    agent_target(settings)
    if settings.ivr_prompts not in ("stream", "say"):
        raise VoiceSettingsError(f"IVR_PROMPTS must be stream or say, not {settings.ivr_prompts!r}")
    if settings.ivr_prompts == "stream" and shutil.which("espeak-ng") is None:
        raise VoiceSettingsError("IVR_PROMPTS=stream needs espeak-ng (make setup installs it), or set IVR_PROMPTS=say")
    unknown = [lang for lang in settings.ivr_languages if lang not in IVR_LANGUAGES]
    if unknown or not settings.ivr_languages:
        raise VoiceSettingsError(f"IVR_LANGUAGES: use some of {', '.join(IVR_LANGUAGES)}, not {unknown or 'nothing'}")
    if settings.ivr_default_language not in settings.ivr_languages:
        raise VoiceSettingsError(f"IVR_DEFAULT_LANGUAGE={settings.ivr_default_language} is not in IVR_LANGUAGES")
    config = engine_config(settings)
    for language in settings.ivr_languages:
        engine = config.engine_for(language)
        if engine not in ENGINE_NAMES:
            raise VoiceSettingsError(f"IVR_ENGINE_{language.upper()}={engine!r}: use one of {', '.join(ENGINE_NAMES)}")
        if engine == "vosk":
            path = config.vosk_models.get(language)
            if path is None:
                raise VoiceSettingsError(
                    f"IVR_ENGINE_{language.upper()}=vosk needs VOSK_MODEL_{language.upper()}, the directory of a "
                    f"Vosk model (nothing is downloaded), or IVR_ENGINE_{language.upper()}=whisper"
                )
            if not path.is_dir():
                raise VoiceSettingsError(f"VOSK_MODEL_{language.upper()}={path}: no such directory")


def voice_channel(settings: Settings, services: VoiceServices) -> VoiceInput:
    check_voice_settings(settings)
    voice = None
    if settings.ivr_prompts == "stream":
        try:
            voice = EspeakVoice()
        except EngineUnavailable as exc:
            raise VoiceSettingsError(str(exc)) from exc
    config = VoiceConfig(
        auth_token=settings.twilio_auth_token or "",
        agent=agent_target(settings),
        account_sid=settings.twilio_account_sid,
        public_base_url=settings.public_base_url,
        prompts=settings.ivr_prompts,
        languages=settings.ivr_languages,
        default_language=settings.ivr_default_language,
        timers=CallTimers(silence_seconds=settings.ivr_silence_seconds, no_input_seconds=settings.ivr_no_input_seconds),
    )
    guard = NuisanceGuard(
        settings.ivr_blocklist,
        max_calls=settings.ivr_rate_max_calls,
        window_seconds=settings.ivr_rate_window_seconds,
        attempts=services,  # one window for every gateway process
    )
    return VoiceInput(
        config,
        Engines(engine_config(settings), settings.ivr_languages),
        voice=voice,
        guard=guard,
        directory=services,
        feed=services,
        events=services,
        workers=SpeechWorkers(settings.ivr_asr_workers),
        states=services,
    )


class StoreHolder(Protocol):
    store: ConversationStore | None


class VoiceServices:
    """Caller directory, voice feed and event log over the store (the gateway's ``StoreFeed``, bound
    when the store is up)."""

    def __init__(self, holder: StoreHolder) -> None:
        self.holder = holder
        self._indexed = False
        self._saves = 0

    def _bound(self) -> ConversationStore:
        if self.holder.store is None:
            raise RuntimeError("the gateway's store is not up yet")
        return self.holder.store

    async def lookup(self, phone: str, sender_id: str) -> CallerInfo:
        store = self._bound()
        customer = await store.customers.find_one({"identities.phone": phone})
        orders = await MongoOrderService(store.db).recent_for_customer(phone=phone, limit=1)
        order = orders[0] if orders else None
        request = None
        if customer is not None:
            requests = await AfterSalesService(store.db).for_customer(str(customer["_id"]), open_only=True)
            request = requests[-1] if requests else None
        conversation = await store.conversations.find_one({"open_key": f"voice:{sender_id}"})
        language = (conversation or {}).get("language") or (customer or {}).get("language")
        return CallerInfo(
            customer_id=str(customer["_id"]) if customer else None,
            language=str(language) if language else None,
            order_id=order.order_id if order else None,
            order_status=order.status.value if order else None,
            open_request_type=request.type.value if request else None,
            open_request_order_id=request.order_id if request else None,
            conversation_state=str(conversation["state"]) if conversation else None,
        )

    async def conversation_state(self, channel: str, sender_id: str) -> str | None:
        doc = await self._bound().conversations.find_one({"open_key": f"{channel}:{sender_id}"})
        return str(doc["state"]) if doc else None

    async def call_facts(self, conversation_id: str, since: datetime) -> CallFacts:
        store = self._bound()
        completed: list[str] = []
        cursor = store.events.find({"conversation_id": conversation_id, "name": "self_service_completed"})
        async for event in cursor:
            if _aware(event.get("at")) >= since:
                completed.append(str((event.get("data") or {}).get("flow", "")))
        intents = [
            str(m.understanding["intent"])
            for m in await store.history(conversation_id)
            if m.direction is Direction.INBOUND and m.understanding and _aware(m.created_at) >= since
        ]
        return CallFacts(tuple(completed), tuple(intents))

    async def note_call(self, conversation_id: str, call: dict[str, Any], since: datetime) -> None:
        store = self._bound()
        conversation = await store.get_conversation(conversation_id)
        if conversation is None:
            return
        transcript = []
        for message in await store.history(conversation_id):
            if _aware(message.created_at) < since or message.channel != "voice":
                continue
            line: dict[str, Any] = {
                "at": message.created_at.isoformat(),
                "from": "caller" if message.direction is Direction.INBOUND else message.author,
                "text": message.text,
            }
            for key in ("input", "transcript", "confidence", "digits"):
                if key in message.metadata:
                    line[key] = message.metadata[key]
            transcript.append(line)
        summary = dict(conversation.handoff_summary or {})
        summary["call"] = {**call, "transcript": transcript}
        await store.set_handoff_summary(conversation_id, summary)

    async def _indexes(self) -> None:
        if not self._indexed:
            db = self._bound().db
            await db["voice_calls"].create_index("saved_ms")
            await db["voice_call_attempts"].create_index([("number", 1), ("at_ms", 1)])
            self._indexed = True

    async def save_call(self, sid: str, record: dict[str, Any]) -> None:
        """A call's state in ``voice_calls`` (a whole-document replace: nx-27017 drops an upsert's
        filter ``_id`` from ``$set``). Now and then, calls older than a day are cleared away."""
        await self._indexes()
        calls = self._bound().db["voice_calls"]
        now_ms = int(time.time() * 1000)
        await calls.replace_one({"_id": sid}, {"_id": sid, **record, "saved_ms": now_ms}, upsert=True)
        self._saves += 1
        if self._saves % 50 == 1:  # a call saves a dozen times: this is about once per few calls
            await calls.delete_many({"saved_ms": {"$lt": now_ms - 24 * 3600 * 1000}})

    async def load_call(self, sid: str) -> dict[str, Any] | None:
        return await self._bound().db["voice_calls"].find_one({"_id": sid[:64]})

    async def attempt(self, number_key: str, window_seconds: float) -> int:
        """Record a call attempt in ``voice_call_attempts``; the attempts from the number within the window."""
        await self._indexes()
        attempts = self._bound().db["voice_call_attempts"]
        now_ms = int(time.time() * 1000)
        since_ms = now_ms - int(window_seconds * 1000)
        await attempts.insert_one({"number": number_key, "at_ms": now_ms})
        await attempts.delete_many({"number": number_key, "at_ms": {"$lt": since_ms}})
        return await attempts.count_documents({"number": number_key, "at_ms": {"$gte": since_ms}})

    async def record(
        self, name: str, data: dict[str, Any], *, conversation_id: str | None = None, customer_id: str | None = None
    ) -> None:
        await self._bound().log_event(
            Event(name=name, conversation_id=conversation_id, customer_id=customer_id, channel="voice", data=data)
        )


def _aware(value: Any) -> datetime:
    return stored_datetime(value) or datetime.min.replace(tzinfo=UTC)
