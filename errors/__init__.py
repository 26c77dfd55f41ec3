"""The project's one exception tree.

Owns: the root :class:`GatewayError` and its two branches — :class:`UserError` (the caller sent
something wrong: a 4xx, never logged as a failure of ours) and :class:`Unavailable` (a part we
depend on is down: a 503 with ``Retry-After``). Each error carries a stable ``code`` (a contract
clients rely on), a message for people and optional ``details``; one middleware renders them as
``{"error": {"code", "message", "details"}}``.

Must not know: HTTP frameworks, the store, or any business rule.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Root of every error the project raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

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


class Conflict(UserError):
    """The thing is not in a state that allows this."""

    code: ClassVar[str] = "conflict"
    status: ClassVar[int] = 409


class TooManyRequests(UserError):
    """Too many requests; slow down."""

    code: ClassVar[str] = "too_many_requests"
    status: ClassVar[int] = 429

    def __init__(self, message: str = "", *, retry_after: float = 1.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class Unavailable(GatewayError):
    """A part the gateway depends on is unavailable; retry later."""

    code: ClassVar[str] = "unavailable"
    status: ClassVar[int] = 503


__all__ = [
    "Conflict",
    "Forbidden",
    "GatewayError",
    "NotFound",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UserError",
]
