"""Who is calling a staff route: a bearer token (scripts, integrations) or a console session
cookie (the browser). Cookie-authenticated requests that change state must also carry the
session's CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form field) and, when the
browser sends one, an ``Origin`` of this gateway; bearer calls need neither, since a browser
never attaches a bearer token by itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from yarl import URL

from backoffice.permissions import Permission
from backoffice.staff import StaffDirectory, StaffMember
from console.sessions import ConsoleSession, SessionStore
from errors import Forbidden, Unauthorized
from gateway.starting import wired

if TYPE_CHECKING:
    from gateway.runtime import Gateway

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    secure: bool = True
    """Secure flag (browsers keep Secure cookies on http://127.0.0.1 and localhost too)."""

    @property
    def name(self) -> str:
        # __Host- binds the cookie to this exact origin: no Domain, Path=/, Secure.
        return "__Host-aftersales-console" if self.secure else "aftersales-console"

    def set(self, response: web.StreamResponse, raw_session: str, max_age_s: int) -> None:
        response.set_cookie(
            self.name, raw_session, path="/", max_age=max_age_s, httponly=True, secure=self.secure, samesite="Strict"
        )

    def clear(self, response: web.StreamResponse) -> None:
        response.del_cookie(self.name, path="/", secure=self.secure, httponly=True, samesite="Strict")


@dataclass(frozen=True, slots=True)
class Caller:
    member: StaffMember
    session: ConsoleSession | None
    """None for a bearer-token caller."""


CALLER_KEY: web.RequestKey[Caller] = web.RequestKey("staff_caller", Caller)
"""Where :meth:`StaffAuth.guard` leaves the signed-in caller on the request."""


class StaffAuth:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.cookies = CookiePolicy(secure=gateway.settings.console.cookie_secure)

    @property
    def staff(self) -> StaffDirectory:
        return wired(self.gateway.backoffice).staff

    @property
    def sessions(self) -> SessionStore:
        return wired(self.gateway.console).sessions

    async def caller(self, request: web.Request, *, form_csrf: str | None = None) -> Caller:
        """The signed-in caller, or :class:`~errors.Unauthorized` (nobody, a 401) /
        :class:`~errors.Forbidden` (CSRF check failed, a 403)."""
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("a staff token is required: 'Authorization: Bearer <token>'")
            member = await self.staff.authenticate(token.strip())
            if member is None:
                raise Unauthorized("unknown, revoked or disabled token")
            return Caller(member, None)
        session = await self.session_of(request)
        if session is None:
            raise Unauthorized("sign in to the console, or send 'Authorization: Bearer <token>'")
        member = await self.staff.get(session.staff_id)
        if member is None or member.disabled:
            await self.sessions.sessions.delete_one({"_id": session.session_hash})
            raise Unauthorized("this account is disabled")
        if request.method not in SAFE_METHODS:
            self.check_csrf(request, session, form_csrf)
        return Caller(member, session)

    async def require(self, request: web.Request, what: str, *any_of: Permission) -> Caller:
        """The signed-in caller holding at least one of ``any_of``; Unauthorized (401) / Forbidden (403) otherwise."""
        caller = await self.caller(request)
        granted = caller.member.actor().permissions()
        if not granted.intersection(any_of):
            roles = ", ".join(sorted(r.value for r in caller.member.roles)) or "none"
            needed = " or ".join(p.value for p in any_of)
            raise Forbidden(f"{what} needs the {needed} permission (your roles: {roles})")
        return caller

    def guard(self, handler: Handler, what: str, *any_of: Permission) -> Handler:
        """``handler`` behind sign-in and one of the permissions; refusals (401/403) are the app
        middleware's to answer."""

        async def serve(request: web.Request) -> web.StreamResponse:
            request[CALLER_KEY] = await self.require(request, what, *any_of)
            return await handler(request)

        return serve

    @staticmethod
    def guarded_caller(request: web.Request) -> Caller:
        """The caller :meth:`guard` let through to this request's handler."""
        caller = request.get(CALLER_KEY)
        if not isinstance(caller, Caller):
            raise RuntimeError("guarded_caller outside a guarded handler")
        return caller

    async def session_of(self, request: web.Request) -> ConsoleSession | None:
        raw = request.cookies.get(self.cookies.name, "")
        return await self.sessions.find(raw) if raw else None

    @staticmethod
    def check_csrf(request: web.Request, session: ConsoleSession, form_csrf: str | None = None) -> None:
        given = request.headers.get(CSRF_HEADER) or form_csrf or ""
        if not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
            raise Forbidden(f"the {CSRF_HEADER} header (or {CSRF_FIELD} field) is missing or wrong", code="csrf_failed")
        if not same_origin(request):
            raise Forbidden("the request came from another site", code="csrf_failed")


def same_origin(request: web.Request) -> bool:
    """True when the browser's Origin (or Referer) names this gateway, or it sent neither."""
    claimed = request.headers.get("Origin") or request.headers.get("Referer")
    if not claimed or claimed == "null":
        return claimed != "null"
    try:
        origin = URL(claimed).origin()
    except ValueError:
        return False
    host = request.headers.get("X-Forwarded-Host") or request.host
    return origin.host is not None and f"{origin.host}:{origin.port}" in _host_forms(host)


def _host_forms(host: str) -> set[str]:
    if ":" in host.rsplit("]", 1)[-1]:
        name, port = host.rsplit(":", 1)
        return {f"{name.strip('[]')}:{port}"}
    # No port in Host: the default of either scheme (TLS may end at a proxy in front).
    return {f"{host.strip('[]')}:80", f"{host.strip('[]')}:443"}
