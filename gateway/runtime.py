"""Build and run the gateway's components: store, shop, NLU, dialogue, backoffice, channels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

from backoffice import Backoffice, HandoffDesk, TicketDesk
from backoffice.audit import AuditLog
from backoffice.dispatch import Dispatcher, DownstreamWorker
from backoffice.followups import FollowUps
from backoffice.fulfilment import Fulfilment
from backoffice.order_actions import OrderActions
from backoffice.permissions import Role
from backoffice.routing.autoplan import AutoPlanner
from backoffice.routing.fleet import load_fleet
from backoffice.routing.pickups import PickupStore
from backoffice.routing.planner import RoutePlanner, thread_solver
from channels import InboundHandler, InputChannel, OutputChannel
from console import Console
from dialogue import DialogueEngine
from dialogue.flows import FlowContext
from dialogue.knowledge import KnowledgeBase
from dialogue.targets import default_embedder
from downstream import DownstreamSystems
from gateway.channel_registry import CHANNELS, identity_kinds
from gateway.channel_registry import labels as channel_labels
from gateway.downstream import Secrets, StandIns, connect
from gateway.limits import Rate, SenderRateLimit
from gateway.outbox import OutboxDispatcher, RetryPolicy
from gateway.photo_intake import PhotoIntake
from gateway.receivers import ExclusiveReceivers
from gateway.settings import Settings
from gateway.starting import wired
from gateway.turns import TurnProcessor
from gateway.voice import VoiceServices
from media_ocr.pipeline import OcrService, OcrWorkers
from media_ocr.store import OcrResultStore
from nlu import NluClient, NluProject, OfflineNlu, RasaNluClient
from nlu.server import EmbeddedRasaServer
from nlu.understanding import UnderstandingClient, today_in
from quality import ReviewQueue
from shop import MongoOrderService, load_orders_file
from shop.aftersales import AfterSalesRequest, AfterSalesService
from shop.policy import AfterSalesPolicy
from store import InboundMessage, Message
from store.embedded import EmbeddedMongo
from store.leases import Leases
from store.media import MediaStore
from store.mongo import ConversationStore
from store.rate_counts import FixedWindowCounts
from store.sessions import SenderSessions
from store.verification import LookupAttempts, VerificationAttempts

log = logging.getLogger(__name__)

SENDER_COUNTS = "sender_counts"
"""The store's collection of inbound messages per channel sender and window (the per-sender rate limit)."""


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
        feed: ChannelServices | None = None,
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.senders = senders or []
        self.media = media or media_store(settings)
        self.outbox: OutboxDispatcher | None = None
        # The IVR limits calls per caller itself (nuisance-call rejection); a turn inside a call is no flood.
        # Counted in the store (every process sees the same counts) once it is open.
        self.sender_limit = SenderRateLimit(
            Rate(settings.limits.sender_per_minute, settings.limits.sender_burst), exempt_channels=("voice",)
        )
        self.feed = feed or ChannelServices(self.media, settings.gateway.public_base_url)
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
        self.followups: FollowUps | None = None
        self.verification: VerificationAttempts | None = None
        self.lookups: LookupAttempts | None = None
        self.tickets: TicketDesk | None = None
        self.backoffice: Backoffice | None = None
        self.handoff: HandoffDesk | None = None
        self.pickups: PickupStore | None = None
        self.console: Console | None = None
        self.reviews: ReviewQueue | None = None
        # Business rules and answers: read at start so a bad edit stops the start, not a turn.
        self.policy = AfterSalesPolicy.load(settings.shop.aftersales_policy_path)
        self.knowledge = KnowledgeBase.load(settings.dialogue.knowledge_path)
        self.nlu: NluClient | None = None
        self.turns: TurnProcessor | None = None
        self.nlu_error: str | None = None
        self.started = False
        """True once start-up is over (the NLU up or failed): from then on a missing part is an outage."""
        self.serving = False
        """True once start-up has wired every part requests use (the NLU may still be on its way: the
        dialogue falls back meanwhile). Until then the web app answers 503 ``starting``."""
        self.downstream: DownstreamSystems | None = None
        """The payment centre, warehouse, courier tracking and geocoder (configured, or embedded stand-ins)."""
        self.downstream_secrets: Secrets | None = None
        self.standins: StandIns | None = None
        self.fulfilment: Fulfilment | None = None
        self.dispatcher: Dispatcher | None = None
        self.downstream_worker: DownstreamWorker | None = None
        self.autoplanner: AutoPlanner | None = None
        self.order_actions: OrderActions | None = None
        """Agents' actions on orders from the console (the services the bot uses)."""
        self.ocr: OcrService | None = None
        self.intake: PhotoIntake | None = None
        """Reads photos as they reach requests and tickets (``OCR_INTAKE``)."""
        self._planner: RoutePlanner | None = None
        self.ocr_workers = OcrWorkers(settings.ocr.engine, settings.ocr.workers, threads=settings.ocr.threads)
        """Started on the first photo (a worker takes a few seconds to load its models)."""

    async def start_store(self) -> ConversationStore:
        if self.store is not None:
            return self.store
        if self._given_store is not None:
            store = self._given_store
        elif self.settings.store.mongodb_uri:
            store = ConversationStore.from_uri(self.settings.store.mongodb_uri, self.settings.store.database)
        else:
            self._embedded_mongo = EmbeddedMongo(self.settings.var_dir / "mongo")
            await self._embedded_mongo.start()
            store = ConversationStore.from_uri(self._embedded_mongo.uri, self.settings.store.database)
        store.sender_identities = {spec.name: spec.identity for spec in CHANNELS}
        await store.ensure_indexes(identity_kinds())
        self.feed.sender_sessions = await SenderSessions.open(store.db, self.settings.channel("rest").session_secret)
        self.leases = Leases(store.db)
        self.media.use_collection(store.media)
        self.feed.store = store
        self.orders = MongoOrderService(store.db)
        await self.orders.ensure_indexes()
        ocr_results = OcrResultStore(store.db)
        audit = AuditLog(store.db)

        async def audit_and_wake(request: AfterSalesRequest) -> None:
            await audit.request_steps(request)
            self._wake_downstream()  # a step may be due downstream (a refund to submit, a parcel to send)

        self.aftersales = AfterSalesService(store.db, auditor=audit_and_wake)
        await self.aftersales.ensure_indexes()
        self.backoffice = Backoffice(
            store,
            orders=self.orders,
            aftersales=self.aftersales,
            audit=audit,
            on_queued=self._wake_outbox,
            # A caller is told of their ticket by SMS when the SMS channel is on; a call cannot be reached later.
            relay={"voice": "sms"} if any(sender.name == "sms" for sender in self.senders) else None,
            sweep_seconds=self.settings.backoffice.sweep_seconds,
            conversation_ocr=ocr_results.ids_for_conversation,
        )
        await self.backoffice.ensure_indexes()
        if self.settings.backoffice.admin_token:
            await self.backoffice.staff.ensure(
                "admin", self.settings.backoffice.admin_token, name="Administrator", roles=[Role.ADMIN]
            )
        self.tickets = self.backoffice.desk
        self.handoff = HandoffDesk(
            store, self.orders, self.aftersales, self.tickets, surveys=self.backoffice.surveys,
            notifier=self.backoffice.notifier,
        )  # fmt: skip
        self.pickups = PickupStore(store.db, on_requested=self._wake_downstream)
        await self.pickups.ensure_indexes()
        self.followups = FollowUps(store.db, on_created=self._wake_downstream)
        await self.followups.ensure_indexes()
        self.order_actions = OrderActions(
            store=store, orders=self.orders, aftersales=self.aftersales, pickups=self.pickups,
            followups=self.followups, audit=audit, notifier=self.backoffice.notifier, policy=self.policy,
            timezone=self.settings.shop.timezone,
        )  # fmt: skip
        self.verification = VerificationAttempts(store.db)
        await self.verification.ensure_indexes()
        self.lookups = LookupAttempts(store.db)
        self.sender_limit.count_with(FixedWindowCounts(store.db, SENDER_COUNTS))
        self.ocr = OcrService(self.ocr_workers, ocr_results, self.media, self.orders)
        await self.ocr.ensure_indexes()
        self.intake = PhotoIntake(store.db, self.ocr, self.aftersales, self.tickets)
        await self.intake.ensure_indexes()
        self.console = Console(store.db, canned_replies_path=self.settings.console.canned_replies_path)
        await self.console.ensure_indexes()
        self.reviews = ReviewQueue(store.db)
        await self.reviews.ensure_indexes()
        self.store = store
        return store

    def _wake_outbox(self, channel: str) -> None:
        if self.outbox is not None:
            self.outbox.wake(channel)

    def _wake_downstream(self) -> None:
        if self.downstream_worker is not None:
            self.downstream_worker.wake()

    async def start_downstream(self) -> None:
        """The payment centre, warehouse and courier (embedded stand-ins for those not configured),
        what applies their callbacks, and the loop that sends them what is due."""
        if self.downstream is not None:
            return
        assert self.store is not None and self.aftersales is not None and self.backoffice is not None
        assert self.followups is not None and self.pickups is not None and self.orders is not None
        self.downstream, self.downstream_secrets, self.standins = await connect(self.settings)
        self.fulfilment = Fulfilment(
            self.store.db,
            store=self.store,
            aftersales=self.aftersales,
            followups=self.followups,
            pickups=self.pickups,
            notifier=self.backoffice.notifier,
            tickets=self.tickets,
            warehouse=self.downstream.warehouse,
            media=self.media,
            policy=self.policy,
            timezone=self.settings.shop.timezone,
            rebook_limit=self.settings.backoffice.pickup_rebook_limit,
            on_change=self._wake_downstream,
        )
        await self.fulfilment.ensure_indexes()
        self.dispatcher = Dispatcher(
            self.store.db,
            self.downstream,
            aftersales=self.aftersales,
            followups=self.followups,
            pickups=self.pickups,
            orders=self.orders,
            fulfilment=self.fulfilment,
            leases=self.leases,
        )
        await self.dispatcher.ensure_indexes()
        passes: list[Callable[[], Awaitable[Any]]] = []
        backoffice = self.settings.backoffice
        if backoffice.autoplan:
            self.autoplanner = AutoPlanner(
                self._route_planner, self.pickups, timezone=self.settings.shop.timezone,
                delay_seconds=backoffice.autoplan_delay_seconds, time_limit=backoffice.autoplan_time_limit,
                leases=self.leases,
            )  # fmt: skip
            passes.append(self.autoplanner.run_due)
        if self.handoff is not None:
            passes.append(self.handoff.announce_positions)
        self.downstream_worker = DownstreamWorker(
            self.dispatcher, sweep_seconds=self.settings.downstream.sweep_seconds, passes=passes
        )
        await self.downstream_worker.start()
        self.downstream_worker.wake()  # whatever a previous run left due

    async def _route_planner(self) -> RoutePlanner:
        """The planner the automatic plans use (the solver in a thread: PyVRP leaves the loop free)."""
        if self._planner is None:
            assert self.store is not None
            fleet = load_fleet(self.settings.backoffice.fleet_file)
            self._planner = RoutePlanner(PickupStore(self.store.db), fleet, self.settings.var_dir, thread_solver())
            await self._planner.ensure_indexes()
        return self._planner

    async def start_nlu(self) -> NluClient:
        """The NLU the turns use: normaliser and entity rules over the Rasa server(s)."""
        if self._given_nlu is not None:
            self.nlu = self._given_nlu
            return self.nlu
        self.nlu = UnderstandingClient(
            await self.start_rasa(),
            confidence_threshold=self.settings.nlu.confidence_threshold,
            today=today_in(self.settings.shop.timezone),
        )
        return self.nlu

    async def start_rasa(self) -> NluClient:
        """The Rasa transport alone: the configured servers, or an embedded one (trained if needed)."""
        client: NluClient
        nlu = self.settings.nlu
        if nlu.rasa_urls:
            client = RasaNluClient(list(nlu.rasa_urls), nlu.rasa_token, nlu.timeout_seconds)
        else:
            project = NluProject(models_dir=nlu.models_dir, var_dir=self.settings.var_dir)
            self.settings.var_dir.mkdir(parents=True, exist_ok=True)
            model = await asyncio.to_thread(project.train)
            token = secrets.token_urlsafe(24)
            count = max(1, nlu.rasa_servers)
            self._embedded_rasa = [
                EmbeddedRasaServer(project, model, token=token, name="rasa" if count == 1 else f"rasa-{i + 1}")
                for i in range(count)
            ]
            await asyncio.gather(*(server.start() for server in self._embedded_rasa))
            client = RasaNluClient([server.url for server in self._embedded_rasa], token, nlu.timeout_seconds)
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
                base_delay=self.settings.outbox.base_delay,
                max_delay=self.settings.outbox.max_delay,
                max_attempts=self.settings.outbox.max_attempts,
            ),
            poll_interval=self.settings.outbox.poll_interval,
            leases=self.leases,
            lease_seconds=self.settings.outbox.lease_seconds,
        )
        await self.outbox.start(follow_store=True)  # resumes replies a previous run did not deliver
        await self.start_downstream()
        if self.backoffice is not None and self.settings.backoffice.sweep_seconds > 0:
            await self.backoffice.monitor.start()
        if self.intake is not None and self.settings.ocr.intake:
            await self.intake.start()
        for channel in self.channels:
            await channel.start(self.handler_for(channel))
        assert self.leases is not None
        self.receivers = ExclusiveReceivers(
            self.leases, self.channels, self.handler_for, lease_seconds=self.settings.outbox.lease_seconds
        )
        await self.receivers.start()
        self.serving = True
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
        if self.settings.gateway.recovery_seconds > 0:
            self._recovery = asyncio.create_task(self._recover_periodically(), name="turn-recovery")

    async def _recover_periodically(self) -> None:
        """Answer messages another gateway process accepted but died before answering."""
        assert self.turns is not None
        while True:
            await asyncio.sleep(self.settings.gateway.recovery_seconds)
            try:
                await self.turns.recover(older_than=self.settings.gateway.recovery_after_seconds)
            except Exception:  # the store is down: the next pass tries again
                log.exception("recovery pass failed")

    def handler_for(self, channel: InputChannel) -> InboundHandler:
        """What a channel calls for every message: persist, run the turn, hand replies to the outbox."""

        async def on_message(message: InboundMessage) -> list[Message]:
            turns, store = wired(self.turns), wired(self.store)  # wired before any channel starts
            await self.sender_limit.check(message.channel, message.sender_id)  # before anything is stored
            replies = await turns(message, replies_in_response=channel.replies_in_response)
            if channel.replies_in_response:  # a redelivery's stored replies, a media notice
                await store.mark_delivered([r.id for r in replies if not r.delivered])
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
                followups=self.followups,
                verification=self.verification,
                lookups=self.lookups,
                embed=default_embedder(),
                timezone=self.settings.shop.timezone,
                channel_labels=channel_labels(),
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
        """Stop everything started, in order; a part that fails or hangs is logged and the rest
        still stops (a leaked sweep would otherwise run on against a closed store)."""
        if self.receivers is not None:
            await _stop_part("receivers", self.receivers.stop())
            self.receivers = None
        for channel in self.channels:
            await _stop_part(f"the {channel.name} channel", channel.stop())
        if self.backoffice is not None:
            await _stop_part("the SLA monitor", self.backoffice.monitor.stop())
        if self.downstream_worker is not None:
            await _stop_part("the downstream worker", self.downstream_worker.stop())
            self.downstream_worker = None
        if self.downstream is not None:
            await _stop_part("the downstream clients", self.downstream.close())
            self.downstream = None
        if self.standins is not None:
            await _stop_part("the stand-ins", self.standins.stop())
            self.standins = None
        if self.console is not None:
            await _stop_part("the console's live feed", self.console.live.stop())
        if self.intake is not None:
            await _stop_part("the photo intake", self.intake.stop())
        if self.outbox is not None:
            await _stop_part("the outbox", self.outbox.stop())
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
            await _stop_part("the NLU client", self.nlu.close())
        for server in self._embedded_rasa:
            await _stop_part("the embedded Rasa server", server.stop())
        if self.store is not None and self.store is not self._given_store:
            await self.store.close()
        if self._embedded_mongo is not None:
            await self._embedded_mongo.stop()
        self.store = None
        self.nlu = None


