"""The shop's signed customer token: how a channel learns who a customer is, rather than being told.

A JSON Web Token with HMAC-SHA256 (RFC 7519, ``alg: HS256``), so the shop's backend can make one
with any JWT library: claims ``phone`` and/or ``email`` (the identities the shop has verified for
its signed-in user), optional ``name`` and ``sub`` (the shop's user id), and ``exp`` (seconds since
the epoch; required). Only a token that verifies links a message to a customer's other channels
and orders; a phone number or e-mail address merely written in a request's metadata is a hint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from errors import Unauthorized

IDENTITY_CLAIMS = ("phone", "email", "name")
MAX_TOKEN_CHARS = 4096


class InvalidCustomerToken(Unauthorized):
    """The customer token is malformed, forged or expired."""

    code = "invalid_customer_token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_customer_token(secret: str, claims: dict[str, Any], *, ttl_seconds: int = 3600) -> str:
    """A token for ``claims`` (``exp`` added unless given), as the shop's backend would make it."""
    payload = {**claims}
    payload.setdefault("exp", int(time.time()) + ttl_seconds)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def verify_customer_token(secret: str, token: str, *, now: float | None = None) -> dict[str, str]:
    """The verified identities (``phone``, ``email``, ``name``) of a valid token.

    Raises :class:`InvalidCustomerToken` for anything else: another algorithm (``none`` included),
    a bad signature, a missing or past ``exp``, a malformed token."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise InvalidCustomerToken("the customer token is not a JWT")
    header_part, body_part, signature_part = token.split(".")
    try:
        header = json.loads(_unb64(header_part))
        claims = json.loads(_unb64(body_part))
        signature = _unb64(signature_part)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCustomerToken("the customer token cannot be decoded") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidCustomerToken("the customer token must be signed with HS256")
    expected = hmac.new(secret.encode(), f"{header_part}.{body_part}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidCustomerToken("the customer token's signature does not verify")
    if not isinstance(claims, dict):
        raise InvalidCustomerToken("the customer token's claims are not an object")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise InvalidCustomerToken("the customer token has no expiry (exp)")
    if expires <= (time.time() if now is None else now):
        raise InvalidCustomerToken("the customer token has expired")
    return {k: claims[k].strip() for k in IDENTITY_CLAIMS if isinstance(claims.get(k), str) and claims[k].strip()}
