"""What Twilio's webhooks share, for the SMS channel (``channels.sms``) and the phone line
(``ivr.channel``): the signature check against the public URL Twilio called.

Owns: the signature header, the public URL a webhook was called at, and the signed form (or the
:class:`~errors.Forbidden` its callers answer with a 403). Must not know: any channel, the
dialogue, NLU or the database. It is its own package so that
the phone line need not import a sibling channel's module to check a signature.
"""

from __future__ import annotations

import logging

from aiohttp import web
from twilio.request_validator import RequestValidator

from errors import Forbidden

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(request: web.Request, public_base_url: str | None) -> str:
    """The URL Twilio called, which its signature covers, as seen from outside any proxy.

    Forwarded headers are safe to use here: a forged host only makes the signature check fail.
    """
    if public_base_url:
        return f"{public_base_url.rstrip('/')}{request.rel_url}"
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if proto or host:
        return f"{proto or request.scheme}://{host or request.host}{request.rel_url}"
    return str(request.url)


class BadSignature(Forbidden):
    """The request does not carry Twilio's signature of the URL and form it was sent to."""

    code = "forbidden"


async def signed_form(request: web.Request, validator: RequestValidator, public_base_url: str | None) -> dict[str, str]:
    """The webhook's form fields when Twilio signed them; :class:`BadSignature` (a 403) otherwise."""
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    url = public_url(request, public_base_url)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature or not validator.validate(url, fields, signature):
        log.warning("twilio webhook from %s: bad signature for %s", request.remote, url)
        raise BadSignature(f"invalid {SIGNATURE_HEADER}")
    return fields
