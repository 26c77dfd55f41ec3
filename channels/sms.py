"""SMS through Twilio: the inbound webhook and replies through Twilio's REST API.

Owns Twilio's wire format: the form-encoded inbound webhook (``MessageSid``, ``From``, ``Body``,
MMS ``MediaUrlN``), its ``X-Twilio-Signature`` check against the public URL Twilio called (rebuilt
from ``PUBLIC_BASE_URL`` or ``X-Forwarded-Proto``/``X-Forwarded-Host`` behind a proxy), and
sending with twilio's client pointed at a configurable API base URL. ``MessageSid`` is the
channel message id, so Twilio's retries are stored once. SMS has no buttons: quick replies
become numbered lines the customer answers with a number.

Must not know about dialogue, NLU or the database.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import aiohttp
from aiohttp import web
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import (
    DeliveryFailed,
    InboundHandler,
    InputChannel,
    InvalidInbound,
    MediaRejected,
    MediaSink,
    OutputChannel,
    error_response,
    has_control_characters,
    national_phone,
    text_with_choices,
    unstorable,
)
from channels.operations import TEXT, TWILIO_SIGNATURE, Operation, Reply, route, twilio_form
from channels.spec import ChannelDeps, ChannelSpec
from configuration import SettingsError, setting
from store.models import MAX_TEXT_CHARS, Attachment, InboundMessage, Message
from twiliohooks import BadSignature, signed_form

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/twilio/sms"
WEBHOOK = Operation(
    "POST", WEBHOOK_PATH, "An inbound SMS/MMS (Twilio messaging webhook)", "channels",
    body=twilio_form(
        "MessageSid",
        Body={"type": "string", "maxLength": MAX_TEXT_CHARS},
        NumMedia={"type": "string", "pattern": "^[0-9]{1,2}$"},
    ),
    replies=(Reply(media_type="text/xml", schema=TEXT, description="TwiML"),),
    errors=(400, 403, 413, 429, 503), security=(TWILIO_SIGNATURE,),
)  # fmt: skip
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_MEDIA = 10  # Twilio sends at most ten MediaUrlN per message


class TwilioSmsInput(InputChannel):
    name: ClassVar[str] = "sms"

    def __init__(
        self,
        auth_token: str,
        account_sid: str,
        *,
        public_base_url: str | None = None,
        media: MediaSink | None = None,
        media_timeout: float = 15.0,
        already_stored: Callable[[str, str], Awaitable[bool]] | None = None,
    ) -> None:
        self.validator = RequestValidator(auth_token)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.public_base_url = public_base_url
        self.media = media
        self.media_timeout = media_timeout
        self.already_stored = already_stored
        """(channel, channel message id) → stored already? The gateway wires it to the store so a
        retried webhook (same MessageSid) does not download its media again."""

    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        async def webhook(request: web.Request) -> web.Response:
            try:
                inbound = self.parse(await signed_form(request, self.validator, self.public_base_url))
            except BadSignature as error:
                return error_response(error)
            except InvalidInbound as error:
                log.warning("twilio webhook: %s", error.message)
                return error_response(error)
            if self.media is not None and inbound.attachments and not await self._seen(inbound):
                inbound = await self._download_media(inbound)
            await on_message(inbound)  # stored before Twilio gets its 200; replies go via the outbox
            return web.Response(text=EMPTY_TWIML, content_type="text/xml")

        return [route(WEBHOOK, webhook)]

    def parse(self, fields: dict[str, str]) -> InboundMessage:
        for required in ("MessageSid", "From"):
            if not fields.get(required):
                raise InvalidInbound("missing_field", f"the field '{required}' is required", field=required)
        if (reason := unstorable(fields)) is not None:
            raise InvalidInbound("invalid_text", f"the form cannot be stored: {reason}")
        for identifier in ("MessageSid", "From"):
            if has_control_characters(fields[identifier]):
                raise InvalidInbound("invalid_field", f"'{identifier}' has control characters", field=identifier)
        if fields.get("AccountSid") and fields["AccountSid"] != self.account_sid:
            raise InvalidInbound("invalid_field", "the message is for another Twilio account", field="AccountSid")
        body = fields.get("Body", "")
        if len(body) > MAX_TEXT_CHARS:
            raise InvalidInbound("message_too_long", f"'Body' is longer than {MAX_TEXT_CHARS}", field="Body")
        try:
            media_count = min(int(fields.get("NumMedia") or 0), MAX_MEDIA)
        except ValueError as exc:
            raise InvalidInbound("invalid_field", "'NumMedia' must be a number", field="NumMedia") from exc
        # The links; the webhook then downloads them into the media store (with the account's
        # credentials) before the message is accepted.
        attachments = [
            Attachment(
                kind=(fields.get(f"MediaContentType{i}") or "application/octet-stream").split("/")[0],
                content_type=fields.get(f"MediaContentType{i}"),
                url=fields[f"MediaUrl{i}"],
            )
            for i in range(media_count)
            if fields.get(f"MediaUrl{i}")
        ]
        if not body.strip() and not attachments:
            raise InvalidInbound("empty_message", "the message has neither text nor media", field="Body")
        sender = fields["From"]
        return InboundMessage(
            channel=self.name,
            sender_id=sender,
            channel_message_id=fields["MessageSid"],
            text=body,
            attachments=attachments,
            profile={"phone": national_phone(sender)} if national_phone(sender) else {},
            metadata={"to": fields.get("To", "")},
        )

    async def _seen(self, inbound: InboundMessage) -> bool:
        # A retry of a stored message is answered from the store: its links are never fetched.
        if self.already_stored is None:
            return False
        return await self.already_stored(inbound.channel, inbound.channel_message_id)

    async def _download_media(self, inbound: InboundMessage) -> InboundMessage:
        """Fetch MMS media into the media store. A failed download keeps the link and notes the
        error (the message is never lost for it); a refused file is reported to the customer.

        Not called for a retried webhook whose message is stored (see ``already_stored``); two
        concurrent first deliveries may both download, and the media store keeps one copy by hash.
        """
        assert self.media is not None
        attachments: list[Attachment] = []
        rejected: list[dict[str, str]] = []
        errors: list[dict[str, str]] = []
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}  # aiohttp drops it on a cross-origin redirect
        timeout = aiohttp.ClientTimeout(total=self.media_timeout)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            for index, link in enumerate(inbound.attachments):
                assert link.url is not None
                try:
                    data, content_type = await self._fetch(http, link.url)
                    saved = await self.media.save(data, content_type, f"mms-{inbound.channel_message_id}-{index}")
                except MediaRejected as refused:
                    log.info("mms media %s refused: %s", link.url, refused.message)
                    rejected.append({"reason": refused.reason, "detail": refused.message})
                    continue
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.warning("mms media %s not downloaded: %s", link.url, exc)
                    errors.append({"url": link.url, "error": f"{type(exc).__name__}: {exc}"[:300]})
                    attachments.append(link)
                    continue
                attachments.append(saved.model_copy(update={"url": link.url}))
        metadata = dict(inbound.metadata)
        if rejected:
            metadata["rejected_attachments"] = rejected
        if errors:
            metadata["media_errors"] = errors
        return inbound.model_copy(update={"attachments": attachments, "metadata": metadata})

    async def _fetch(self, http: aiohttp.ClientSession, url: str) -> tuple[bytes, str]:
        assert self.media is not None
        async with http.get(url, allow_redirects=True) as response:
            response.raise_for_status()
            content_type = response.headers.get("Content-Type", "application/octet-stream").split(";")[0]
            limit = self.media.max_bytes
            if response.content_length is not None and response.content_length > limit:
                raise MediaRejected("too_large", f"the file is larger than {limit} bytes")
            data = await response.content.read(limit + 1)
            if len(data) > limit:
                raise MediaRejected("too_large", f"the file is larger than {limit} bytes")
            return data, content_type


class TwilioSmsOutput(OutputChannel):
    name: ClassVar[str] = "sms"

    def __init__(
        self, account_sid: str, auth_token: str, from_number: str, *, api_base_url: str = "https://api.twilio.com"
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.api_base_url = api_base_url.rstrip("/")
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    async def start(self) -> None:
        self._http = AsyncTwilioHttpClient(timeout=20)
        self._client = Client(self.account_sid, self.auth_token, http_client=self._http)
        self._client.api.base_url = self.api_base_url  # Twilio, or a stand-in in tests

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send(self, message: Message) -> str | None:
        if self._client is None:
            await self.start()
        assert self._client is not None
        if not message.recipient_id:
            raise DeliveryFailed("the reply has no recipient phone number", permanent=True)
        try:
            sent: Any = await self._client.messages.create_async(
                to=message.recipient_id, from_=self.from_number, body=text_with_choices(message)
            )
        except TwilioRestException as exc:
            # 4xx (bad number, opted out) cannot succeed later; 429 and 5xx can.
            permanent = 400 <= exc.status < 500 and exc.status != 429
            raise DeliveryFailed(f"twilio {exc.status} {exc.code}: {exc.msg}", permanent=permanent) from exc
        except (aiohttp.ClientError, OSError, TimeoutError, TwilioException) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        return str(sent.sid) if sent.sid else None


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """SMS (and MMS photos) through Twilio."""

    title: ClassVar[str] = "Channel: SMS (Twilio)"
    account_sid: str | None = setting(
        None, env="TWILIO_ACCOUNT_SID", help="the Twilio account (SMS and the phone line)"
    )
    auth_token: str | None = setting(
        None, env="TWILIO_AUTH_TOKEN", secret=True, help="signs Twilio's webhooks and authorises sending"
    )
    from_number: str | None = setting(
        None, env="TWILIO_FROM_NUMBER", help="enables SMS: the number replies are sent from"
    )
    api_base_url: str = setting("https://api.twilio.com", env="TWILIO_API_BASE_URL", help="Twilio's REST API")

    @property
    def enabled(self) -> bool:
        return bool(self.from_number)

    def validate(self) -> None:
        if self.from_number and not (self.account_sid and self.auth_token):
            raise SettingsError(
                "the SMS channel needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER",
                variable="TWILIO_ACCOUNT_SID",
            )


class SmsDeps(ChannelDeps, Protocol):
    async def inbound_stored(self, channel: str, channel_message_id: str) -> bool: ...


def build(section: SmsSettings, deps: SmsDeps) -> tuple[InputChannel, OutputChannel]:
    assert section.account_sid and section.auth_token and section.from_number
    sms_in = TwilioSmsInput(
        section.auth_token,
        section.account_sid,
        public_base_url=deps.public_base_url,
        media=deps.media,
        already_stored=deps.inbound_stored,
    )
    sms_out = TwilioSmsOutput(
        section.account_sid, section.auth_token, section.from_number, api_base_url=section.api_base_url.rstrip("/")
    )
    return sms_in, sms_out


SPEC = ChannelSpec(
    name=TwilioSmsInput.name,
    label={"zh": "短信", "en": "SMS"},
    identity="sms",
    settings=SmsSettings,
    build=build,
    outside_account=True,
)
