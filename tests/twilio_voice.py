"""Twilio's side of a phone call, played against the gateway (test and bench code).

Does what Twilio does for a call to the hotline: signs and posts the voice webhook, reads the TwiML,
opens the ``<Stream>`` websocket with a signed handshake and sends real Media Streams events
(``connected``, ``start`` with the ``<Parameter>`` values as ``customParameters``, ``media`` with
base64 μ-law 20 ms payloads and string ``sequenceNumber``/``chunk``/``timestamp``, ``dtmf``,
``mark`` echoes, ``stop``), collects what the gateway sends back (``media``, ``mark``, ``clear``), and
follows the ``<Connect action>`` URL once the gateway closes the stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from ivr.audio import media_frames
from twiliohooks import SIGNATURE_HEADER

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "twilio-voice-test-token"
HOTLINE = "+864008001234"
PUBLIC = "https://cs.example.com"
SILENCE_FRAME = b"\xff" * 160

_call_numbers = itertools.count(1)


def new_call_sid() -> str:
    return f"CA{next(_call_numbers):08d}{int(time.time() * 1000) % 10**24:024d}"


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    return {SIGNATURE_HEADER: RequestValidator(token).compute_signature(url, form)}


@dataclass
class Received:
    """What the gateway sent on the stream, in order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    media_frames: int = 0
    first_media_at: float | None = None

    def marks(self) -> list[str]:
        return [e["mark"]["name"] for e in self.events if e.get("event") == "mark"]

    def clears(self) -> int:
        return sum(1 for e in self.events if e.get("event") == "clear")


class TwilioCall:
    """One call from ``caller`` to the hotline, driven step by step by a test."""

    def __init__(
        self,
        http: TestClient[Any, Any],
        caller: str,
        *,
        call_sid: str | None = None,
        token: str = AUTH_TOKEN,
        public: str = PUBLIC,
        echo_marks: bool = True,
        attestation: str = "TN-Validation-Passed-A",
    ) -> None:
        self.http = http
        self.caller = caller
        self.attestation = attestation
        """Twilio's ``StirVerstat`` for the call ("" for a number nobody vouched for)."""
        self.call_sid = call_sid or new_call_sid()
        self.token = token
        self.public = public
        self.echo_marks = echo_marks
        self.stream_sid = ""
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.received = Received()
        self._reader: asyncio.Task[None] | None = None
        self._sequence = itertools.count(1)
        self._chunk = itertools.count(1)
        self._audio_ms = 0
        self._changed = asyncio.Event()
        self.closed_by_gateway = asyncio.Event()
        self.twiml: list[str] = []

    # -- webhooks ----------------------------------------------------------------------------

    def form(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": self.caller,
            "To": HOTLINE,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            "StirVerstat": self.attestation,  # what Twilio adds for a call its carrier attested
            **extra,
        }

    async def post(self, url: str, form: dict[str, str], *, signed: bool = True) -> tuple[int, str]:
        path = urlsplit(url).path
        headers = sign(self.public + path, form, self.token) if signed else {}
        response = await self.http.post(path, data=form, headers=headers)
        return response.status, await response.text()

    async def dial(self) -> str:
        status, body = await self.post(self.public + "/webhooks/twilio/voice", self.form())
        assert status == 200, body
        self.twiml.append(body)
        return body

    async def follow_action(self, twiml: str, **extra: str) -> str:
        """What Twilio does when the ``<Connect>`` ends: request its action URL for the next TwiML."""
        action = ET.fromstring(twiml).find("Connect").get("action")  # type: ignore[union-attr]
        assert action, twiml
        status, body = await self.post(action, self.form(CallStatus="in-progress", **extra))
        assert status == 200, body
        self.twiml.append(body)
        return body

    # -- the media stream --------------------------------------------------------------------

    async def connect(self, twiml: str) -> None:
        root = ET.fromstring(twiml)
        stream = root.find("Connect/Stream")
        assert stream is not None, twiml
        url = stream.get("url", "")
        assert url.startswith("wss://"), url
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        self.socket = await self.http.ws_connect(urlsplit(url).path, headers=sign(url, {}, self.token))
        self.stream_sid = "MZ" + self.call_sid[2:]
        self._sequence = itertools.count(1)
        self._chunk = itertools.count(1)
        self._audio_ms = 0
        self.closed_by_gateway.clear()
        self._reader = asyncio.create_task(self._read())
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, sequenced=False)
        await self._send(
            {
                "event": "start",
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": ACCOUNT_SID,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": parameters,
                },
            }
        )

    async def _send(self, message: dict[str, Any], *, sequenced: bool = True) -> None:
        assert self.socket is not None
        if sequenced:
            message = {**message, "sequenceNumber": str(next(self._sequence)), "streamSid": self.stream_sid}
        await self.socket.send_str(json.dumps(message))

    async def _read(self) -> None:
        assert self.socket is not None
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(message.data)
            self.received.events.append(event)
            if event.get("event") == "media":
                self.received.media_frames += 1
                if self.received.first_media_at is None:
                    self.received.first_media_at = time.monotonic()
            elif event.get("event") == "mark" and self.echo_marks:
                await self.echo_mark(event["mark"]["name"])
            self._changed.set()
        self.closed_by_gateway.set()
        self._changed.set()

    async def echo_mark(self, name: str) -> None:
        """Twilio's answer to a mark: the audio before it has played (or was cleared)."""
        if self.socket is not None and not self.socket.closed:
            await self._send({"event": "mark", "mark": {"name": name}})

    async def send_audio(self, ulaw: bytes, *, realtime: bool = False) -> None:
        for frame in media_frames(ulaw):
            await self._send(
                {
                    "event": "media",
                    "media": {
                        "track": "inbound",
                        "chunk": str(next(self._chunk)),
                        "timestamp": str(self._audio_ms),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
            )
            self._audio_ms += 20
            if realtime:
                await asyncio.sleep(0.02)
            else:
                await asyncio.sleep(0)

    async def send_silence(self, seconds: float, *, realtime: bool = False) -> None:
        await self.send_audio(SILENCE_FRAME * int(seconds * 50), realtime=realtime)

    async def press(self, keys: str) -> None:
        for key in keys:
            await self._send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": key}})

    async def say(self, ulaw: bytes, *, trailing_silence: float = 1.2) -> None:
        """Speak a recording, then stay quiet long enough for the end of the utterance."""
        await self.send_audio(ulaw)
        await self.send_silence(trailing_silence)

    async def wait_for_mark(self, count: int, *, timeout: float = 60.0, keep_audio: bool = True) -> None:
        """Wait until the gateway has sent ``count`` marks (prompts), sending silence meanwhile as a
        live call does (so audio-time timers run)."""
        await self._wait(lambda: len(self.received.marks()) >= count, timeout, keep_audio)

    async def wait_closed(self, *, timeout: float = 60.0) -> None:
        await self._wait(self.closed_by_gateway.is_set, timeout, keep_audio=True)

    async def _wait(self, done: Any, timeout: float, keep_audio: bool) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {[e.get('event') for e in self.received.events][-10:]}")
            if (
                keep_audio
                and self.socket is not None
                and not self.socket.closed
                and not self.closed_by_gateway.is_set()
            ):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.send_silence(0.1)  # about real time: 100 ms of audio per 100 ms waited
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.1)

    async def hang_up(self) -> None:
        """The caller hangs up: Twilio sends ``stop`` and closes the socket."""
        if self.socket is not None and not self.socket.closed:
            await self._send({"event": "stop", "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}})
            await self.socket.close()
        await self.close()

    async def close(self) -> None:
        if self.socket is not None and not self.socket.closed:
            await self.socket.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
