"""The backoffice's HTTP API (``/api/backoffice/…``): tickets for staff, the to-claim pool,
alerts, configuration, staff accounts and the audit check; each route declares its OpenAPI
facts where it is registered (``_register``), for ``/api/openapi.json``.

Staff sign in with a bearer token (``backoffice.staff``) or, from the console, a session cookie
plus the CSRF header (``gateway.staff_auth``); every route checks the caller's roles
and queues through ``backoffice.workflow`` / ``backoffice.admin``, so the API enforces what the
console shows. Errors are the project's JSON ``{"error": {"code", "message", "details"}}`` (a bad
field named in ``details.field``), answered by the app's middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from backoffice.assignment import assign_pool, held_counts
from backoffice.lifecycle import TicketStatus, TicketType, label
from backoffice.order_actions import OrderActions
from backoffice.passwords import MAX_LENGTH as PASSWORD_MAX
from backoffice.permissions import Permission, Role, can_view
from backoffice.priority import Priority
from backoffice.staff import STAFF_ID_PATTERN, StaffMember
from backoffice.ticket_record import Ticket
from backoffice.workflow import VIEWS, ActionInvalid, allowed_actions
from channels.base import json_response
from channels.operations import Operation, Param, Reply, Schema, route
from errors import Forbidden, GatewayError, NotFound, TooManyRequests, UserError
from gateway.limits import client_address
from gateway.openapi import STAFF, read_body
from gateway.staff_auth import StaffAuth
from gateway.starting import wired
from shop.aftersales import AfterSalesRequest

if TYPE_CHECKING:
    from backoffice import Backoffice
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)

PREFIX = "/api/backoffice"
LANGUAGES = ("zh", "en")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketSubmission(_Body):
    customer_id: str = Field(min_length=1, max_length=64)
    summary: str = Field(min_length=1, max_length=2000)
    type: TicketType | None = Field(None, description="left out: classified from the summary and conversation")
    order_id: str | None = Field(None, pattern=r"^\d{6,24}$")
    conversation_id: str | None = Field(None, min_length=1, max_length=64)
    amount: float = Field(0.0, ge=0, le=1_000_000)
    reason: str | None = Field(None, max_length=100)
    evidence: list[str] = Field(default_factory=list, max_length=20)
    ocr_result_ids: list[str] = Field(default_factory=list, max_length=20)


class OrderActionBody(_Body):
    reason: str = Field(min_length=1, max_length=200, description="why, for the timeline and the audit log")
    customer_id: str | None = Field(None, min_length=1, max_length=64, description="whose order (or conversation_id)")
    conversation_id: str | None = Field(None, min_length=1, max_length=64, description="where the customer is told")


class RedirectBody(OrderActionBody):
    address: str = Field(min_length=5, max_length=300)


class ResendBody(OrderActionBody):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(1, ge=1, le=50)


class CompensateBody(OrderActionBody):
    amount: float = Field(gt=0, le=1_000_000)
    form: Literal["refund", "store_credit"] = "refund"


class ApproveReturnBody(OrderActionBody):
    sku: str = Field(min_length=1, max_length=64)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="pick-up day, the shop's time zone")
    slot: str = Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$", description="one of the policy's pick-up slots")
    exchange: bool = False
    spec: str | None = Field(None, max_length=32, description="the size or colour an exchange is for")


class Reason(_Body):
    reason: str = Field("released", min_length=1, max_length=500)


class Assignment(_Body):
    assignee: str = Field(pattern=STAFF_ID_PATTERN)
    reason: str = Field("assigned by a dispatcher", min_length=1, max_length=500)
    force: bool = Field(False, description="assign even over the agent's capacity")


class Transfer(_Body):
    queue: str = Field(min_length=1, max_length=64)
    assignee: str | None = Field(None, pattern=STAFF_ID_PATTERN)
    reason: str = Field(min_length=1, max_length=500)


class Move(_Body):
    to: TicketStatus
    reason: str | None = Field(None, max_length=500)
    note: str | None = Field(None, max_length=2000, description="for pending_customer: what the customer should send")
    amount: float | None = Field(None, ge=0, le=1_000_000, description="with approved: the amount granted")


class CommentBody(_Body):
    text: str = Field(min_length=1, max_length=4000)
    public: bool = Field(False, description="true: sent to the customer on their channel; false: an internal note")


class Attachments(_Body):
    media_ids: list[str] = Field(default_factory=list, max_length=20)
    ocr_result_ids: list[str] = Field(default_factory=list, max_length=20)


class OwnStatus(_Body):
    online: bool | None = None
    language: Literal["zh", "en"] | None = None


class ConfigDocument(_Body):
    document: dict[str, Any]
    expected_version: int | None = Field(None, ge=0, description="refused with 409 if someone saved since")


class NewStaff(_Body):
    id: str = Field(pattern=STAFF_ID_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1)
    skill_groups: list[str] = Field(default_factory=list, max_length=20)
    capacity: int = Field(10, ge=0, le=500)


class StaffChanges(_Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    roles: list[Role] | None = Field(None, min_length=1)
    skill_groups: list[str] | None = Field(None, max_length=20)
    capacity: int | None = Field(None, ge=0, le=500)
    online: bool | None = None
    disabled: bool | None = None
    language: Literal["zh", "en"] | None = None


class NewPassword(_Body):
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class OwnPassword(_Body):
    current: str = Field(min_length=1, max_length=PASSWORD_MAX, description="the password in use now")
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


LANG = Param("lang", {"type": "string", "enum": list(LANGUAGES)}, "labels in zh (default) or en")


def _language(request: web.Request, member: StaffMember | None = None) -> str:
    value = request.query.get("lang") or (member.language if member else "zh")
    if value not in LANGUAGES:
        raise UserError("lang must be zh or en", code="invalid_field", field="lang")
    return value


def _member_view(member: StaffMember) -> dict[str, Any]:
    return {
        **member.model_dump(mode="json"),
        "permissions": sorted(p.value for p in member.actor().permissions()),
    }


class BackofficeApi:
    def __init__(self, gateway: Gateway, auth: StaffAuth) -> None:
        self.gateway = gateway
        self.auth = auth
        self._routes: list[web.RouteDef] = []
        self._register()

    @property
    def backoffice(self) -> Backoffice:
        return wired(self.gateway.backoffice)

    def routes(self) -> list[web.RouteDef]:
        return list(self._routes)

    # -- plumbing -------------------------------------------------------------------------

    def _op(
        self,
        method: str,
        path: str,
        handler: Callable[[web.Request, StaffMember], Awaitable[web.Response]],
        summary: str,
        tag: str,
        *,
        body: Schema | None = None,
        query: tuple[Param, ...] = (),
        success: int = 200,
        errors: tuple[int, ...] = (400, 401, 403, 404),
    ) -> None:
        """Declare ``METHOD /api/backoffice<path>`` for a signed-in staff member."""

        async def serve(request: web.Request) -> web.StreamResponse:
            # The workflow's refusals are errors of the project's tree (a ticket not found is a
            # 404, a refused transition a 409 …) and go to the app's middleware as they are; a
            # plain ValueError from deeper down is a value the action cannot take.
            try:
                member = await self._signed_in(request)
                return await handler(request, member)
            except GatewayError:
                raise
            except ValueError as exc:
                raise ActionInvalid(str(exc)) from exc

        operation = Operation(
            method, f"{PREFIX}{path}", summary, tag, body=body, params=query, replies=(Reply(success),),
            errors=errors, security=(STAFF,),
        )  # fmt: skip
        self._routes.append(route(operation, serve))

    async def _signed_in(self, request: web.Request) -> StaffMember:
        return (await self.auth.caller(request)).member

    async def _ticket_view(
        self, ticket: Ticket, language: str, member: StaffMember, *, full: bool = True
    ) -> dict[str, Any]:
        view = await self.backoffice.desk.view(ticket, language, full=full)
        view["allowed_actions"] = allowed_actions(member.actor(), ticket)
        return view

    async def _full_view(self, ticket: Ticket, request: web.Request, member: StaffMember) -> dict[str, Any]:
        """The ticket page's whole view (what GET returns and every action answers with, so the
        console redraws from one shape)."""
        language = _language(request, member)
        view = await self._ticket_view(ticket, language, member)
        # The console labels timeline steps and transfer targets itself, in the member's language.
        view["status_labels"] = {status.value: label(status, language) for status in TicketStatus}
        config = await self.backoffice.config.tickets()
        view["queues"] = [{"queue": q, "label": config.queue_label(q, language)} for q in config.queues]
        # The stored version, so the console tells its own changes from others' on the live feed.
        stored = await self.backoffice.desk.tickets.find_one({"_id": ticket.id}, {"version": 1})
        view["version"] = int(stored.get("version", 1)) if stored else None
        survey = await self.backoffice.surveys.for_ticket(ticket.id)
        view["survey"] = survey.model_dump(mode="json") if survey else None
        if ticket.request_id and self.gateway.aftersales is not None:
            linked = await self.gateway.aftersales.get(ticket.request_id)
            view["request"] = (
                {**linked.model_dump(mode="json", exclude={"timeline"}), "agent_timeline": linked.agent_timeline()}
                if linked
                else None
            )
        view["ocr_results"] = await self._ocr_summaries(ticket.ocr_result_ids)
        view["actor_names"] = await self._actor_names(ticket)
        return view

    async def _actor_names(self, ticket: Ticket) -> dict[str, str]:
        """Display names of the staff in the timeline and comments (entries record ``staff:<id>``)."""
        actors = {e.actor for e in ticket.timeline} | {c.author for c in ticket.comments}
        if ticket.assignee:
            actors.add(f"staff:{ticket.assignee}")
        names: dict[str, str] = {}
        for actor in sorted(a for a in actors if a.startswith("staff:")):
            member = await self.backoffice.staff.get(actor.removeprefix("staff:"))
            if member is not None:
                names[actor] = member.name
        return names

    async def _ticket_response(
        self, ticket: Ticket, request: web.Request, member: StaffMember, status: int = 200
    ) -> web.Response:
        return json_response({"ticket": await self._full_view(ticket, request, member)}, status=status)

    def _register(self) -> None:
        t, a, c, s = "tickets", "alerts", "configuration", "staff"
        self._op("GET", "/me", self.me, "The signed-in staff member and their permissions", s, errors=(401,))
        self._op("PATCH", "/me", self.update_me, "Go online or offline; choose the interface language", s,
                 body=OwnStatus, errors=(400, 401))  # fmt: skip
        self._op(
            "GET", "/tickets", self.list_tickets, "Tickets in a view, most urgent first", t,
            query=(
                Param("view", {"type": "string", "enum": list(VIEWS)}, "mine (default), pool, team …"),
                Param("queue", {"type": "string", "maxLength": 64}),
                Param("status", {"type": "string", "enum": [s.value for s in TicketStatus]}),
                Param("priority", {"type": "string", "enum": [p.value for p in Priority]}),
                Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                LANG,
            ),
        )  # fmt: skip
        self._op("POST", "/tickets", self.submit, "Submit a ticket for a customer (classified if no type)", t,
                 body=TicketSubmission, success=201)  # fmt: skip
        self._op("GET", "/tickets/{ticket_id}", self.get_ticket,
                 "A ticket: timeline, SLA clocks, explained priority, history flags, links", t,
                 query=(LANG,))  # fmt: skip
        self._op("GET", "/tickets/{ticket_id}/audit", self.ticket_audit, "The ticket's audit entries", t)
        self._op("POST", "/tickets/{ticket_id}/claim", self.claim, "Claim a ticket from the pool", t,
                 errors=(400, 401, 403, 404, 409))  # fmt: skip
        self._op("POST", "/tickets/{ticket_id}/release", self.release, "Put a ticket back in the pool", t,
                 body=Reason, errors=(400, 401, 403, 404, 409))  # fmt: skip
        self._op("POST", "/tickets/{ticket_id}/assign", self.assign, "Assign a ticket to a reviewer (dispatcher)", t,
                 body=Assignment, errors=(400, 401, 403, 404, 409))  # fmt: skip
        self._op("POST", "/tickets/{ticket_id}/transfer", self.transfer, "Move a ticket to another queue", t,
                 body=Transfer, errors=(400, 401, 403, 404, 409))  # fmt: skip
        self._op("POST", "/tickets/{ticket_id}/transition", self.transition,
                 "Review: in_review, pending_customer, approved, rejected, processing, resolved, closed", t,
                 body=Move, errors=(400, 401, 403, 404, 409))  # fmt: skip
        self._op("POST", "/tickets/{ticket_id}/comments", self.comment,
                 "An internal note, or a reply the customer gets on their channel", t,
                 body=CommentBody, success=201, errors=(400, 401, 403, 404, 409))  # fmt: skip
        self._op("POST", "/tickets/{ticket_id}/attachments", self.attach, "Attach photos or OCR results", t,
                 body=Attachments, errors=(400, 401, 403, 404, 409))  # fmt: skip
        self._op("GET", "/pool", self.pool, "The to-claim pool per queue: counts, priorities, oldest age", t,
                 query=(LANG,))  # fmt: skip
        self._op("GET", "/alerts", self.alerts, "Alerts for the signed-in staff member", a,
                 query=(Param("unread", {"type": "boolean"}),))  # fmt: skip
        self._op("POST", "/alerts/{alert_id}/read", self.read_alert, "Mark an alert read", a)
        self._op("GET", "/config/{kind}", self.read_config, "Configuration: tickets, sla or rules (admin)", c)
        self._op("PUT", "/config/{kind}", self.save_config, "Replace a configuration (admin; validated whole)", c,
                 body=ConfigDocument, errors=(400, 401, 403, 404, 409))  # fmt: skip
        self._op("GET", "/staff", self.list_staff, "Staff with their open tickets (admin, dispatcher)", s)
        self._op("POST", "/staff", self.create_staff, "Create a staff account; its token is shown once (admin)", s,
                 body=NewStaff, success=201, errors=(400, 401, 403, 409))  # fmt: skip
        self._op("PATCH", "/staff/{staff_id}", self.update_staff, "Change roles, skills, capacity … (admin)", s,
                 body=StaffChanges)  # fmt: skip
        self._op("POST", "/staff/{staff_id}/tokens", self.issue_token, "Issue another token (admin)", s, success=201)
        self._op("DELETE", "/staff/{staff_id}/tokens", self.revoke_tokens,
                 "End every API token of a staff member, e.g. one that leaked (admin)", s)  # fmt: skip
        self._op("POST", "/staff/{staff_id}/password", self.set_password,
                 "Set a staff member's console password and sign them out everywhere (admin)", s,
                 body=NewPassword)  # fmt: skip
        for method in ("PUT", "POST"):
            self._op(method, "/me/password", self.change_own_password,
                     "Change one's own console password (the current one is required); other sessions end", s,
                     body=OwnPassword, errors=(400, 401, 403, 429))  # fmt: skip
        o, order = "orders", "/orders/{order_id}"
        self._op("GET", order, self.get_order, "An order with its requests (both timelines), pick-ups, follow-ups", o,
                 query=(LANG,))  # fmt: skip
        for path, handler, summary, body in (
            ("intercept", self.intercept, "Intercept a parcel on its way (refunded once back)", OrderActionBody),
            ("redirect", self.redirect, "Redirect a parcel on its way to another address", RedirectBody),
            ("cancel-refund", self.cancel_refund, "Cancel an order not yet shipped and refund it", OrderActionBody),
            ("resend", self.resend, "Resend an item (over the automatic limit: reviewers)", ResendBody),
            ("compensate", self.compensate, "Compensate (over the automatic amount: reviewers)", CompensateBody),
            ("approve-return", self.approve_return, "Approve a return or exchange with a courier pick-up",
             ApproveReturnBody),
        ):  # fmt: skip
            self._op("POST", f"{order}/{path}", handler, summary, o, body=body, success=201,
                     errors=(400, 401, 403, 404, 409))  # fmt: skip
        head = Param("head", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "a published head hash")
        self._op("GET", "/audit/verify", self.verify_audit, "Check the audit chain against tickets and requests", c,
                 query=(head,))  # fmt: skip

    # -- orders ---------------------------------------------------------------------------

    @property
    def order_actions(self) -> OrderActions:
        return wired(self.gateway.order_actions)

    async def get_order(self, request: web.Request, member: StaffMember) -> web.Response:
        view = await self.order_actions.view(member.actor(), request.match_info["order_id"], _language(request, member))
        return json_response(view)

    async def _acted(self, request: AfterSalesRequest | None, **extra: Any) -> web.Response:
        body: dict[str, Any] = dict(extra)
        if request is not None:
            body["request"] = {**request.model_dump(mode="json", exclude={"timeline"}),
                               "agent_timeline": request.agent_timeline(),
                               "customer_timeline": [s.label for s in request.customer_timeline()]}  # fmt: skip
        return json_response(body, status=201)

    async def intercept(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, OrderActionBody)
        done = await self.order_actions.intercept(
            member.actor(), request.match_info["order_id"], reason=body.reason, customer_id=body.customer_id,
            conversation_id=body.conversation_id,
        )  # fmt: skip
        return await self._acted(done)

    async def redirect(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, RedirectBody)
        task_id = await self.order_actions.redirect(
            member.actor(), request.match_info["order_id"], address=body.address, reason=body.reason,
            customer_id=body.customer_id, conversation_id=body.conversation_id,
        )  # fmt: skip
        return await self._acted(None, followup_id=task_id)

    async def cancel_refund(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, OrderActionBody)
        done = await self.order_actions.cancel_and_refund(
            member.actor(), request.match_info["order_id"], reason=body.reason, customer_id=body.customer_id,
            conversation_id=body.conversation_id,
        )  # fmt: skip
        return await self._acted(done)

    async def resend(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, ResendBody)
        done = await self.order_actions.resend(
            member.actor(), request.match_info["order_id"], sku=body.sku, quantity=body.quantity, reason=body.reason,
            customer_id=body.customer_id, conversation_id=body.conversation_id,
        )  # fmt: skip
        return await self._acted(done)

    async def compensate(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, CompensateBody)
        done = await self.order_actions.compensate(
            member.actor(), request.match_info["order_id"], amount=body.amount, form=body.form, reason=body.reason,
            customer_id=body.customer_id, conversation_id=body.conversation_id,
        )  # fmt: skip
        return await self._acted(done)

    async def approve_return(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, ApproveReturnBody)
        done = await self.order_actions.approve_return(
            member.actor(), request.match_info["order_id"], sku=body.sku, date=body.date, slot=body.slot,
            reason=body.reason, exchange=body.exchange, spec=body.spec, customer_id=body.customer_id,
            conversation_id=body.conversation_id,
        )  # fmt: skip
        return await self._acted(done)

    # -- staff member ---------------------------------------------------------------------

    async def me(self, request: web.Request, member: StaffMember) -> web.Response:
        return json_response({"staff": _member_view(member)})

    async def update_me(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, OwnStatus)
        changes = body.model_dump(exclude_none=True)
        updated = await self.backoffice.admin.update_staff(member.actor(), member.id, changes) if changes else member
        if changes.get("online"):  # someone came online: their queues' pool tickets can go to them
            await assign_pool(self.backoffice.desk, updated.skill_groups)
        return json_response({"staff": _member_view(updated)})

    # -- tickets --------------------------------------------------------------------------

    async def list_tickets(self, request: web.Request, member: StaffMember) -> web.Response:
        language = _language(request, member)
        status = request.query.get("status")
        priority = request.query.get("priority")
        try:
            limit = int(request.query.get("limit", "200"))
        except ValueError:
            raise UserError("limit must be a number", code="invalid_field", field="limit") from None
        if not 1 <= limit <= 500:
            raise UserError("limit must be 1–500", code="invalid_field", field="limit")
        if status is not None and status not in {s.value for s in TicketStatus}:
            raise UserError("unknown status", code="invalid_field", field="status")
        if priority is not None and priority not in {p.value for p in Priority}:
            raise UserError("unknown priority", code="invalid_field", field="priority")
        ranked = await self.backoffice.workflow.listing(
            member.actor(),
            request.query.get("view", "mine"),
            queue=request.query.get("queue"),
            status=TicketStatus(status) if status else None,
            priority=priority,
            limit=limit,
        )
        tickets = [await self._ticket_view(ticket, language, member, full=False) for ticket, _ in ranked]
        return json_response({"tickets": tickets, "count": len(tickets)})

    async def submit(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, TicketSubmission)
        store = self.backoffice.store
        if await store.get_customer(body.customer_id) is None:
            raise UserError(f"no customer {body.customer_id}", code="invalid_field", field="customer_id")
        channel = None
        if body.conversation_id is not None:
            conversation = await store.get_conversation(body.conversation_id)
            if conversation is None or conversation.customer_id != body.customer_id:
                raise UserError("no such conversation of this customer", code="invalid_field", field="conversation_id")
            channel = conversation.channel
        # Evidence is what the shop holds: a made-up id must not satisfy a rule that needs evidence.
        for media_id in body.evidence:
            if await self.gateway.media.describe(media_id) is None:
                raise UserError(f"no stored photo {media_id}", code="invalid_field", field="evidence")
        for result_id in body.ocr_result_ids:
            if self.gateway.ocr is None or await self.gateway.ocr.get(result_id) is None:
                raise UserError(f"no OCR result {result_id}", code="invalid_field", field="ocr_result_ids")
        ticket, created = await self.backoffice.workflow.submit(
            member.actor(),
            customer_id=body.customer_id,
            summary=body.summary,
            type=body.type,
            order_id=body.order_id,
            conversation_id=body.conversation_id,
            channel=channel,
            amount=body.amount,
            evidence=body.evidence,
            ocr_result_ids=body.ocr_result_ids,
            reason=body.reason,
        )
        if not created and not can_view(member.actor(), ticket.scope()):
            # Someone else's ticket on the same problem: that it exists, not what is in it.
            view = {"id": ticket.id, "type": ticket.type.value, "status": ticket.status.value, "visible": False}
        else:
            view = await self._ticket_view(ticket, _language(request, member), member)
        return json_response({"ticket": view, "created": created}, status=201 if created else 200)

    async def get_ticket(self, request: web.Request, member: StaffMember) -> web.Response:
        ticket = await self.backoffice.workflow.visible(member.actor(), request.match_info["ticket_id"])
        return await self._ticket_response(ticket, request, member)

    async def _ocr_summaries(self, result_ids: list[str]) -> list[dict[str, Any]]:
        """The fields read from the ticket's photos, beside the photo they came from."""
        ocr = self.gateway.ocr
        out: list[dict[str, Any]] = []
        for result_id in result_ids[:20]:
            result = await ocr.results.get(result_id) if ocr is not None else None
            if result is not None:
                out.append(
                    {
                        "id": result_id,
                        "media_id": result.media_id,
                        "document_type": result.document_type,
                        "fields": result.model_dump(mode="json")["fields"],
                        "needs_review": result.needs_review,
                        "review_reasons": result.review_reasons,
                        "image": f"/api/ocr/{result_id}/image",
                    }
                )
        return out

    async def ticket_audit(self, request: web.Request, member: StaffMember) -> web.Response:
        ticket = await self.backoffice.workflow.visible(member.actor(), request.match_info["ticket_id"])
        entries = await self.backoffice.audit.for_subject(f"ticket:{ticket.id}")
        if ticket.request_id:
            entries += await self.backoffice.audit.for_subject(f"request:{ticket.request_id}")
        entries.sort(key=lambda e: e.seq)
        return json_response(
            {"entries": [{"seq": e.seq, "hash": e.hash, "prev_hash": e.prev_hash, **e.record} for e in entries]}
        )

    async def claim(self, request: web.Request, member: StaffMember) -> web.Response:
        ticket = await self.backoffice.workflow.claim(member.actor(), request.match_info["ticket_id"])
        return await self._ticket_response(ticket, request, member)

    async def release(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, Reason)
        ticket = await self.backoffice.workflow.release(member.actor(), request.match_info["ticket_id"], body.reason)
        return await self._ticket_response(ticket, request, member)

    async def assign(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, Assignment)
        ticket = await self.backoffice.workflow.assign(
            member.actor(), request.match_info["ticket_id"], body.assignee, reason=body.reason, force=body.force
        )
        return await self._ticket_response(ticket, request, member)

    async def transfer(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, Transfer)
        ticket = await self.backoffice.workflow.transfer(
            member.actor(), request.match_info["ticket_id"], body.queue, reason=body.reason, assignee=body.assignee
        )
        return await self._ticket_response(ticket, request, member)

    async def transition(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, Move)
        ticket = await self.backoffice.workflow.move(
            member.actor(), request.match_info["ticket_id"], body.to, reason=body.reason, note=body.note,
            amount=body.amount,
        )  # fmt: skip
        return await self._ticket_response(ticket, request, member)

    async def comment(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, CommentBody)
        ticket = await self.backoffice.workflow.comment(
            member.actor(), request.match_info["ticket_id"], body.text, public=body.public
        )
        return await self._ticket_response(ticket, request, member, status=201)

    async def attach(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, Attachments)
        media = self.gateway.media
        for media_id in body.media_ids:
            if await media.describe(media_id) is None:
                raise UserError(f"no media {media_id}", code="invalid_field", field="media_ids")
        ticket = await self.backoffice.workflow.attach(
            member.actor(), request.match_info["ticket_id"], media_ids=body.media_ids,
            ocr_result_ids=body.ocr_result_ids,
        )  # fmt: skip
        return await self._ticket_response(ticket, request, member)

    async def pool(self, request: web.Request, member: StaffMember) -> web.Response:
        queues = await self.backoffice.workflow.pool_summary(member.actor(), _language(request, member))
        return json_response({"queues": queues})

    # -- alerts ---------------------------------------------------------------------------

    async def alerts(self, request: web.Request, member: StaffMember) -> web.Response:
        unread = request.query.get("unread", "false").lower() in ("1", "true", "yes")
        found = await self.backoffice.alerts.for_actor(member.actor(), unread_only=unread)
        return json_response({"alerts": [a.model_dump(mode="json") for a in found]})

    async def read_alert(self, request: web.Request, member: StaffMember) -> web.Response:
        if not await self.backoffice.alerts.mark_read(request.match_info["alert_id"], member.actor()):
            raise NotFound("no such alert for you")
        return json_response({"read": True})

    # -- configuration, staff, audit -------------------------------------------------------

    async def read_config(self, request: web.Request, member: StaffMember) -> web.Response:
        kind = request.match_info["kind"]
        try:
            document, version = await self.backoffice.admin.read_config(member.actor(), kind)
        except KeyError:
            raise NotFound("configuration kinds: tickets, sla, rules") from None
        return json_response({"kind": kind, "version": version, "document": document})

    async def save_config(self, request: web.Request, member: StaffMember) -> web.Response:
        kind = request.match_info["kind"]
        member.actor().require(Permission.CONFIGURE, "changing the configuration")
        body = await read_body(request, ConfigDocument)
        try:
            document, version = await self.backoffice.admin.save_config(
                member.actor(), kind, body.document, expected_version=body.expected_version
            )
        except KeyError:
            raise NotFound("configuration kinds: tickets, sla, rules") from None
        return json_response({"kind": kind, "version": version, "document": document})

    async def list_staff(self, request: web.Request, member: StaffMember) -> web.Response:
        everyone = await self.backoffice.admin.list_staff(member.actor())
        held = await held_counts(self.backoffice.desk, [m.id for m in everyone])
        return json_response({"staff": [{**_member_view(m), "open_tickets": held.get(m.id, 0)} for m in everyone]})

    async def create_staff(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, NewStaff)
        created, token = await self.backoffice.admin.create_staff(
            member.actor(), body.id, name=body.name, roles=body.roles, skill_groups=body.skill_groups,
            capacity=body.capacity,
        )  # fmt: skip
        return json_response({"staff": _member_view(created), "token": token}, status=201)

    async def update_staff(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, StaffChanges)
        staff_id = request.match_info["staff_id"]
        changes = body.model_dump(exclude_none=True)
        try:
            updated = await self.backoffice.admin.update_staff(member.actor(), staff_id, changes)
        except KeyError:
            raise NotFound(f"no staff member {staff_id}") from None
        return json_response({"staff": _member_view(updated)})

    async def issue_token(self, request: web.Request, member: StaffMember) -> web.Response:
        staff_id = request.match_info["staff_id"]
        try:
            token = await self.backoffice.admin.issue_token(member.actor(), staff_id)
        except KeyError:
            raise NotFound(f"no staff member {staff_id}") from None
        return json_response({"token": token}, status=201)

    async def revoke_tokens(self, request: web.Request, member: StaffMember) -> web.Response:
        staff_id = request.match_info["staff_id"]
        try:
            ended = await self.backoffice.admin.revoke_tokens(member.actor(), staff_id)
        except KeyError:
            raise NotFound(f"no staff member {staff_id}") from None
        return json_response({"staff_id": staff_id, "tokens_ended": ended})

    async def set_password(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, NewPassword)
        staff_id = request.match_info["staff_id"]
        try:
            await self.backoffice.admin.set_password(member.actor(), staff_id, body.password)
        except KeyError:
            raise NotFound(f"no staff member {staff_id}") from None
        # Whoever knew the old password may be signed in with it: every session of theirs ends.
        signed_out = await self.auth.sessions.close_all(staff_id)
        log.info("console password of %s set by %s; %d sessions ended", staff_id, member.id, signed_out)
        return json_response({"staff_id": staff_id, "sessions_ended": signed_out})

    async def change_own_password(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, OwnPassword)
        session = await self.auth.session_of(request)
        console = wired(self.gateway.console)
        # The same throttle as sign-in: a stolen session must not become a password-guessing oracle.
        ip = client_address(request)
        wait = await console.throttle.attempt(member.id, ip)  # counted before the password is checked
        if wait:
            raise TooManyRequests(
                f"too many wrong passwords; try again in {wait} s", code="throttled", retry_after=wait
            )
        if not await self.backoffice.admin.change_own_password(member.actor(), body.current, body.password):
            raise Forbidden("the current password is wrong", code="wrong_password", field="current")
        await console.throttle.succeeded(member.id, ip)
        keep = session.session_hash if session is not None else None  # this browser stays signed in
        signed_out = await console.sessions.close_all(member.id, keep=keep)
        return json_response({"staff_id": member.id, "sessions_ended": signed_out})

    async def verify_audit(self, request: web.Request, member: StaffMember) -> web.Response:
        member.actor().require(Permission.VIEW_AUDIT, "checking the audit log")
        head = request.query.get("head")
        report = await self.backoffice.audit.verify(expected_head=head)
        return json_response(report.as_dict())
