"""Build and run the gateway's components: store, shop, NLU, dialogue, backoffice, channels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from backoffice import Backoffice, HandoffDesk, TicketDesk
from backoffice.audit import AuditLog
from backoffice.permissions import Role
from backoffice.routing.pickups import PickupStore
from channels import DeliveryFailed, InboundHandler, InputChannel, OutputChannel, RestInput
from channels.app_im import AppImInput, AppImOutput, Connections
from channels.email import EmailInput, EmailOutput, ImapMailbox
from channels.sms import TwilioSmsInput, TwilioSmsOutput
from channels.telegram import TelegramInput, TelegramOutput, make_bot
from console import Console
from dialogue import DialogueEngine
from dialogue.flows import FlowContext
from dialogue.knowledge import KnowledgeBase
from gateway.limits import Rate, SenderRateLimit, TokenBucketLimiter
from gateway.outbox import OutboxDispatcher, RetryPolicy
from gateway.receivers import ExclusiveReceivers
from gateway.settings import Settings
from gateway.turns import TurnProcessor
from gateway.voice import VoiceServices, VoiceSettingsError, voice_channel
from media_ocr.pipeline import OcrService, OcrWorkers
from media_ocr.store import OcrResultStore
from nlu import NluClient, NluProject, OfflineNlu, RasaNluClient
from nlu.server import EmbeddedRasaServer
from nlu.understanding import UnderstandingClient, today_in
from quality import ReviewQueue
from shop import MongoOrderService, load_orders_file
from shop.aftersales import AfterSalesService
from shop.policy import AfterSalesPolicy
from store import ConversationStore, InboundMessage, Message
from store.embedded import EmbeddedMongo
from store.leases import Leases
from store.media import MediaStore
from store.sessions import SenderSessions

log = logging.getLogger(__name__)


class Gateway:
    """The running gateway. Use :class:`GatewayBuilder` to make one."""

    def __init__(
        self,
        settings: Settings,
        store: ConversationStore | None,
        nlu: NluClient | None,
        channels: list[InputChannel],
        senders: list[OutputChannel] | None = None,
        media: MediaStore | None = None,
        feed: StoreFeed | None = None,
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.senders = senders or []
        self.media = media or media_store(settings)
        for channel in channels:  # a retried MMS webhook is answered from the store, not re-downloaded
            if isinstance(channel, TwilioSmsInput) and channel.already_stored is None:
                channel.already_stored = self.has_inbound
        self.outbox: OutboxDispatcher | None = None
        # The IVR limits calls per caller itself (nuisance-call rejection); a turn inside a call is no flood.
        self.sender_limit = SenderRateLimit(
            TokenBucketLimiter(
                Rate(settings.rate_limit_sender_per_minute, settings.rate_limit_sender_burst),
                max_keys=settings.rate_limit_max_keys,
            ),
            exempt_channels=("voice",),
        )
        self.feed = feed or StoreFeed()
        self._given_store = store
        self._given_nlu = nlu
        self._embedded_mongo: EmbeddedMongo | None = None
        self._embedded_rasa: list[EmbeddedRasaServer] = []
        self._nlu_start: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self.leases: Leases | None = None
        """Shared with the other gateway processes on the store: turns, outbox senders, receivers."""
        self.receivers: ExclusiveReceivers | None = None
        self.store: ConversationStore | None = None
        self.orders: MongoOrderService | None = None
        self.aftersales: AfterSalesService | None = None
        self.tickets: TicketDesk | None = None
        self.backoffice: Backoffice | None = None
        self.handoff: HandoffDesk | None = None
        self.pickups: PickupStore | None = None
        self.console: Console | None = None
        self.reviews: ReviewQueue | None = None
        # Business rules and answers: read at start so a bad edit stops the start, not a turn.
        self.policy = AfterSalesPolicy.load(settings.aftersales_policy_path)
        self.knowledge = KnowledgeBase.load(settings.knowledge_path)
        self.nlu: NluClient | None = None
        self.turns: TurnProcessor | None = None
        self.nlu_error: str | None = None
        self.started = False
        """True once start-up is over (the NLU up or failed): from then on a missing part is an outage."""
        self.ocr: OcrService | None = None
        self.ocr_workers = OcrWorkers(settings.ocr_engine, settings.ocr_workers)
        """Started on the first photo (a worker takes a few seconds to load its models)."""

    async def start_store(self) -> ConversationStore:
        if self.store is not None:
            return self.store
        if self._given_store is not None:
            store = self._given_store
        elif self.settings.mongodb_uri:
            store = ConversationStore.from_uri(self.settings.mongodb_uri, self.settings.mongodb_database)
        else:
            self._embedded_mongo = EmbeddedMongo(self.settings.var_dir / "mongo")
            await self._embedded_mongo.start()
            store = ConversationStore.from_uri(self._embedded_mongo.uri, self.settings.mongodb_database)
        await store.ensure_indexes()
        self.feed.sessions = await SenderSessions.open(store.db, self.settings.sender_session_secret)
        self.leases = Leases(store.db)
        self.media.use_collection(store.media)
        self.feed.store = store
        self.orders = MongoOrderService(store.db)
        await self.orders.ensure_indexes()
        ocr_results = OcrResultStore(store.db)
        audit = AuditLog(store.db)
        self.aftersales = AfterSalesService(store.db, auditor=audit.request_steps)
        await self.aftersales.ensure_indexes()
        self.backoffice = Backoffice(
            store,
            orders=self.orders,
            aftersales=self.aftersales,
            audit=audit,
            on_queued=self._wake_outbox,
            # A caller is told of their ticket by SMS when the SMS channel is on; a call cannot be reached later.
            relay={"voice": "sms"} if any(sender.name == "sms" for sender in self.senders) else None,
            sweep_seconds=self.settings.backoffice_sweep_seconds,
            conversation_ocr=ocr_results.ids_for_conversation,
        )
        await self.backoffice.ensure_indexes()
        if self.settings.backoffice_admin_token:
            await self.backoffice.staff.ensure(
                "admin", self.settings.backoffice_admin_token, name="Administrator", roles=[Role.ADMIN]
            )
        self.tickets = self.backoffice.desk
        self.handoff = HandoffDesk(store, self.orders, self.aftersales, self.tickets, surveys=self.backoffice.surveys)
        self.pickups = PickupStore(store.db)
        await self.pickups.ensure_indexes()
        self.ocr = OcrService(self.ocr_workers, ocr_results, self.media, self.orders)
        await self.ocr.ensure_indexes()
        self.console = Console(store.db, canned_replies_path=self.settings.canned_replies_path)
        await self.console.ensure_indexes()
        self.reviews = ReviewQueue(store.db)
        await self.reviews.ensure_indexes()
        self.store = store
        return store

    def _wake_outbox(self, channel: str) -> None:
        if self.outbox is not None:
            self.outbox.wake(channel)

    async def start_nlu(self) -> NluClient:
        """The NLU the turns use: normaliser and entity rules over the Rasa server(s)."""
        if self._given_nlu is not None:
            self.nlu = self._given_nlu
            return self.nlu
        self.nlu = UnderstandingClient(
            await self.start_rasa(),
            confidence_threshold=self.settings.nlu_confidence_threshold,
            today=today_in(self.settings.timezone),
        )
        return self.nlu

    async def start_rasa(self) -> NluClient:
        """The Rasa transport alone: the configured servers, or an embedded one (trained if needed)."""
        client: NluClient
        if self.settings.rasa_urls:
            client = RasaNluClient(
                list(self.settings.rasa_urls), self.settings.rasa_token, self.settings.nlu_timeout_seconds
            )
        else:
            project = NluProject(models_dir=self.settings.models_dir, var_dir=self.settings.var_dir)
            self.settings.var_dir.mkdir(parents=True, exist_ok=True)
            model = await asyncio.to_thread(project.train)
            token = secrets.token_urlsafe(24)
            count = max(1, self.settings.rasa_servers)
            self._embedded_rasa = [
                EmbeddedRasaServer(project, model, token=token, name="rasa" if count == 1 else f"rasa-{i + 1}")
                for i in range(count)
            ]
            await asyncio.gather(*(server.start() for server in self._embedded_rasa))
            client = RasaNluClient(
                [server.url for server in self._embedded_rasa], token, self.settings.nlu_timeout_seconds
            )
        return client

    async def start(self, *, wait_for_nlu: bool = True) -> None:
        """Start the store at once and the NLU (training if needed) before or after returning.

        With ``wait_for_nlu=False`` the web server can answer ``/health`` with 503 while the
        NLU trains and starts; messages meanwhile get the dialogue's fallback.
        """
        store = await self.start_store()
        # Until the NLU is up the dialogue treats it as an outage (clarify, offer a human).
        self.turns = TurnProcessor(
            store,
            OfflineNlu("the NLU server is starting"),
            self._dialogue(store),
            media_max_bytes=self.media.max_bytes,
            tickets=self.tickets,
            leases=self.leases,
        )
        self.outbox = OutboxDispatcher(
            store,
            self.senders,
            RetryPolicy(
                base_delay=self.settings.outbox_base_delay,
                max_delay=self.settings.outbox_max_delay,
                max_attempts=self.settings.outbox_max_attempts,
            ),
            poll_interval=self.settings.outbox_poll_interval,
            leases=self.leases,
            lease_seconds=self.settings.outbox_lease_seconds,
        )
        await self.outbox.start(follow_store=True)  # resumes replies a previous run did not deliver
        if self.backoffice is not None and self.settings.backoffice_sweep_seconds > 0:
            await self.backoffice.monitor.start()
        for channel in self.channels:
            await channel.start(self.handler_for(channel))
        assert self.leases is not None
        self.receivers = ExclusiveReceivers(
            self.leases, self.channels, self.handler_for, lease_seconds=self.settings.outbox_lease_seconds
        )
        await self.receivers.start()
        if wait_for_nlu:
            await self._bring_up_nlu()
        else:
            self._nlu_start = asyncio.create_task(self._bring_up_nlu())

    async def _bring_up_nlu(self) -> None:
        assert self.turns is not None
        try:
            self.turns.nlu = await self.start_nlu()
        except Exception as exc:
            self.nlu_error = str(exc)
            self.turns.nlu = OfflineNlu(f"the NLU server failed to start: {exc}")
            log.exception("NLU failed to start; the dialogue falls back until it is fixed")
            raise
        finally:
            self.started = True
        await self.turns.recover()
        if self.settings.recovery_seconds > 0:
            self._recovery = asyncio.create_task(self._recover_periodically(), name="turn-recovery")

    async def _recover_periodically(self) -> None:
        """Answer messages another gateway process accepted but died before answering."""
        assert self.turns is not None
        while True:
            await asyncio.sleep(self.settings.recovery_seconds)
            try:
                await self.turns.recover(older_than=self.settings.recovery_after_seconds)
            except Exception:  # the store is down: the next pass tries again
                log.exception("recovery pass failed")

    async def has_inbound(self, channel: str, channel_message_id: str) -> bool:
        """Whether this channel message is stored already (False while the store is not up)."""
        if self.store is None:
            return False
        return await self.store.inbound_stored(channel, channel_message_id)

    def handler_for(self, channel: InputChannel) -> InboundHandler:
        """What a channel calls for every message: persist, run the turn, hand replies to the outbox."""

        async def on_message(message: InboundMessage) -> list[Message]:
            if self.turns is None or self.store is None:
                raise web.HTTPServiceUnavailable(text="the gateway is starting")
            self.sender_limit.check(message.channel, message.sender_id)  # before anything is stored
            replies = await self.turns(message)
            if channel.replies_in_response:
                await self.store.mark_delivered([r.id for r in replies if not r.delivered])
            elif self.outbox is not None:
                self.outbox.wake(message.channel)
            return replies

        return on_message

    def _dialogue(self, store: ConversationStore) -> DialogueEngine:
        assert self.orders is not None and self.handoff is not None
        return DialogueEngine(
            FlowContext(
                orders=self.orders,
                handoff=self.handoff,
                aftersales=self.aftersales,
                tickets=self.tickets,
                policy=self.policy,
                knowledge=self.knowledge,
                pickups=self.pickups,
                surveys=self.backoffice.surveys if self.backoffice else None,
                timezone=self.settings.timezone,
            )
        )

    async def ready(self) -> dict[str, bool]:
        store_ok = self.store is not None and await self.store.ping()
        nlu_ok = self.nlu is not None and await self.nlu.ready()
        return {"store": store_ok, "nlu": nlu_ok}

    async def seed_orders(self, path: Path) -> int:
        orders = load_orders_file(path)
        await self.start_store()
        assert self.orders is not None
        return await self.orders.upsert(orders)

    async def stop(self) -> None:
        if self.receivers is not None:
            await self.receivers.stop()
            self.receivers = None
        for channel in self.channels:
            try:
                await channel.stop()
            except Exception:
                log.exception("stopping the %s channel failed", channel.name)
        if self.backoffice is not None:
            await self.backoffice.monitor.stop()
        if self.console is not None:
            await self.console.live.stop()
        if self.outbox is not None:
            await self.outbox.stop()
            self.outbox = None
        if self._nlu_start is not None and not self._nlu_start.done():
            self._nlu_start.cancel()
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None
        self.ocr_workers.close()
        if self.nlu is not None and self.nlu is not self._given_nlu:
            await self.nlu.close()
        for server in self._embedded_rasa:
            await server.stop()
        if self.store is not None and self.store is not self._given_store:
            await self.store.close()
        if self._embedded_mongo is not None:
            await self._embedded_mongo.stop()
        self.store = None
        self.nlu = None


class GatewayBuilder:
    """Configure a :class:`Gateway` step by step; anything not given comes from settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings or Settings.from_env()
        self._store: ConversationStore | None = None
        self._nlu: NluClient | None = None
        self._channels: list[InputChannel] | None = None
        self._senders: list[OutputChannel] | None = None
        self._media: MediaStore | None = None

    def settings(self, settings: Settings) -> Self:
        self._settings = settings
        return self

    def store(self, store: ConversationStore) -> Self:
        self._store = store
        return self

    def nlu(self, client: NluClient) -> Self:
        self._nlu = client
        return self

    def channels(self, *channels: InputChannel) -> Self:
        self._channels = list(channels)
        return self

    def senders(self, *senders: OutputChannel) -> Self:
        self._senders = list(senders)
        return self

    def media(self, media: MediaStore) -> Self:
        self._media = media
        return self

    def build(self) -> Gateway:
        settings = self._settings
        media = self._media or media_store(settings)
        feed = StoreFeed()
        channels: list[InputChannel] = [
            RestInput(
                token=settings.rest_webhook_token,
                sessions=feed,
                customer_token_secret=settings.rest_customer_token_secret,
            )
        ]
        senders: list[OutputChannel] = []
        if self._channels is None or self._senders is None:
            configured = configured_channels(settings, media, feed)
            channels += [pair[0] for pair in configured]
            senders += [pair[1] for pair in configured]
        if self._channels is not None:
            channels = self._channels
        if self._senders is not None:
            senders = self._senders
        return Gateway(settings, self._store, self._nlu, channels, senders, media, feed)


