"""The project's one exception tree.

Owns: the root :class:`GatewayError` and its three branches — :class:`UserError` (the caller sent
something wrong: a 4xx, never logged as a failure of ours), :class:`Unavailable` (a part we
depend on is down: a 503 with ``Retry-After``) and :class:`OperationalError` (something of ours
failed or gave up: a 500 whose body says no more than that). Each error carries a stable
``code`` (a contract clients rely on: snake_case, never renamed), a message for people and
optional ``details``; one middleware (``gateway.app.json_errors``, through
``channels.base.error_response``) renders them as ``{"error": {"code", "message", "details"}}``
with the class's HTTP ``status``.

Must not know: HTTP frameworks, the store, or any business rule.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


def whole_seconds(seconds: float) -> int:
    """Seconds as ``Retry-After`` gives them: whole, rounded up, at least one."""
    return max(1, math.ceil(seconds))


class GatewayError(Exception):
    """Root of every error the project raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retry_after: float | None = None
    """Seconds the caller should wait before asking again (a ``Retry-After`` header), if known."""

    def __init__(self, message: str = "", *, code: str | None = None, **details: Any) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip().splitlines()[0]
        if code is not None:
            self.code = code  # type: ignore[misc]  # an instance may narrow its class's code
        self.details: dict[str, Any] = details

    def body(self) -> dict[str, Any]:
        """The JSON error body every HTTP route answers with."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class UserError(GatewayError, ValueError):
    """The request or input is wrong; the caller can fix it."""

    code: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400


class Unauthorized(UserError):
    """Sign in, or send the right credentials."""

    code: ClassVar[str] = "unauthorized"
    status: ClassVar[int] = 401


class Forbidden(UserError):
    """Not allowed for this caller."""

    code: ClassVar[str] = "forbidden"
    status: ClassVar[int] = 403


class NotFound(UserError, LookupError):
    """No such thing."""

    code: ClassVar[str] = "not_found"
    status: ClassVar[int] = 404


class MethodNotAllowed(UserError):
    """This path does not take this method."""

    code: ClassVar[str] = "method_not_allowed"
    status: ClassVar[int] = 405


class RequestTimeout(UserError):
    """The request took too long to arrive."""

    code: ClassVar[str] = "request_timeout"
    status: ClassVar[int] = 408


class Conflict(UserError):
    """The thing is not in a state that allows this."""

    code: ClassVar[str] = "conflict"
    status: ClassVar[int] = 409


class TooLarge(UserError):
    """The request body is larger than this route takes."""

    code: ClassVar[str] = "too_large"
    status: ClassVar[int] = 413


class UnsupportedMediaType(UserError):
    """This route does not take a body of this content type."""

    code: ClassVar[str] = "unsupported_media_type"
    status: ClassVar[int] = 415


class TooManyRequests(UserError):
    """Too many requests; slow down."""

    code: ClassVar[str] = "too_many_requests"
    status: ClassVar[int] = 429
    retry_after: float

    def __init__(self, message: str = "", *, retry_after: float = 1.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after
        self.details.setdefault("retry_after", whole_seconds(retry_after))


class Unavailable(GatewayError):
    """A part the gateway depends on is unavailable; retry later."""

    code: ClassVar[str] = "unavailable"
    status: ClassVar[int] = 503
    retry_after: float

    def __init__(self, message: str = "", *, retry_after: float = 5.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class InsufficientStorage(Unavailable):
    """There is no room left to keep this now; retry later."""

    code: ClassVar[str] = "storage_full"
    status: ClassVar[int] = 507


class OperationalError(GatewayError):
    """Something of ours failed or gave up; not the caller's fault."""

    code: ClassVar[str] = "operation_failed"
    status: ClassVar[int] = 500


__all__ = [
    "Conflict",
    "Forbidden",
    "GatewayError",
    "InsufficientStorage",
    "MethodNotAllowed",
    "NotFound",
    "OperationalError",
    "RequestTimeout",
    "TooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "UserError",
    "whole_seconds",
]
