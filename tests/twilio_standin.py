"""A local stand-in for Twilio's Messages REST API on loopback (test code).

``POST /2010-04-01/Accounts/<sid>/Messages.json`` with HTTP basic auth and form fields
``To``, ``From``, ``Body``, answered as Twilio does (201 and the message resource; a 400 with
Twilio's error body for an invalid number). Can be stopped and started on the same port.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from aiohttp import web

from tests.helpers import LoopbackServer

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-test-auth-token"
FROM_NUMBER = "+15005550006"
INVALID_NUMBER = "+15005550001"  # Twilio's magic test number for "invalid"


class TwilioStandIn(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, str]] = []
        self._sids = itertools.count(1)
        self.media: dict[str, tuple[bytes, str]] = {}
        """MMS media by id, served (with basic auth) as Twilio serves a message's media."""
        self.media_requests = 0
        self.cdn_requests = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{message}/Media/{media}", self._media)
        app.router.add_get("/cdn/{media}", self._cdn)

    def media_url(self, message_sid: str, media_id: str) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message_sid}/Media/{media_id}"

    async def _media(self, request: web.Request) -> web.Response:
        self.media_requests += 1
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        if request.match_info["media"] not in self.media:
            return web.json_response({"code": 20404, "message": "not found", "status": 404}, status=404)
        # Like Twilio: the authenticated API answers with a redirect to short-lived storage.
        raise web.HTTPTemporaryRedirect(f"/cdn/{request.match_info['media']}")

    async def _cdn(self, request: web.Request) -> web.Response:
        self.cdn_requests += 1
        data, content_type = self.media[request.match_info["media"]]
        return web.Response(body=data, content_type=content_type)

    async def _create_message(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected or request.match_info["sid"] != ACCOUNT_SID:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if form.get("To") == INVALID_NUMBER:
            body = {
                "code": 21211,
                "message": f"The 'To' number {form['To']} is not a valid phone number.",
                "status": 400,
            }
            return web.json_response(body, status=400)
        sid = f"SM{next(self._sids):032d}"
        self.sent.append(form)
        resource: dict[str, Any] = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        }
        return web.json_response(resource, status=201)
