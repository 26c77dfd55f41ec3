"""The staff console in the browser: sign-in and sign-out, the pages (inbox, conversation,
ticket, quality dashboard, refund report, review queue, admin), their scripts and styles, and
the live websocket that pushes store changes (from ``console.live``) and presence.

Pages are a shell (``console/assets/page.html``) plus one script each, which draws the page from
the JSON APIs; every page and API checks the staff member's roles itself, so hiding a link is
never the only guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

import intents
from backoffice.permissions import Permission, TicketScope, can_view
from backoffice.staff import StaffMember
from channels.operations import Handler, Operation, route
from console.sessions import ABSOLUTE_TIMEOUT
from errors import Forbidden, Unauthorized
from gateway.channel_registry import CHANNELS
from gateway.limits import client_address
from gateway.staff_auth import CSRF_FIELD, StaffAuth, same_origin
from gateway.starting import wired
from store import untrusted_json

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "console" / "assets"
VENDOR = {"chart.umd.js": ASSETS.parent / "node_modules" / "chart.js" / "dist" / "chart.umd.js"}
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
LOGIN_CSRF_COOKIE = "aftersales-console-sign-in"
MAX_WS_MESSAGE = 4096

P = Permission


@dataclass(frozen=True, slots=True)
class Page:
    name: str
    path: str
    script: str
    allowed: Callable[[StaffMember], bool]
    in_nav: bool = True
    charts: bool = False


def _has(*permissions: Permission) -> Callable[[StaffMember], bool]:
    def check(member: StaffMember) -> bool:
        granted = member.actor().permissions()
        return any(p in granted for p in permissions)

    return check


WORKS_TICKETS_OR_CHATS = _has(P.HANDLE_CONVERSATIONS, P.VIEW_ALL, P.VIEW_OWN_QUEUES, P.SUBMIT, P.REVIEW)
PAGES = (
    Page("inbox", "/console/", "inbox.js", WORKS_TICKETS_OR_CHATS),
    Page("conversation", "/console/conversations/{conversation_id}", "conversation.js",
         _has(P.HANDLE_CONVERSATIONS), in_nav=False),
    Page("ticket", "/console/tickets/{ticket_id}", "ticket.js", WORKS_TICKETS_OR_CHATS, in_nav=False),
    Page("order", "/console/orders/{order_id}", "order.js", _has(P.SUBMIT), in_nav=False),
    Page("quality", "/console/quality", "quality.js", _has(P.VIEW_QUALITY), charts=True),
    Page("refunds", "/console/refunds", "refunds.js", _has(P.VIEW_QUALITY), charts=True),
    Page("review", "/console/review", "review.js", _has(P.SCORE_QUALITY)),
    Page("analytics", "/console/analytics", "analytics.js", _has(P.VIEW_QUALITY), charts=True),
    Page("ocr_review", "/console/ocr-review", "ocr_review.js",
         _has(P.HANDLE_CONVERSATIONS, P.REVIEW, P.SUBMIT, P.VIEW_ALL)),
    Page("admin", "/console/admin", "admin.js", _has(P.MANAGE_USERS, P.CONFIGURE)),
)  # fmt: skip

TEXTS = {
    "zh": {
        "sign_in_title": "登录 · 售后客服工作台", "heading": "售后客服工作台", "staff_id": "工号", "password": "密码",
        "submit": "登录", "bad_credentials": "工号或密码错误。", "throttled": "尝试次数过多，请 {s} 秒后再试。",
        "expired_form": "登录页已过期，请重试。", "forbidden": "无权访问", "back": "返回工作台",
        "forbidden_detail": "您的角色（{roles}）不能打开此页面。", "other": "English",
    },
    "en": {
        "sign_in_title": "Sign in · After-sales console", "heading": "After-sales console", "staff_id": "Staff ID",
        "password": "Password", "submit": "Sign in", "bad_credentials": "Wrong staff ID or password.",
        "throttled": "Too many attempts; try again in {s} s.", "expired_form": "The sign-in form expired; try again.",
        "forbidden": "Not allowed", "back": "Back to the inbox",
        "forbidden_detail": "Your roles ({roles}) cannot open this page.", "other": "中文",
    },
}  # fmt: skip


def _template(name: str) -> Template:
    return Template((ASSETS / name).read_text(encoding="utf-8"))


def _html(body: str, status: int = 200) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    return response


def _escape(value: str) -> str:
    return html.escape(value, quote=True)


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: never another site after sign-in."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


class ConsoleWeb:
    def __init__(self, gateway: Gateway, auth: StaffAuth) -> None:
        self.gateway = gateway
        self.auth = auth
        self._page_template = _template("page.html")
        self._sign_in_template = _template("sign-in.html")
        self._forbidden_template = _template("forbidden.html")

    def routes(self) -> list[web.RouteDef]:
        """Pages and assets for people in a browser, and the live socket: declared, not in the API document."""

        def page(method: str, path: str, handler: Handler, summary: str) -> web.RouteDef:
            return route(Operation(method, path, summary, "console", published=False), handler)

        return [
            page("GET", "/console", self.to_inbox, "To the inbox"),
            page("GET", "/console/login", self.sign_in_form, "The sign-in form"),
            page("POST", "/console/login", self.sign_in, "Sign in (the form's CSRF cookie, throttled)"),
            page("POST", "/console/logout", self.sign_out, "Sign out"),
            page("GET", "/console/ws", self.websocket, "The console's live feed (websocket)"),
            page("GET", "/console/assets/vendor/{name}", self.vendor_asset, "A vendored script or style"),
            page("GET", "/console/assets/{name}", self.asset, "A console script, style or image"),
            *(page("GET", p.path, self._page_handler(p), f"The {p.name} page") for p in PAGES),
        ]

    # -- sign-in ----------------------------------------------------------------------------

    async def to_inbox(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/console/")

    def _language(self, request: web.Request) -> str:
        asked = request.query.get("lang")
        if asked in TEXTS:
            return asked
        return "en" if request.headers.get("Accept-Language", "").lower().startswith("en") else "zh"

    def _sign_in_page(
        self, request: web.Request, *, error: str = "", staff_id: str = "", status: int = 200, next_path: str = ""
    ) -> web.Response:
        language = self._language(request)
        texts = TEXTS[language]
        csrf = secrets.token_urlsafe(24)
        next_path = _safe_next(next_path or request.query.get("next"))
        other = "en" if language == "zh" else "zh"
        body = self._sign_in_template.substitute(
            html_lang="zh-CN" if language == "zh" else "en",
            title=texts["sign_in_title"], heading=texts["heading"], error=_escape(error), csrf=csrf,
            next=_escape(next_path), next_q=quote(next_path), staff_id=_escape(staff_id),
            staff_id_label=texts["staff_id"], password_label=texts["password"], submit=texts["submit"],
            other_lang=other, other_lang_name=texts["other"],
        )  # fmt: skip
        response = _html(body, status)
        # Sign-in CSRF: the form's token must match this cookie (a forged cross-site post has neither).
        response.set_cookie(
            LOGIN_CSRF_COOKIE, csrf, path="/console/login", max_age=3600, httponly=True,
            secure=self.auth.cookies.secure, samesite="Strict",
        )  # fmt: skip
        return response

    async def sign_in_form(self, request: web.Request) -> web.StreamResponse:
        return self._sign_in_page(request)

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        texts = TEXTS[self._language(request)]
        if request.content_length is not None and request.content_length > 8192:
            return self._sign_in_page(request, error=texts["bad_credentials"], status=413)
        form = await request.post()
        staff_id = str(form.get("staff_id", "")).strip()[:64]
        password = str(form.get("password", ""))
        next_path = str(form.get("next", ""))
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        given = str(form.get(CSRF_FIELD, ""))
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()) or not same_origin(request):
            return self._sign_in_page(request, error=texts["expired_form"], staff_id=staff_id, status=403,
                                      next_path=next_path)  # fmt: skip
        console, backoffice = wired(self.gateway.console), wired(self.gateway.backoffice)
        ip = client_address(request)
        wait = await console.throttle.attempt(staff_id, ip)  # counted before the password is checked
        if wait:
            return self._sign_in_page(request, error=texts["throttled"].format(s=wait), staff_id=staff_id,
                                      status=429, next_path=next_path)  # fmt: skip
        member = await backoffice.staff.check_password(staff_id, password)
        if member is None:
            log.info("console sign-in refused for %r from %s", staff_id, ip)
            return self._sign_in_page(request, error=texts["bad_credentials"], staff_id=staff_id, status=401,
                                      next_path=next_path)  # fmt: skip
        await console.throttle.succeeded(staff_id, ip)
        # A fresh session id at every sign-in (no fixation); an older cookie's session ends.
        if old := request.cookies.get(self.auth.cookies.name):
            await console.sessions.close(old)
        raw, _ = await console.sessions.open(member.id, ip=ip, user_agent=request.headers.get("User-Agent", ""))
        log.info("console sign-in: %s", member.id)
        response = web.HTTPSeeOther(_safe_next(next_path))
        self.auth.cookies.set(response, raw, int(ABSOLUTE_TIMEOUT.total_seconds()))
        response.del_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
        raise response

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        try:
            caller = await self.auth.caller(request, form_csrf=str(form.get(CSRF_FIELD, "")))
        except (Unauthorized, Forbidden):
            raise web.HTTPSeeOther("/console/login") from None
        raw = request.cookies.get(self.auth.cookies.name, "")
        console = self.gateway.console
        if console is not None and raw:
            await console.sessions.close(raw)
        log.info("console sign-out: %s", caller.member.id)
        response = web.HTTPSeeOther("/console/login")
        self.auth.cookies.clear(response)
        raise response

    # -- pages ------------------------------------------------------------------------------

    def _page_handler(self, page: Page) -> Callable[[web.Request], Any]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await self.page(request, page)

        return serve

    async def page(self, request: web.Request, page: Page) -> web.StreamResponse:
        session = await self.auth.session_of(request)
        member = await self.auth.staff.get(session.staff_id) if session else None
        if session is None or member is None or member.disabled:
            raise web.HTTPSeeOther(f"/console/login?next={quote(request.path_qs)}")
        language = request.query.get("lang") or member.language
        language = language if language in TEXTS else "zh"
        if not page.allowed(member):
            first = next((p for p in PAGES if p.in_nav and p.allowed(member)), None)
            if page.name == "inbox" and first is not None:  # e.g. quality staff start on their dashboard
                raise web.HTTPSeeOther(first.path)
            texts = TEXTS[language]
            roles = ", ".join(r.value for r in member.roles)
            body = self._forbidden_template.substitute(
                html_lang="zh-CN" if language == "zh" else "en", title=texts["forbidden"],
                detail=_escape(texts["forbidden_detail"].format(roles=roles)), back=texts["back"],
            )  # fmt: skip
            return _html(body, status=403)
        boot = {
            "page": page.name,
            "lang": language,
            "csrf": session.csrf_token,
            "params": dict(request.match_info),
            "me": {
                "id": member.id,
                "name": member.name,
                "roles": [r.value for r in member.roles],
                "skill_groups": member.skill_groups,
                "permissions": sorted(p.value for p in member.actor().permissions()),
            },
            "nav": [{"page": p.name, "href": p.path} for p in PAGES if p.in_nav and p.allowed(member)],
            **vocabulary(),
        }
        boot_json = json.dumps(boot, ensure_ascii=False).replace("<", "\\u003c")
        head = '<script src="/console/assets/vendor/chart.umd.js" defer></script>' if page.charts else ""
        body = self._page_template.substitute(
            html_lang="zh-CN" if language == "zh" else "en", title=_escape(page.name), boot=boot_json,
            head_scripts=head, script=page.script, page=page.name,
        )  # fmt: skip
        return _html(body)

    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = ASSETS / name
        if "/" in name or name.startswith(".") or path.suffix not in CONTENT_TYPES or not path.is_file():
            raise web.HTTPNotFound()
        return self._file(path)

    async def vendor_asset(self, request: web.Request) -> web.StreamResponse:
        path = VENDOR.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        if not path.is_file():
            log.error("%s is missing: run `make setup` (npm ci in console/)", path)
            raise web.HTTPServiceUnavailable(text="console libraries are not installed: run `make setup`")
        return self._file(path)

    @staticmethod
    def _file(path: Path) -> web.StreamResponse:
        response = web.FileResponse(path)
        response.content_type = CONTENT_TYPES[path.suffix]
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # -- live websocket ---------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        # Cross-site websocket hijacking: the cookie rides along, so the Origin must be ours.
        if not request.headers.get("Origin") or not same_origin(request):
            raise Forbidden("websocket from another origin")
        session = await self.auth.session_of(request)
        member = await self.auth.staff.get(session.staff_id) if session else None
        if session is None or member is None or member.disabled:
            raise Unauthorized("sign in first")
        console = wired(self.gateway.console)
        socket = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_WS_MESSAGE)
        await socket.prepare(request)
        client = LiveClient(self.gateway, member, socket)
        queue = await console.live.subscribe()
        pusher = asyncio.create_task(client.push(queue))
        try:
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                try:
                    await client.handle(untrusted_json.loads(message.data))
                except (ValueError, TypeError, KeyError):
                    await socket.send_json({"type": "error", "detail": "unreadable message"})
        finally:
            console.live.unsubscribe(queue)
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
            await client.leave_all()
        return socket


class LiveClient:
    """One browser's websocket: what it watches, and which changes it may see."""

    def __init__(self, gateway: Gateway, member: StaffMember, socket: web.WebSocketResponse) -> None:
        self.gateway = gateway
        self.member = member
        self.actor = member.actor()
        self.socket = socket
        self.inbox = False
        self.conversations: set[str] = set()
        self.tickets: set[str] = set()

    async def handle(self, message: dict[str, Any]) -> None:
        console = self.gateway.console
        assert console is not None
        kind = message.get("type")
        if kind == "subscribe":
            topic = message.get("topic")
            if topic == "inbox":
                self.inbox = True
            elif topic == "conversation" and self.actor.has(P.HANDLE_CONVERSATIONS):
                conversation_id = str(message["conversation_id"])[:64]
                self.conversations.add(conversation_id)
                await console.presence.viewing(conversation_id, self.member.id, self.member.name)
            elif topic == "ticket":
                ticket_id = str(message["ticket_id"])[:64]
                self.tickets.add(ticket_id)
                # The streams are open by now: the page re-reads once, so a change made between
                # its first fetch and this subscription is not lost.
                await self.socket.send_json({"type": "subscribed", "topic": "ticket", "ticket_id": ticket_id})
        elif kind in ("viewing", "typing"):
            conversation_id = str(message["conversation_id"])[:64]
            if conversation_id in self.conversations:
                await console.presence.viewing(
                    conversation_id, self.member.id, self.member.name, typing=kind == "typing"
                )
        elif kind == "leave":
            conversation_id = str(message["conversation_id"])[:64]
            self.conversations.discard(conversation_id)
            await console.presence.left(conversation_id, self.member.id)

    async def leave_all(self) -> None:
        console = self.gateway.console
        if console is not None:
            with contextlib.suppress(Exception):
                await console.presence.left_everywhere(self.member.id, sorted(self.conversations))

    async def push(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            event = await queue.get()
            try:
                outgoing = await self.visible(event)
                if outgoing is not None:
                    await self.socket.send_json(outgoing)
            except (ConnectionResetError, RuntimeError):
                return
            except Exception:
                log.exception("live push failed")

    async def visible(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The event as this staff member may see it, or None."""
        kind = event["type"]
        if kind == "message" or kind == "note":
            return event if event.get("conversation_id") in self.conversations else None
        if kind == "presence":
            conversation_id = event.get("conversation_id")
            if conversation_id not in self.conversations or self.gateway.console is None:
                return None
            present = await self.gateway.console.presence.present(str(conversation_id))
            return {**event, "present": present}
        if kind == "conversation":
            if event["id"] in self.conversations or (self.inbox and self.actor.has(P.HANDLE_CONVERSATIONS)):
                return event
            return None
        if kind == "ticket":
            scope = TicketScope(str(event.get("queue")), event.get("assignee"), event.get("submitted_by"))
            if (self.inbox or event["id"] in self.tickets) and can_view(self.actor, scope):
                return event
        return None


def vocabulary() -> dict[str, Any]:
    """The channels and intents the console names and filters by, from their registries (the
    console keeps no list of its own)."""
    return {
        "channels": [{"name": spec.name, "label": dict(spec.label)} for spec in CHANNELS],
        "intents": [
            {"name": i.name, "kind": i.kind, "label": dict(i.label), "self_service": i.self_service}
            for i in intents.all_intents().values()
        ],
    }
