"""The agents' HTTP API: the waiting queue and one's own conversations, the workspace of one
conversation (the customer's whole history across channels, attachments with what OCR read,
the bot's summary, orders, requests, tickets, notes, canned replies, who else is looking),
taking it, answering on the customer's own channel, internal notes, transfer to a colleague or
a skill group, handing it back to the bot or closing it with a survey; customer look-up and
merging two customers who turn out to be one person (audited).

Staff sign in as for the backoffice (bearer token or console session, ``gateway.staff_auth``)
and need the ``handle_conversations`` permission; the agent is then the signed-in member. An
integration may instead use the service token ``AGENT_API_TOKEN`` and name the agent in the
body. The bot stays silent while an agent owns a conversation (see ``gateway.turns``).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from backoffice.handoff import AgentActionRefused, HandoffDesk
from backoffice.permissions import Permission, Role
from channels.base import json_response
from channels.operations import Operation, Reply, json_body, route
from errors import Forbidden, NotFound, UserError
from gateway.openapi import STAFF, read_json_object
from gateway.starting import wired
from store.models import MAX_TEXT_CHARS, Conversation, Message

if TYPE_CHECKING:
    from gateway.runtime import Gateway
    from gateway.staff_auth import StaffAuth

PREFIX = "/api/agent"
MAX_BODY = 64 * 1024
HISTORY_CONVERSATIONS = 20
HISTORY_MESSAGES = 300
INLINE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BYTES = Reply(media_type="*/*", description="the bytes")
ID = {"type": "string", "minLength": 1, "maxLength": 64}
AGENT = {"type": "string", "maxLength": 64, "description": "with the service token"}
CLAIM = {"type": "object", "properties": {"agent": AGENT}}
REPLY = {"type": "object", "required": ["text"], "properties": {
    "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
    "client_message_id": {"type": "string", "minLength": 1, "maxLength": 128},
    "agent": {"type": "string", "maxLength": 64}}}  # fmt: skip
NOTE = {"type": "object", "required": ["text"], "properties": {
    "text": {"type": "string", "minLength": 1, "maxLength": 4000}, "agent": {"type": "string"}}}  # fmt: skip
TRANSFER = {"type": "object", "properties": {
    "to_agent": {"type": "string", "maxLength": 64}, "queue": {"type": "string", "maxLength": 64},
    "reason": {"type": "string", "maxLength": 500}, "agent": {"type": "string"}}}  # fmt: skip
CLOSE = {"type": "object", "properties": {
    "resolution": {"type": "string", "maxLength": 2000}, "survey": {"type": "boolean"},
    "agent": {"type": "string"}}}  # fmt: skip
MERGE = {"type": "object", "required": ["source_id", "target_id", "reason"], "properties": {
    "source_id": ID, "target_id": ID, "reason": {"type": "string", "minLength": 1, "maxLength": 500},
    "agent": {"type": "string"}}}  # fmt: skip


def _conversation_view(conversation: Conversation) -> dict[str, Any]:
    view = conversation.model_dump(mode="json", exclude={"slots"})
    handed = conversation.handed_off_at
    if handed is not None:
        handed = handed if handed.tzinfo else handed.replace(tzinfo=UTC)
        view["waiting_s"] = max(0, int((datetime.now(UTC) - handed).total_seconds()))
    return view


def _message_view(message: Message) -> dict[str, Any]:
    view = message.model_dump(mode="json", exclude={"understanding", "metadata", "quick_replies"})
    understood = message.understanding or {}
    if understood.get("intent"):
        view["intent"] = understood["intent"]
        view["confidence"] = understood.get("confidence")
    return view


class AgentApi:
    def __init__(self, gateway: Gateway, auth: StaffAuth) -> None:
        self.gateway = gateway
        self.auth = auth

    def routes(self) -> list[web.RouteDef]:
        c, customer = f"{PREFIX}/conversations/{{conversation_id}}", f"{PREFIX}/customers/{{customer_id}}"
        return [
            self._route("GET", f"{PREFIX}/queue", self.queue, "Waiting conversations and the agent's own"),
            self._route("GET", f"{PREFIX}/agents", self.agents, "Colleagues and skill groups to transfer to"),
            self._route("GET", c, self.conversation, "A conversation and its messages"),
            self._route("GET", f"{c}/workspace", self.workspace, "Everything the conversation view shows"),
            self._route("POST", f"{c}/claim", self.claim, "Take a waiting conversation", CLAIM),
            self._route("POST", f"{c}/messages", self.reply, "Answer the customer on their channel", REPLY, 201),
            self._route("POST", f"{c}/notes", self.note, "An internal note", NOTE, 201),
            self._route("POST", f"{c}/transfer", self.transfer, "To a colleague or a skill group", TRANSFER),
            self._route("POST", f"{c}/close", self.close, "Hand back to the bot (optionally with a survey)", CLOSE),
            self._route("GET", f"{PREFIX}/media/{{media_id}}", self.media, "A customer's photo or file", reply=BYTES),
            self._route("GET", customer, self.customer, "A customer on every channel"),
            self._route("GET", f"{customer}/requests", self.requests, "A customer's after-sales requests"),
            self._route("POST", f"{PREFIX}/customers/merge", self.merge, "Fold one customer into another (audited)",
                        MERGE),
        ]  # fmt: skip

    # -- plumbing -------------------------------------------------------------------------

    def _route(
        self,
        method: str,
        path: str,
        handler: Handler,
        summary: str,
        body: dict[str, Any] | None = None,
        success: int = 200,
        *,
        reply: Reply | None = None,
    ) -> web.RouteDef:
        """Staff with ``handle_conversations``, or the service token; a JSON body up to :data:`MAX_BODY`."""
        operation = Operation(
            method, path, summary, "agent", body=json_body(body, MAX_BODY) if body else None,
            replies=(reply or Reply(success),), errors=(400, 401, 403, 404, 409, 413, 503),
            codes={403: ("forbidden", "not_owner")}, security=(STAFF,),
        )  # fmt: skip
        return route(operation, self._guard(handler))

    @staticmethod
    def _guard(handler: Handler) -> Handler:
        """The desk's refusals as the API answers them: ``not_found`` is a 404, another agent's
        conversation a 403 ``not_owner``, the rest conflicts (409, the reason as the code). Every
        other error goes to the app's middleware as it is."""

        async def serve(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except AgentActionRefused as exc:
                if exc.reason == "not_found":
                    raise NotFound(exc.message) from exc
                if exc.reason == "held_by_another":
                    raise Forbidden(exc.message, code="not_owner") from exc
                raise

        return serve

    async def _agent(self, request: web.Request) -> str | None:
        """The signed-in staff member acting; None under the service token (the body names the agent)."""
        token = self.gateway.settings.backoffice.agent_api_token
        given = request.headers.get("Authorization", "")
        if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return None
        caller = await self.auth.caller(request)
        caller.member.actor().require(Permission.HANDLE_CONVERSATIONS, "working on conversations")
        return caller.member.id

    async def _authorised_body(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        # Authenticate first: a stranger learns nothing from the body's validation.
        agent = await self._agent(request)
        body = await read_json_object(request, MAX_BODY)
        if agent is None:
            named = body.get("agent")
            if not isinstance(named, str) or not 1 <= len(named) <= 64:
                raise UserError("'agent' (the agent's id) is required with the service token", code="missing_field")
            agent = named
        return agent, body

    @property
    def desk(self) -> HandoffDesk:
        return wired(self.gateway.handoff)

    async def _conversation(self, request: web.Request) -> Conversation:
        store = wired(self.gateway.store)
        conversation = await store.get_conversation(request.match_info["conversation_id"][:64])
        if conversation is None:
            raise NotFound("no such conversation")
        return conversation

    # -- queue and colleagues -------------------------------------------------------------

    async def queue(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        store = wired(self.gateway.store)
        waiting = await store.waiting_conversations()
        mine = await store.agent_conversations(agent) if agent is not None else []
        return json_response(
            {
                "waiting": [
                    {
                        **_conversation_view(c),
                        "conversation_id": c.id,
                        "position": n,
                        "reason": c.handoff_reason,
                        "summary": c.handoff_summary,
                    }
                    for n, c in enumerate(waiting, start=1)
                ],
                "mine": [_conversation_view(c) for c in mine],
                "counts": {"waiting": len(waiting), "mine": len(mine)},
            }
        )

    async def agents(self, request: web.Request) -> web.Response:
        """Colleagues a conversation can be transferred to, and the skill groups."""
        agent = await self._agent(request)
        backoffice = wired(self.gateway.backoffice)
        everyone = await backoffice.staff.all()
        handlers = [
            m
            for m in everyone
            if not m.disabled and m.id != agent and (Role.CUSTOMER_SERVICE in m.roles or Role.DISPATCHER in m.roles)
        ]
        queues = (await backoffice.config.tickets()).queues
        return json_response(
            {
                "agents": [{"id": m.id, "name": m.name, "online": m.online} for m in handlers],
                "queues": [{"id": q, "labels": labels} for q, labels in queues.items()],
            }
        )

    # -- one conversation ----------------------------------------------------------------

    async def conversation(self, request: web.Request) -> web.Response:
        await self._agent(request)
        store = wired(self.gateway.store)
        conversation = await self._conversation(request)
        history = await store.history(conversation.id, limit=500)
        return json_response(
            {
                "conversation": conversation.model_dump(mode="json", exclude={"slots"}),
                "messages": [m.model_dump(mode="json", exclude={"understanding"}) for m in history],
            }
        )

    async def workspace(self, request: web.Request) -> web.Response:
        """Everything the conversation view shows, in one call."""
        agent = await self._agent(request)
        gateway = self.gateway
        store, console = wired(gateway.store), wired(gateway.console)
        conversation = await self._conversation(request)
        language = request.query.get("lang", "zh") if request.query.get("lang") in ("zh", "en") else "zh"
        conversations = await store.customer_conversations(conversation.customer_id, limit=HISTORY_CONVERSATIONS)
        if all(c.id != conversation.id for c in conversations):
            conversations.append(conversation)
        messages: list[Message] = []
        for other in conversations:
            messages.extend(await store.history(other.id, limit=HISTORY_MESSAGES))
        messages.sort(key=lambda m: m.id)  # ObjectId order: the order they were stored
        media_ids = [a.media_id for m in messages for a in m.attachments if a.media_id]
        ocr = await gateway.ocr.results.for_media(media_ids) if gateway.ocr is not None and media_ids else {}
        profile = await self.desk.summarise(
            conversation.id, customer_id=conversation.customer_id, reason=conversation.handoff_reason or ""
        )
        notes = await console.notes.for_conversations([c.id for c in conversations])
        customer = await store.get_customer(conversation.customer_id)
        order_id = (conversation.slots or {}).get("last_order_id")
        return json_response(
            {
                "me": agent,
                "conversation": _conversation_view(conversation),
                "customer": customer.model_dump(mode="json") if customer else None,
                "conversations": [_conversation_view(c) for c in conversations],
                "messages": [
                    {
                        **_message_view(m),
                        "attachments": [
                            {
                                **a.model_dump(mode="json"),
                                "url": f"{PREFIX}/media/{a.media_id}" if a.media_id else a.url,
                                "inline": (a.content_type or "") in INLINE_IMAGE_TYPES,
                                "ocr": _ocr_view(ocr.get(a.media_id or "")),
                            }
                            for a in m.attachments
                        ],
                    }
                    for m in messages
                ],
                "notes": [n.model_dump(mode="json") for n in notes],
                "bot_summary": conversation.handoff_summary,
                "profile": {k: profile[k] for k in ("customer", "orders", "aftersales_requests", "tickets", "intents")},
                "canned_replies": console.canned.rendered(
                    language, name=customer.name if customer else None, order_id=order_id
                ),
                "present": await console.presence.present(conversation.id),
            }
        )

    async def claim(self, request: web.Request) -> web.Response:
        agent, _ = await self._authorised_body(request)
        claimed = await self.desk.claim(request.match_info["conversation_id"][:64], agent)
        return json_response({"conversation": claimed.model_dump(mode="json", exclude={"slots"})})

    async def reply(self, request: web.Request) -> web.Response:
        agent, body = await self._authorised_body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
            raise UserError(f"'text' must be 1–{MAX_TEXT_CHARS} characters", code="invalid_field")
        client_id = body.get("client_message_id")
        if client_id is not None and (not isinstance(client_id, str) or not 1 <= len(client_id) <= 128):
            raise UserError("'client_message_id' must be a string of 1–128 characters", code="invalid_field")
        conversation = await self._conversation(request)
        message = await self.desk.answer(conversation, agent, text, client_message_id=client_id)
        if self.gateway.outbox is not None:
            self.gateway.outbox.wake(conversation.channel)
        return json_response({"message": message.model_dump(mode="json")}, status=201)

    async def note(self, request: web.Request) -> web.Response:
        """An internal note: staff see it beside the conversation; the customer never does."""
        agent, body = await self._authorised_body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 4000:
            raise UserError("'text' must be 1–4000 characters", code="invalid_field")
        conversation = await self._conversation(request)
        console, backoffice = wired(self.gateway.console), wired(self.gateway.backoffice)
        member = await backoffice.staff.get(agent)
        note = await console.notes.add(
            conversation.id, conversation.customer_id, agent, member.name if member else agent, text
        )
        return json_response({"note": note.model_dump(mode="json")}, status=201)

    async def transfer(self, request: web.Request) -> web.Response:
        """To a colleague (``agent``) or back to the waiting queue of a skill group (``queue``)."""
        agent, body = await self._authorised_body(request)
        to_agent, queue, reason = body.get("to_agent"), body.get("queue"), body.get("reason", "")
        if (to_agent is None) == (queue is None):
            raise UserError("give exactly one of 'to_agent' or 'queue'", code="invalid_field")
        if not isinstance(reason, str) or len(reason) > 500:
            raise UserError("'reason' must be at most 500 characters", code="invalid_field")
        backoffice = wired(self.gateway.backoffice)
        if to_agent is not None:
            colleague = await backoffice.staff.get(str(to_agent)[:64])
            if colleague is None or colleague.disabled or not colleague.actor().has(Permission.HANDLE_CONVERSATIONS):
                raise UserError(f"{to_agent} cannot take conversations", code="invalid_field")
        if queue is not None and queue not in (await backoffice.config.tickets()).queues:
            raise UserError(f"no skill group {queue}", code="invalid_field")
        conversation = await self._conversation(request)
        moved = await self.desk.transfer(
            conversation, agent, to_agent=str(to_agent) if to_agent else None, queue=queue, reason=reason
        )
        return json_response({"conversation": _conversation_view(moved)})

    async def close(self, request: web.Request) -> web.Response:
        """Hand the conversation back to the bot; with ``survey: true`` the customer is asked to rate it."""
        agent, body = await self._authorised_body(request)
        conversation = await self._conversation(request)
        returned, survey = await self.desk.hand_back(
            conversation, agent, resolution=str(body.get("resolution", "")), survey=body.get("survey") is True
        )
        if survey is not None and self.gateway.outbox is not None:
            self.gateway.outbox.wake(conversation.channel)
        return json_response(
            {
                "conversation": returned.model_dump(mode="json", exclude={"slots"}),
                "survey": survey.model_dump(mode="json") if survey else None,
            }
        )

    async def media(self, request: web.Request) -> web.StreamResponse:
        """A customer's photo or file, for staff only."""
        await self._agent(request)
        media_id = request.match_info["media_id"]
        described = await self.gateway.media.describe(media_id)
        data = await self.gateway.media.get(media_id) if described else None
        if described is None or data is None:
            raise NotFound("no such media")
        content_type = described.content_type or "application/octet-stream"
        inline = content_type in INLINE_IMAGE_TYPES
        return web.Response(
            body=data,
            content_type=content_type if inline else "application/octet-stream",
            headers={
                "Content-Disposition": "inline" if inline else "attachment",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=3600",
            },
        )

    # -- customers ------------------------------------------------------------------------

    async def customer(self, request: web.Request) -> web.Response:
        """Who the customer is on every channel, and their conversations."""
        await self._agent(request)
        store = wired(self.gateway.store)
        customer = await store.get_customer(request.match_info["customer_id"])
        if customer is None:
            raise NotFound("no such customer")
        conversations = await store.customer_conversations(customer.id, limit=50)
        return json_response(
            {
                "customer": customer.model_dump(mode="json"),
                "conversations": [
                    c.model_dump(mode="json", exclude={"slots", "handoff_summary"}) for c in conversations
                ],
            }
        )

    async def merge(self, request: web.Request) -> web.Response:
        """Fold one customer into another (the agent confirmed they are the same person): explicit,
        with the agent and reason in the ``customers_merged`` audit event."""
        agent, body = await self._authorised_body(request)
        source, target, reason = body.get("source_id"), body.get("target_id"), body.get("reason")
        for name, value in (("source_id", source), ("target_id", target), ("reason", reason)):
            if not isinstance(value, str) or not 1 <= len(value) <= 500:
                raise UserError(f"'{name}' is required", code="missing_field")
        store = wired(self.gateway.store)
        assert isinstance(source, str) and isinstance(target, str)
        for customer_id in (source, target):
            if await store.get_customer(customer_id) is None:
                raise NotFound(f"no customer {customer_id}")
        merged = await store.merge_customers(source, target, actor=f"agent:{agent}", reason=str(reason))
        return json_response({"customer": merged.model_dump(mode="json")})

    async def requests(self, request: web.Request) -> web.Response:
        """A customer's after-sales requests with both timelines: the agent's (every step, actor
        and note) and the customer's (the plain stages the bot tells them)."""
        await self._agent(request)
        aftersales = wired(self.gateway.aftersales)
        language = request.query.get("lang", "zh")
        found = await aftersales.for_customer(request.match_info["customer_id"])
        return json_response(
            {
                "requests": [
                    {
                        **r.model_dump(mode="json", exclude={"timeline"}),
                        "agent_timeline": r.agent_timeline(language),
                        "customer_timeline": [
                            {"label": s.label, "at": s.at.isoformat()} for s in r.customer_timeline(language)
                        ],
                    }
                    for r in found
                ]
            }
        )


def _ocr_view(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    dumped = result.model_dump(mode="json")
    return {
        "id": result.id,
        "kind": dumped.get("kind"),
        "document_type": dumped.get("document_type"),
        "fields": dumped.get("fields", {}),
        "needs_review": result.needs_review,
    }