def media_store(settings: Settings) -> MediaStore:
    return MediaStore(settings.media_root, max_bytes=settings.media_max_bytes, quota_bytes=settings.media_quota_bytes)


class StoreFeed:
    """What channels ask of the store, bound at start: conversation history for channels that
    replay it (app IM) or thread replies (e-mail), and the REST channel's sender sessions."""

    def __init__(self) -> None:
        self.store: ConversationStore | None = None
        self.sessions: SenderSessions | None = None

    def _store(self) -> ConversationStore:
        if self.store is None:
            raise web.HTTPServiceUnavailable(text="the gateway is starting")
        return self.store

    def _sessions(self) -> SenderSessions:
        if self.sessions is None:
            raise web.HTTPServiceUnavailable(text="the gateway is starting")
        return self.sessions

    def token_for(self, channel: str, sender: str) -> str:
        return self._sessions().token_for(channel, sender)

    def verify(self, channel: str, sender: str, token: str) -> bool:
        return self._sessions().verify(channel, sender, token)

    async def claim(self, channel: str, sender: str, channel_message_id: str) -> bool:
        return await self._sessions().claim(channel, sender, channel_message_id)

    async def channel_history(
        self, channel: str, sender_id: str, after_id: str | None = None, limit: int = 100
    ) -> list[Message]:
        return await self._store().channel_history(channel, sender_id, after_id, limit)

    async def mark_delivered(self, message_ids: list[str]) -> None:
        await self._store().mark_delivered(message_ids)

    async def mark_read(self, channel: str, sender_id: str, up_to_id: str) -> int:
        return await self._store().mark_read(channel, sender_id, up_to_id)

    async def thread_of(self, conversation_id: str, in_reply_to: str | None) -> dict[str, Any] | None:
        return await self._store().thread_of(conversation_id, in_reply_to)


