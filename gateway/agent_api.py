"""The agents' HTTP API: take a waiting conversation, read it with the bot's summary, answer on
the customer's own channel, hand it back to the bot; look up a customer and merge two
customers who turn out to be one person (audited).

Bearer-token protected (``AGENT_API_TOKEN``); the routes answer 503 while no token is set.
Roles, sign-in and the console come with the backoffice and console work; this is the API they
drive. The bot stays silent while an agent owns a conversation (see ``gateway.turns``).
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from channels.base import json_response
from store import ConversationState, Event, MergeRefused, OutboundMessage
from store.models import MAX_TEXT_CHARS

if TYPE_CHECKING:
    from gateway.runtime import Gateway
    from gateway.staff_auth import StaffAuth

PREFIX = "/api/agent"
MAX_BODY = 64 * 1024


def _error(status: int, code: str, detail: str) -> web.Response:
    return json_response({"error": code, "detail": detail}, status=status)


class AgentApi:
    def __init__(self, gateway: Gateway, auth: StaffAuth) -> None:
        self.gateway = gateway
        self.auth = auth

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/queue", self.queue),
            web.get(f"{PREFIX}/conversations/{{conversation_id}}", self.conversation),
            web.post(f"{PREFIX}/conversations/{{conversation_id}}/claim", self.claim),
            web.post(f"{PREFIX}/conversations/{{conversation_id}}/messages", self.reply),
            web.post(f"{PREFIX}/conversations/{{conversation_id}}/close", self.close),
            web.get(f"{PREFIX}/customers/{{customer_id}}", self.customer),
            web.get(f"{PREFIX}/customers/{{customer_id}}/requests", self.requests),
            web.post(f"{PREFIX}/customers/merge", self.merge),
        ]

    def _refusal(self, request: web.Request) -> web.Response | None:
        token = self.gateway.settings.agent_api_token
        if not token:
            return _error(503, "agent_api_disabled", "set AGENT_API_TOKEN to enable the agent API")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "unauthorized", "a valid 'Authorization: Bearer <token>' header is required")
        if self.gateway.store is None:
            return _error(503, "starting", "the gateway is starting")
        return None

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "too_large", f"the body is larger than {MAX_BODY} bytes")
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError as exc:
            return _error(400, "invalid_json", f"the body is not JSON: {exc.msg}")
        if not isinstance(body, dict):
            return _error(400, "invalid_payload", "expected a JSON object")
        agent = body.get("agent")
        if not isinstance(agent, str) or not 1 <= len(agent) <= 64:
            return _error(400, "missing_field", "'agent' (the agent's id) is required")
        return body

    async def queue(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        store = self.gateway.store
        assert store is not None
        waiting = await store.waiting_conversations()
        return json_response(
            {
                "waiting": [
                    {
                        "conversation_id": c.id,
                        "channel": c.channel,
                        "customer_id": c.customer_id,
                        "handed_off_at": c.handed_off_at.isoformat() if c.handed_off_at else None,
                        "reason": c.handoff_reason,
                        "summary": c.handoff_summary,
                    }
                    for c in waiting
                ]
            }
        )

    async def conversation(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        store = self.gateway.store
        assert store is not None
        conversation = await store.get_conversation(request.match_info["conversation_id"])
        if conversation is None:
            return _error(404, "not_found", "no such conversation")
        history = await store.history(conversation.id, limit=500)
        return json_response(
            {
                "conversation": conversation.model_dump(mode="json", exclude={"slots"}),
                "messages": [m.model_dump(mode="json", exclude={"understanding"}) for m in history],
            }
        )

    async def claim(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        store = self.gateway.store
        assert store is not None
        conversation_id = request.match_info["conversation_id"]
        claimed = await store.claim_conversation(conversation_id, body["agent"])
        if claimed is None:
            current = await store.get_conversation(conversation_id)
            if current is None:
                return _error(404, "not_found", "no such conversation")
            if current.state is ConversationState.AGENT and current.agent_id == body["agent"]:
                claimed = current  # a retried claim by the same agent
            else:
                return _error(409, "not_waiting", f"the conversation is {current.state.value}")
        await store.log_event(
            Event(
                name="agent_claimed",
                conversation_id=claimed.id,
                customer_id=claimed.customer_id,
                channel=claimed.channel,
                data={"agent": body["agent"]},
            )
        )
        return json_response({"conversation": claimed.model_dump(mode="json", exclude={"slots"})})

    async def reply(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
            return _error(400, "invalid_field", f"'text' must be 1–{MAX_TEXT_CHARS} characters")
        client_id = body.get("client_message_id")
        if client_id is not None and (not isinstance(client_id, str) or not 1 <= len(client_id) <= 128):
            return _error(400, "invalid_field", "'client_message_id' must be a string of 1–128 characters")
        store = self.gateway.store
        assert store is not None
        conversation = await store.get_conversation(request.match_info["conversation_id"])
        if conversation is None:
            return _error(404, "not_found", "no such conversation")
        if conversation.state is not ConversationState.AGENT or conversation.agent_id != body["agent"]:
            return _error(409, "not_owner", "claim the conversation before answering it")
        message = await store.record_outbound(
            OutboundMessage(
                channel=conversation.channel,
                recipient_id=conversation.sender_id,
                conversation_id=conversation.id,
                text=text.strip(),
                author=f"agent:{body['agent']}",
            ),
            customer_id=conversation.customer_id,
            sequence=0,
            key=f"agent:{conversation.id}:{client_id}" if client_id else None,
        )
        if self.gateway.outbox is not None:
            self.gateway.outbox.wake(conversation.channel)
        return json_response({"message": message.model_dump(mode="json")}, status=201)

    async def customer(self, request: web.Request) -> web.Response:
        """Who the customer is on every channel, and their conversations."""
        if (refused := self._refusal(request)) is not None:
            return refused
        store = self.gateway.store
        assert store is not None
        customer = await store.get_customer(request.match_info["customer_id"])
        if customer is None:
            return _error(404, "not_found", "no such customer")
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
        if (refused := self._refusal(request)) is not None:
            return refused
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        source, target, reason = body.get("source_id"), body.get("target_id"), body.get("reason")
        for name, value in (("source_id", source), ("target_id", target), ("reason", reason)):
            if not isinstance(value, str) or not 1 <= len(value) <= 500:
                return _error(400, "missing_field", f"'{name}' is required")
        store = self.gateway.store
        assert store is not None and isinstance(source, str) and isinstance(target, str)
        for customer_id in (source, target):
            if await store.get_customer(customer_id) is None:
                return _error(404, "not_found", f"no customer {customer_id}")
        try:
            merged = await store.merge_customers(source, target, actor=f"agent:{body['agent']}", reason=str(reason))
        except MergeRefused as exc:
            return _error(409, "merge_refused", str(exc))
        return json_response({"customer": merged.model_dump(mode="json")})

    async def requests(self, request: web.Request) -> web.Response:
        """A customer's after-sales requests with both timelines: the agent's (every step, actor
        and note) and the customer's (the plain stages the bot tells them)."""
        if (refused := self._refusal(request)) is not None:
            return refused
        aftersales = self.gateway.aftersales
        assert aftersales is not None
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

    async def close(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        store = self.gateway.store
        assert store is not None
        conversation = await store.get_conversation(request.match_info["conversation_id"])
        if conversation is None:
            return _error(404, "not_found", "no such conversation")
        if conversation.state is ConversationState.AGENT and conversation.agent_id != body["agent"]:
            return _error(403, "not_owner", "another agent owns this conversation")
        keep = {k: v for k, v in conversation.slots.items() if k in ("last_order_id", "verified_orders")}
        returned = await store.return_to_bot(conversation.id, slots=keep)
        if returned is None:
            return _error(409, "not_with_agent", f"the conversation is {conversation.state.value}")
        await store.log_event(
            Event(
                name="agent_closed",
                conversation_id=conversation.id,
                customer_id=conversation.customer_id,
                channel=conversation.channel,
                data={"agent": body["agent"], "resolution": str(body.get("resolution", ""))[:500]},
            )
        )
        return json_response({"conversation": returned.model_dump(mode="json", exclude={"slots"})})
