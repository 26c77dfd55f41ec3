"""How the gateway and its downstream systems prove who is talking: HMAC-SHA256 with a shared
secret over ``"<timestamp>.<raw body>"``, sent as two headers.

``X-Signature-Timestamp`` is the sender's Unix time in seconds; ``X-Signature`` is
``sha256=<hex>``. The receiver recomputes the MAC over the bytes exactly as they arrived (never a
re-serialisation), compares in constant time, and refuses a timestamp outside its window, so a
captured request cannot be replayed later and a body cannot be changed. The same scheme signs
the gateway's requests to the systems (their stand-ins check it) and their callbacks to us.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from errors import Unauthorized

TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_HEADER = "X-Signature"
PREFIX = "sha256="


class InvalidSignature(Unauthorized):
    """The callback's signature is missing or does not match its body: it is not from the system."""

    code = "invalid_signature"


class StaleTimestamp(Unauthorized):
    """The callback's timestamp is missing or outside the accepted window (a replay, or a clock far off)."""

    code = "stale_timestamp"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two headers a sender adds to a request whose body is ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, body, timestamp)}


def verify(
    secret: str, body: bytes, headers: Mapping[str, str], *, window_seconds: float, now: float | None = None
) -> int:
    """The request's timestamp when the signature matches and the timestamp is within
    ``window_seconds`` of ``now``; :class:`InvalidSignature` or :class:`StaleTimestamp` otherwise."""
    raw_time = headers.get(TIMESTAMP_HEADER, "").strip()
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not given:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    if not raw_time.isascii() or not raw_time.isdigit() or len(raw_time) > 12:
        raise StaleTimestamp(f"{TIMESTAMP_HEADER} must be Unix seconds")
    timestamp = int(raw_time)
    if not hmac.compare_digest(signature(secret, body, timestamp), given):
        raise InvalidSignature("the signature does not match the body and timestamp")
    current = time.time() if now is None else now
    if abs(current - timestamp) > window_seconds:
        raise StaleTimestamp(
            f"the timestamp is {abs(current - timestamp):.0f} s from now; the window is {window_seconds:g} s"
        )
    return timestamp