def configured_channels(
    settings: Settings, media: MediaStore, feed: StoreFeed
) -> list[tuple[InputChannel, OutputChannel]]:
    """The channels whose credentials are configured (REST is always on)."""
    configured: list[tuple[InputChannel, OutputChannel]] = []
    if settings.app_im_secret:
        connections = Connections()
        configured.append((AppImInput(settings.app_im_secret, connections, media, feed), AppImOutput(connections)))
    if settings.telegram_bot_token:
        if settings.telegram_mode not in ("webhook", "polling"):
            raise SettingsError(f"TELEGRAM_MODE must be webhook or polling, not {settings.telegram_mode!r}")
        if settings.telegram_mode == "webhook" and not settings.telegram_webhook_secret:
            raise SettingsError("TELEGRAM_BOT_TOKEN in webhook mode needs TELEGRAM_WEBHOOK_SECRET")
        bot = make_bot(settings.telegram_bot_token, settings.telegram_api_base_url)
        telegram_in = TelegramInput(
            bot,
            media,
            webhook_secret=settings.telegram_webhook_secret,
            polling=settings.telegram_mode == "polling",
            public_base_url=settings.public_base_url,
        )
        configured.append((telegram_in, TelegramOutput(bot)))
    # TWILIO_AUTH_TOKEN alone may be the voice channel's (it signs voice webhooks too).
    sms_wanted = settings.twilio_from_number or (
        (settings.twilio_account_sid or settings.twilio_auth_token) and not settings.twilio_voice_number
    )
    if sms_wanted:
        if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number):
            raise SettingsError("the SMS channel needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER")
        sms_in = TwilioSmsInput(
            settings.twilio_auth_token,
            settings.twilio_account_sid,
            public_base_url=settings.public_base_url,
            media=media,
        )
        sms_out = TwilioSmsOutput(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_from_number,
            api_base_url=settings.twilio_api_base_url,
        )
        configured.append((sms_in, sms_out))
    if settings.email_addresses:
        configured.append(_email_channel(settings, media, feed))
    if settings.twilio_voice_number:
        try:
            voice = voice_channel(settings, VoiceServices(feed))
        except VoiceSettingsError as exc:
            raise SettingsError(str(exc)) from exc
        configured.append((voice, NoSender("voice")))
    return configured