STOP_PART_SECONDS = 15.0
"""How long one part may take to stop before the rest are stopped without it."""


async def _stop_part(name: str, stopping: Awaitable[None]) -> None:
    try:
        async with asyncio.timeout(STOP_PART_SECONDS):
            await stopping
    except TimeoutError:
        log.error("stopping %s took more than %.0f s; stopping the rest without it", name, STOP_PART_SECONDS)
    except Exception:
        log.exception("stopping %s failed", name)


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
        """The gateway with every channel the settings turn on (REST always), from the registry."""
        settings = self._settings
        media = self._media or media_store(settings)
        services = ChannelServices(media, settings.gateway.public_base_url)
        channels: list[InputChannel] = []
        senders: list[OutputChannel] = []
        for spec in CHANNELS:
            section = settings.channel(spec.name)
            if not section.enabled:
                continue
            inbound, outbound = spec.build(section, services)
            channels.append(inbound)
            if outbound is not None:
                senders.append(outbound)
        if self._channels is not None:
            channels = self._channels
        if self._senders is not None:
            senders = self._senders
        return Gateway(settings, self._store, self._nlu, channels, senders, media, services)


def media_store(settings: Settings) -> MediaStore:
    return MediaStore(settings.media_root, max_bytes=settings.media.max_bytes, quota_bytes=settings.media.quota_bytes)


