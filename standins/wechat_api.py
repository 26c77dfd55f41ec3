"""A local stand-in for WeChat: its server API and its message push, on loopback.

The server API side serves what the gateway calls — ``GET /cgi-bin/token`` (the AppID and
AppSecret must match; a token lives ``token_lifetime`` seconds), ``POST
/cgi-bin/message/custom/send`` (客服消息, recorded; a stale or revoked token gets ``40001``) and
``GET /cgi-bin/media/get`` (the images :meth:`WeChatStandIn.upload` registered; JSON ``40007`` for
others) — with WeChat's JSON error shape. The push side is :meth:`WeChatStandIn.push`: a message
as WeChat's servers send it — XML, signed with the account's token, encrypted in safe mode —
redelivered up to three times until the answer is ``success``, as WeChat does.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from wechatpy.crypto import WeChatCrypto

from standins.loopback import LoopbackServer

APP_ID = "wx0123456789abcdef"
APP_SECRET = "wechat-standin-app-secret"
TOKEN = "wechatstandintoken"
ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat shows it
ACCOUNT = "gh_0123456789ab"
"""The Official Account's own id (ToUserName of what customers send)."""


@dataclass
class Push:
    """What the gateway answered to one message, and how many deliveries it took."""

    status: int
    body: str
    deliveries: int


@dataclass
class WeChatStandIn(LoopbackServer):
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    token: str = TOKEN
    encoding_aes_key: str = ENCODING_AES_KEY
    token_lifetime: int = 7200
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Every accepted 客服消息 body."""
    tokens_issued: int = 0
    media_files: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        LoopbackServer.__init__(self)
        self._valid: dict[str, float] = {}
        self._ids = itertools.count(24_000_000_000)

    # -- the server API ----------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_get("/cgi-bin/media/get", self._media)

    async def _token(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("grant_type") != "client_credential":
            return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        if query.get("appid") != self.app_id or query.get("secret") != self.app_secret:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        token = "ACCESS_" + secrets.token_hex(16)
        self._valid[token] = time.monotonic() + self.token_lifetime
        self.tokens_issued += 1
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime})

    def _token_ok(self, request: web.Request) -> bool:
        expires = self._valid.get(request.query.get("access_token", ""))
        return expires is not None and time.monotonic() < expires

    def revoke_tokens(self) -> None:
        """WeChat invalidated every token (e.g. the AppSecret was reset elsewhere)."""
        self._valid.clear()

    async def _custom_send(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        body = await request.json()
        if body.get("msgtype") != "text" or not body.get("touser"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _media(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        found = self.media_files.get(request.query.get("media_id", ""))
        if found is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        data, content_type = found
        return web.Response(body=data, content_type=content_type)

    def upload(self, data: bytes, content_type: str = "image/jpeg") -> str:
        """A customer's image as WeChat keeps it: its media id."""
        media_id = "MEDIA_" + hashlib.sha256(data).hexdigest()[:24]
        self.media_files[media_id] = (data, content_type)
        return media_id

    def texts_to(self, openid: str) -> list[str]:
        return [str(m["text"]["content"]) for m in self.sent if m.get("touser") == openid]

    # -- pushing messages to the gateway ---------------------------------------------------------

    def message_xml(
        self, openid: str, *, text: str | None = None, image_media_id: str | None = None, event: str | None = None,
        msg_id: int | None = None, created: int | None = None,
    ) -> str:  # fmt: skip
        created = created or int(time.time())
        head = (
            f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{escape(openid)}]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime>"
        )
        if event is not None:
            return f"<xml>{head}<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event></xml>"
        msg_id = msg_id if msg_id is not None else next(self._ids)
        if image_media_id is not None:
            return (
                f"<xml>{head}<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.example/pic]]></PicUrl>"
                f"<MediaId><![CDATA[{image_media_id}]]></MediaId><MsgId>{msg_id}</MsgId></xml>"
            )
        return (
            f"<xml>{head}<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text or ''}]]></Content>"
            f"<MsgId>{msg_id}</MsgId></xml>"
        )

    def signed_query(self, *, token: str | None = None) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        signature = hashlib.sha1("".join(sorted([token or self.token, timestamp, nonce])).encode()).hexdigest()
        return {"signature": signature, "timestamp": timestamp, "nonce": nonce}

    async def push(
        self, gateway_url: str, xml: str, *, encrypted: bool = False, attempts: int = 3, token: str | None = None
    ) -> Push:
        """Deliver one message as WeChat does: signed (encrypted in safe mode), redelivered until
        the answer is ``success`` — at most three times."""
        query = self.signed_query(token=token)
        body = xml
        if encrypted:
            crypto = WeChatCrypto(self.token, self.encoding_aes_key, self.app_id)
            body = str(crypto.encrypt_message(xml, query["nonce"], query["timestamp"]))
            parsed = body.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0]
            query.update(encrypt_type="aes", msg_signature=parsed)
        status, text, deliveries = 0, "", 0
        async with aiohttp.ClientSession() as http:
            while deliveries < attempts:
                deliveries += 1
                try:
                    async with http.post(
                        gateway_url, params=query, data=body.encode(),
                        headers={"Content-Type": "text/xml"}, timeout=aiohttp.ClientTimeout(total=5),
                    ) as response:  # fmt: skip
                        status, text = response.status, await response.text()
                except TimeoutError:
                    status, text = 0, "timeout"
                if status == 200 and text in ("success", ""):
                    break
        return Push(status, text, deliveries)
