"""WeChat: Official Account (公众号) and Mini Program (小程序) customer-service messages, through wechatpy.

Owns the WeChat wire format. WeChat's servers POST XML to ``/webhooks/wechat`` with a signature
of the shared token over timestamp and nonce (checked first); in safe mode (``encrypt_type=aes``)
the message is AES-encrypted with the account's EncodingAESKey and carries its own
``msg_signature`` (checked and decrypted by ``wechatpy.crypto``). Text, images (downloaded with
the ``media/get`` API into the media store before the message is accepted), voice with WeChat's
recognition, and the subscribe event become :class:`InboundMessage`\\ s; the message's ``MsgId``
(or sender and time for events) is the channel message id, so WeChat's three redeliveries of a
message it got no answer for are stored once. The webhook answers ``success`` once the message
is stored and its turn has run (well inside WeChat's 5-second window; a slow turn's redelivery
is recognised), and the replies go out as asynchronous
客服消息 (``message/custom/send``) through the outbox, with the access token cached and
refreshed (on expiry, or when WeChat says it is invalid). Quick replies are numbered lines
("回复 2" picks the second), as on SMS. ``GET`` answers WeChat's URL verification.

Must not know about dialogue, NLU or the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from channels.base import (
    DeliveryFailed,
    InboundHandler,
    InputChannel,
    InvalidInbound,
    MediaRejected,
    MediaSink,
    OutputChannel,
    SenderThrottled,
    error_response,
    storable_text,
    text_with_choices,
)
from channels.operations import Operation, route
from channels.spec import ChannelDeps, ChannelSpec
from configuration import SettingsError, setting
from errors import Forbidden, GatewayError, TooLarge
from store.models import MAX_TEXT_CHARS, Attachment, InboundMessage, Message

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/wechat"
MAX_BODY_BYTES = 64 * 1024
TOKEN_MARGIN_SECONDS = 300
"""An access token is renewed this long before WeChat says it expires."""
TOKEN_INVALID = frozenset({40001, 40014, 42001})
"""WeChat's "invalid / expired access token" codes: renew and send again."""
PERMANENT = {
    45015: "the customer has not written for 48 hours: WeChat allows no customer-service message",
    40003: "unknown openid",
    43004: "the customer unfollowed the account",
    45047: "too many customer-service messages since the customer last wrote",
}


class Ignored(GatewayError):
    """A message this channel does not serve (a location, a menu click …): acknowledged, not stored."""

    code = "ignored"


class WeChatApi:
    """The WeChat server API the channel calls: access token, customer-service messages, media."""

    def __init__(self, app_id: str, app_secret: str, base_url: str = "https://api.weixin.qq.com") -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def access_token(self, *, renew: bool = False) -> str:
        """The cached token, renewed before it expires (one request for every waiting sender)."""
        async with self._lock:
            if renew or self._token is None or time.monotonic() >= self._token_expires:
                params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret}
                data = await self._get("/cgi-bin/token", params)
                if "access_token" not in data:
                    raise DeliveryFailed(f"no access token: {data.get('errcode')} {data.get('errmsg')}")
                self._token = str(data["access_token"])
                lifetime = float(data.get("expires_in", 7200))
                self._token_expires = time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 60.0)
            return self._token

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with self._http().get(f"{self.base_url}{path}", params=params) as response:
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryFailed(f"WeChat API {path}: {exc}") from exc
        return data if isinstance(data, dict) else {}

    async def send_text(self, openid: str, text: str) -> None:
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        for attempt in (1, 2):
            token = await self.access_token(renew=attempt == 2)
            try:
                async with self._http().post(
                    f"{self.base_url}/cgi-bin/message/custom/send", params={"access_token": token}, json=body
                ) as response:
                    data = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise DeliveryFailed(f"WeChat custom/send: {exc}") from exc
            code = int((data or {}).get("errcode", 0))
            if code == 0:
                return
            if code in TOKEN_INVALID and attempt == 1:
                continue  # another process (or WeChat) renewed the token: renew ours and send again
            if code in PERMANENT:
                raise DeliveryFailed(f"{code}: {PERMANENT[code]}", permanent=True)
            if code == 45009:  # the API's daily quota
                raise DeliveryFailed("WeChat API quota reached", retry_after=600)
            raise DeliveryFailed(f"WeChat custom/send: {code} {data.get('errmsg')}")
        raise DeliveryFailed("WeChat kept refusing the access token")

    async def media(self, media_id: str) -> tuple[bytes, str]:
        """A customer's image (or voice) by its media id: the bytes and their content type."""
        token = await self.access_token()
        async with self._http().get(
            f"{self.base_url}/cgi-bin/media/get", params={"access_token": token, "media_id": media_id}
        ) as response:
            content_type = response.content_type
            data = await response.read()
        if content_type in ("application/json", "text/plain"):  # WeChat answers errors as JSON
            raise InvalidInbound("media_unavailable", f"WeChat media {media_id}: {data[:200]!r}")
        return data, content_type