class ChannelServices:
    """What the gateway lends its channels (:class:`channels.spec.ChannelDeps` and the protocols
    channels extend it with), bound to the store at start: the media store, the public address,
    conversation history for channels that replay it (app IM) or thread replies (e-mail), the
    REST channel's sender sessions, the inbound-key check, and the phone line's call records."""

    def __init__(self, media: MediaStore, public_base_url: str | None = None) -> None:
        self._media = media
        self._public_base_url = public_base_url
        self.store: ConversationStore | None = None
        self.sender_sessions: SenderSessions | None = None
        """The store's sessions, bound at start; :attr:`sessions` is what the REST channel holds."""
        self._voice = VoiceServices(self)

    @property
    def media(self) -> MediaStore:
        return self._media

    @property
    def public_base_url(self) -> str | None:
        return self._public_base_url

    @property
    def feed(self) -> ChannelServices:
        return self

    @property
    def voice(self) -> VoiceServices:
        return self._voice

    @property
    def sessions(self) -> ChannelServices:
        return self

    def _store(self) -> ConversationStore:
        return wired(self.store)

    def _sessions(self) -> SenderSessions:
        return wired(self.sender_sessions)

    def token_for(self, channel: str, sender: str) -> str:
        return self._sessions().token_for(channel, sender)

    def verify(self, channel: str, sender: str, token: str) -> bool:
        return self._sessions().verify(channel, sender, token)

    async def claim(self, channel: str, sender: str, channel_message_id: str) -> bool:
        return await self._sessions().claim(channel, sender, channel_message_id)

    async def inbound_stored(self, channel: str, channel_message_id: str) -> bool:
        """Whether this channel message is stored already (False while the store is not up)."""
        if self.store is None:
            return False
        return await self.store.inbound_stored(channel, channel_message_id)

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
