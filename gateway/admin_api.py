"""The administrators' HTTP API: look a customer up and merge two customers explicitly.

``GET /api/customers/{id}`` and ``POST /api/customers/merge``, bearer-token protected by
``ADMIN_API_TOKEN`` (503 while unset). A merge is never guessed: a person (``actor``) asks for
it with a ``reason``, and ``store.merge_customers`` journals both in a ``customers_merged``
event before it moves anything.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from channels.base import json_response
from store import MergeRefused

if TYPE_CHECKING:
    from gateway.runtime import Gateway

PREFIX = "/api/customers"
MAX_BODY = 16 * 1024
MAX_FIELD = 500


def _error(status: int, code: str, detail: str, **extra: Any) -> web.Response:
    return json_response({"error": code, "detail": detail, **extra}, status=status)


class AdminApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def routes(self) -> list[web.RouteDef]:
        # merge before {customer_id} so "merge" is never read as an id (POST vs GET anyway)
        return [
            web.post(f"{PREFIX}/merge", self.merge),
            web.get(f"{PREFIX}/{{customer_id}}", self.customer),
        ]

    def _refusal(self, request: web.Request) -> web.Response | None:
        token = self.gateway.settings.admin_api_token
        if not token:
            return _error(503, "admin_api_disabled", "set ADMIN_API_TOKEN to enable the customer admin API")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "unauthorized", "a valid 'Authorization: Bearer <token>' header is required")
        if self.gateway.store is None:
            return _error(503, "starting", "the gateway is starting")
        return None

    async def customer(self, request: web.Request) -> web.Response:
        """The customer's identities on every channel and their conversations."""
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
                "identities": customer.model_dump(mode="json").get("identities", []),
                "conversations": [
                    c.model_dump(mode="json", exclude={"slots", "handoff_summary"}) for c in conversations
                ],
            }
        )

    async def merge(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "too_large", f"the body is larger than {MAX_BODY} bytes")
        try:
            body = json.loads(await request.text() or "{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, "invalid_json", f"the body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "invalid_payload", "expected a JSON object")
        fields: dict[str, str] = {}
        for name in ("source_id", "target_id", "reason", "actor"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_FIELD:
                return _error(400, "missing_field", f"'{name}' is required (1–{MAX_FIELD} characters)", field=name)
            fields[name] = value.strip()
        store = self.gateway.store
        assert store is not None
        if fields["source_id"] == fields["target_id"]:
            return _error(409, "merge_refused", "a customer cannot be merged into itself")
        for name in ("source_id", "target_id"):
            if await store.get_customer(fields[name]) is None:
                return _error(404, "not_found", f"no customer {fields[name]}", field=name)
        try:
            merged = await store.merge_customers(
                fields["source_id"], fields["target_id"], actor=f"admin:{fields['actor']}", reason=fields["reason"]
            )
        except MergeRefused as exc:
            return _error(409, "merge_refused", str(exc))
        return json_response({"customer": merged.model_dump(mode="json")})