class WeChatInput(InputChannel):
    name: ClassVar[str] = "wechat"

    def __init__(self, api: WeChatApi, media: MediaSink, *, token: str, encoding_aes_key: str | None) -> None:
        self.api = api
        self.media = media
        self.token = token
        self.crypto = WeChatCrypto(token, encoding_aes_key, api.app_id) if encoding_aes_key else None

    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        async def verify(request: web.Request) -> web.Response:
            """WeChat's check of the URL when it is configured: the echo, if the signature is ours."""
            query = request.query
            if not self._signed(query):
                return error_response(Forbidden("bad signature", code="bad_signature"))
            return web.Response(text=query.get("echostr", ""))

        async def receive(request: web.Request) -> web.Response:
            query = request.query
            if not self._signed(query):
                log.warning("wechat webhook with a bad signature")
                return error_response(Forbidden("bad signature", code="bad_signature"))
            body = await request.content.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                return error_response(TooLarge(f"the message is larger than {MAX_BODY_BYTES} bytes"))
            try:
                inbound = await self.to_inbound(self._plain(body, query))
            except InvalidInbound as error:
                log.warning("wechat webhook: %s", error.message)
                return error_response(error)
            except Ignored as reason:
                log.info("wechat message ignored: %s", reason)
                return web.Response(text="success")
            try:
                await on_message(inbound)  # stored before WeChat hears "success"; replies go via the outbox
            except SenderThrottled:
                # Acknowledged and dropped: WeChat redelivers anything not answered "success".
                log.info("wechat message %s dropped: its sender writes too fast", inbound.channel_message_id)
            return web.Response(text="success")

        # Not in /api/openapi.json yet (it came after the document was written): WeChat's XML protocol.
        return [
            route(Operation("GET", WEBHOOK_PATH, "WeChat's check of the server URL (the echo)", "channels",
                            published=False), verify),
            route(Operation("POST", WEBHOOK_PATH, "A customer-service message (XML, plain or safe mode)", "channels",
                            published=False), receive),
        ]  # fmt: skip

    def _signed(self, query: Any) -> bool:
        try:
            check_signature(self.token, query.get("signature", ""), query.get("timestamp", ""), query.get("nonce", ""))
        except InvalidSignatureException:
            return False
        return True

    def _plain(self, body: bytes, query: Any) -> str:
        """The message XML, decrypted in safe mode (its own signature checked)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInbound("invalid_encoding", "the message is not UTF-8") from None
        if query.get("encrypt_type") != "aes":
            return text
        if self.crypto is None:
            raise InvalidInbound("not_configured", "an encrypted message, but no WECHAT_ENCODING_AES_KEY is set")
        try:
            return str(
                self.crypto.decrypt_message(
                    text, query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
                )
            )
        except InvalidSignatureException:
            raise InvalidInbound("bad_signature", "the encrypted message's signature does not match") from None
        except Exception as exc:  # wechatpy raises several kinds on malformed ciphertext or XML
            raise InvalidInbound("invalid_payload", f"the encrypted message cannot be read: {exc}") from None

    async def to_inbound(self, xml: str) -> InboundMessage:
        try:
            message = parse_message(xml)
        except Exception as exc:  # xmltodict on malformed XML
            raise InvalidInbound("invalid_payload", f"not a WeChat message: {exc}") from None
        openid = str(getattr(message, "source", "") or "")
        if not openid:
            raise InvalidInbound("invalid_payload", "the message names no sender (FromUserName)")
        kind = str(getattr(message, "type", ""))
        metadata: dict[str, Any] = {"to": str(getattr(message, "target", "")), "type": kind}
        attachments: list[Attachment] = []
        text = ""
        if kind == "text":
            text = storable_text(str(getattr(message, "content", "") or "")).strip()
        elif kind == "voice":
            text = storable_text(str(getattr(message, "recognition", "") or "")).strip()  # WeChat's own ASR
            metadata["voice"] = True
        elif kind == "image":
            attachment, rejected = await self._image(str(getattr(message, "media_id", "")))
            if attachment is not None:
                attachments.append(attachment)
            if rejected is not None:
                metadata["rejected_attachments"] = [rejected]
        elif kind == "event":
            event = str(getattr(message, "event", ""))
            if event not in ("subscribe", "user_enter_tempsession"):
                raise Ignored(f"event {event}")
            text = "你好"  # following the account or opening the chat greets, as a customer would
            metadata["event"] = event
        else:
            raise Ignored(f"a {kind} message")
        if not text and not attachments and "rejected_attachments" not in metadata:
            raise Ignored("nothing this channel handles")
        message_id = getattr(message, "id", None)
        created = int(getattr(message, "time", 0) or 0)
        return InboundMessage(
            channel=self.name,
            sender_id=openid,
            channel_message_id=str(message_id) if message_id else f"{openid}:{created}:{kind}",
            text=text[:MAX_TEXT_CHARS],
            attachments=attachments,
            metadata=metadata,
        )

    async def _image(self, media_id: str) -> tuple[Attachment | None, dict[str, str] | None]:
        if not media_id:
            raise InvalidInbound("invalid_payload", "an image message without a MediaId")
        try:
            data, content_type = await self.api.media(media_id)
        except DeliveryFailed as exc:  # the API is unreachable: nothing stored, WeChat redelivers
            raise InvalidInbound("media_unavailable", str(exc)) from exc
        try:
            return await self.media.save(data, content_type or "image/jpeg", f"{media_id}.jpg"), None
        except MediaRejected as rejected:
            log.info("wechat image %s refused: %s", media_id, rejected.message)
            return None, {"reason": rejected.reason, "detail": rejected.message}


class WeChatOutput(OutputChannel):
    name: ClassVar[str] = "wechat"

    def __init__(self, api: WeChatApi) -> None:
        self.api = api

    async def close(self) -> None:
        await self.api.close()

    async def send(self, message: Message) -> str | None:
        if not message.recipient_id:
            raise DeliveryFailed("no openid to send to", permanent=True)
        await self.api.send_text(message.recipient_id, text_with_choices(message, blank_line=True))
        return None


@dataclass(frozen=True, slots=True)
class WeChatSettings:
    """WeChat Official Account / Mini Program customer-service messages."""

    title: ClassVar[str] = "Channel: WeChat"
    app_id: str | None = setting(None, env="WECHAT_APP_ID", help="enables WeChat: the account's AppID")
    app_secret: str | None = setting(None, env="WECHAT_APP_SECRET", secret=True, help="the account's AppSecret")
    token: str | None = setting(
        None, env="WECHAT_TOKEN", secret=True, help="the Token set in the account's server configuration (signatures)"
    )
    encoding_aes_key: str | None = setting(
        None,
        env="WECHAT_ENCODING_AES_KEY",
        secret=True,
        help="the EncodingAESKey for safe mode (encrypted messages); unset: plain-text mode only",
    )
    api_base_url: str = setting(
        "https://api.weixin.qq.com", env="WECHAT_API_BASE_URL", help="the WeChat server API (a stand-in in tests)"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.app_id)

    def validate(self) -> None:
        if not self.enabled:
            return
        for variable, value in (("WECHAT_APP_SECRET", self.app_secret), ("WECHAT_TOKEN", self.token)):
            if not value:
                raise SettingsError(f"WECHAT_APP_ID needs {variable}", variable=variable)
        if self.encoding_aes_key is not None and len(self.encoding_aes_key) != 43:
            raise SettingsError("WECHAT_ENCODING_AES_KEY must be the 43 characters WeChat shows",
                                variable="WECHAT_ENCODING_AES_KEY")  # fmt: skip


def build(section: WeChatSettings, deps: ChannelDeps) -> tuple[InputChannel, OutputChannel]:
    assert section.app_id and section.app_secret and section.token
    api = WeChatApi(section.app_id, section.app_secret, section.api_base_url)
    return (
        WeChatInput(api, deps.media, token=section.token, encoding_aes_key=section.encoding_aes_key),
        WeChatOutput(api),
    )


SPEC = ChannelSpec(
    name=WeChatInput.name,
    label={"zh": "微信", "en": "WeChat"},
    identity="wechat",
    settings=WeChatSettings,
    build=build,
    outside_account=True,
)
