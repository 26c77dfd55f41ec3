"""A local stand-in for Telegram's Bot API, speaking its HTTP protocol on loopback.

Serves ``/bot<token>/<method>`` (PTB posts form-encoded fields, so ``chat_id`` arrives as a
string and ``reply_markup`` as a JSON string) and ``/file/bot<token>/<path>`` for getFile
downloads. It records what the bot sent and can be stopped and started again on the same port
to play an outage. Only the methods the gateway uses are implemented.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from standins.loopback import LoopbackServer

TOKEN = "123456:TEST-token"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "售后客服", "username": "shop_service_bot"}


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: int
    chat_id: str
    text: str
    at: float


class BotApiStandIn(LoopbackServer):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.sent: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.files: dict[str, bytes] = {}
        self.updates: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self._message_ids = itertools.count(1000)
        self.hang_sends = False
        """While True, sendMessage is received but never answered (a provider that stalls)."""
        self.send_attempts = 0
        self.deliveries: list[Delivery] = []
        """Every message answered with ok, with its Bot API message id and when (monotonic clock)."""
        self.on_delivery: Callable[[Delivery], None] | None = None
        self.send_failure: tuple[int, int | None] | None = None
        """While set, sendMessage sends nothing and answers this HTTP status, with ``retry_after``
        seconds in its ``parameters`` when given (Telegram's 429 flood control)."""
        self.attempt_log: list[tuple[float, str, int]] = []
        """Every sendMessage: (monotonic time, chat id, HTTP status answered)."""
        self._released = asyncio.Event()

    async def stop(self) -> None:
        # A stalled send would otherwise hold the shutdown for aiohttp's 60-second grace period.
        self._released.set()
        await super().stop()
        self._released = asyncio.Event()

    def release_sends(self) -> None:
        """Stop stalling: sends held so far are answered now, later ones at once."""
        self.hang_sends = False
        self._released.set()
        self._released = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    async def _fields(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        fields = await self._fields(request)
        self.calls.append(method)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        result = await handler(fields)
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    async def _api_getMe(self, _: dict[str, Any]) -> Any:
        return BOT_USER

    async def _api_sendMessage(self, fields: dict[str, Any]) -> Any:
        self.send_attempts += 1
        if self.hang_sends:
            await self._released.wait()  # until the caller gives up or dies, or the stand-in stops
        if self.send_failure is not None:
            status, retry_after = self.send_failure
            self.attempt_log.append((time.monotonic(), str(fields.get("chat_id")), status))
            failure: dict[str, Any] = {"ok": False, "error_code": status, "description": f"stand-in failure {status}"}
            if retry_after is not None:
                failure["description"] = f"Too Many Requests: retry after {retry_after}"
                failure["parameters"] = {"retry_after": retry_after}
            return web.json_response(failure, status=status)
        if str(fields.get("chat_id")) == "404":
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, status=400
            )
        markup = fields.get("reply_markup")
        sent = {
            "chat_id": str(fields["chat_id"]),
            "text": fields["text"],
            "reply_markup": json.loads(markup) if isinstance(markup, str) else markup,
        }
        self.sent.append(sent)
        self.attempt_log.append((time.monotonic(), sent["chat_id"], 200))
        message_id = next(self._message_ids)
        delivery = Delivery(message_id, sent["chat_id"], sent["text"], time.monotonic())
        self.deliveries.append(delivery)
        if self.on_delivery is not None:
            self.on_delivery(delivery)
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": int(sent["chat_id"]), "type": "private"},
            "from": BOT_USER,
            "text": sent["text"],
        }

    async def _api_answerCallbackQuery(self, _: dict[str, Any]) -> Any:
        return True

    async def _api_getFile(self, fields: dict[str, Any]) -> Any:
        file_id = fields["file_id"]
        if file_id not in self.files:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"})
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(self.files[file_id]),
            "file_path": f"photos/{file_id}.jpg",
        }

    async def _api_setWebhook(self, fields: dict[str, Any]) -> Any:
        self.webhook = fields
        return True

    async def _api_deleteWebhook(self, _: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def _api_getUpdates(self, fields: dict[str, Any]) -> Any:
        offset = int(fields.get("offset") or 0)
        deadline = time.monotonic() + min(float(fields.get("timeout") or 0), 0.5)
        while True:
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if pending or time.monotonic() >= deadline:
                return pending
            await asyncio.sleep(0.02)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        file_id = path.removeprefix("photos/").removesuffix(".jpg")
        if request.match_info["token"] != self.token or file_id not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[file_id], content_type="image/jpeg")


def private_update(update_id: int, chat_id: int, **message: Any) -> dict[str, Any]:
    """An update as Telegram sends it for a message in a private chat."""
    user = {"id": chat_id, "is_bot": False, "first_name": "伟", "last_name": "张", "language_code": "zh-hans"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100000,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "伟"},
            "from": user,
            **message,
        },
    }


def callback_update(update_id: int, chat_id: int, data: str) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "伟"}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb-{update_id}",
            "from": user,
            "chat_instance": "ci-1",
            "data": data,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": "请选择订单",
            },
        },
    }