class NoSender(OutputChannel):
    """For channels whose replies go back in the request (the phone: spoken in the call). An agent's
    text message cannot be spoken into a call that is over, so it fails at once, visibly."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    async def send(self, message: Message) -> str | None:
        raise DeliveryFailed(f"the {self.name} channel cannot deliver messages outside a call", permanent=True)


def _host_port(value: str, variable: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise SettingsError(f"{variable} must be host:port, not {value!r}")
    return host, int(port)


def _email_channel(settings: Settings, media: MediaStore, feed: StoreFeed) -> tuple[InputChannel, OutputChannel]:
    if not settings.email_smtp_relay:
        raise SettingsError("EMAIL_ADDRESS needs EMAIL_SMTP_RELAY (host:port) to send replies through")
    imap: ImapMailbox | None = None
    if settings.email_imap_host:
        if not (settings.email_imap_user and settings.email_imap_password):
            raise SettingsError("EMAIL_IMAP_HOST needs EMAIL_IMAP_USER and EMAIL_IMAP_PASSWORD")
        imap = ImapMailbox(
            settings.email_imap_host,
            settings.email_imap_port,
            settings.email_imap_user,
            settings.email_imap_password,
            settings.email_imap_mailbox,
            settings.email_imap_poll_seconds,
        )
    listen = _host_port(settings.email_smtp_listen, "EMAIL_SMTP_LISTEN") if settings.email_smtp_listen else None
    if listen is None and imap is None:
        raise SettingsError("e-mail needs the SMTP listener or an IMAP mailbox (EMAIL_SMTP_LISTEN=off and no IMAP)")
    inbound = EmailInput(
        list(settings.email_addresses), media, listen=listen, imap=imap, accept_domains=settings.email_accept_domains
    )
    outbound = EmailOutput(
        settings.email_addresses[0],
        _host_port(settings.email_smtp_relay, "EMAIL_SMTP_RELAY"),
        feed,
        username=settings.email_smtp_user,
        password=settings.email_smtp_password,
        start_tls=settings.email_smtp_starttls,
    )
    return inbound, outbound


class SettingsError(ValueError):
    """A channel is configured half-way; the gateway refuses to start rather than run insecurely."""
