"""One Twilio Media Streams websocket: its JSON events in, ``media``/``mark``/``clear`` out.

Owns the wire protocol of a bidirectional ``<Connect><Stream>``: parsing and checking Twilio's
events (``connected``, ``start`` with ``streamSid``, ``callSid``, ``mediaFormat`` and
``customParameters``; ``media`` with base64 μ-law payloads and string ``sequenceNumber``,
``chunk`` and ``timestamp``; ``dtmf``; ``mark``; ``stop``), dropping repeated events (same
``sequenceNumber``), and sending audio back in 20 ms ``media`` messages followed by a ``mark`` (Twilio
echoes the mark once the audio before it has played, or when ``clear`` drops it).

Must not know the call flow, recognisers or the dialogue.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from errors import UserError
from ivr.audio import FRAME_BYTES

log = logging.getLogger(__name__)

MAX_FRAME_CHARS = 64 * 1024
MAX_BAD_FRAMES = 20
"""Malformed frames tolerated (logged and skipped) before the stream is closed as broken."""


class StreamProtocolError(UserError):
    """A frame that is not a Media Streams event this gateway understands."""

    code = "invalid_stream_frame"


@dataclass(frozen=True, slots=True)
class StreamStart:
    stream_sid: str
    call_sid: str
    account_sid: str
    encoding: str
    sample_rate: int
    channels: int
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaFrame:
    payload: bytes
    chunk: int
    timestamp_ms: int
    track: str = "inbound"


@dataclass(frozen=True, slots=True)
class KeyPress:
    digit: str


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    name: str


@dataclass(frozen=True, slots=True)
class StreamStopped:
    call_sid: str


StreamEvent = StreamStart | MediaFrame | KeyPress | MarkPlayed | StreamStopped

DTMF_KEYS = frozenset("0123456789*#")


def _text(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise StreamProtocolError(f"{where}.{key} must be a non-empty string")
    return value


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise StreamProtocolError(f"'{key}' must be an object")
    return value


def parse_event(frame: str) -> tuple[StreamEvent | None, int | None]:
    """One websocket text frame → the event (None for ``connected``, which carries nothing we need)
    and its ``sequenceNumber`` (None where the event has none)."""
    if len(frame) > MAX_FRAME_CHARS:
        raise StreamProtocolError(f"frame longer than {MAX_FRAME_CHARS} characters")
    try:
        message = json.loads(frame)
    except json.JSONDecodeError as exc:
        raise StreamProtocolError(f"not JSON: {exc.msg}") from exc
    if not isinstance(message, dict):
        raise StreamProtocolError("a frame must be a JSON object")
    try:
        sequence = int(message["sequenceNumber"]) if message.get("sequenceNumber") is not None else None
    except (TypeError, ValueError) as exc:
        raise StreamProtocolError("sequenceNumber must be a number (as a string)") from exc
    return _event(message), sequence


def _event(message: dict[str, Any]) -> StreamEvent | None:
    event = message.get("event")
    if event == "connected":
        return None
    if event == "start":
        start = _object(message, "start")
        media_format = _object(start, "mediaFormat")
        parameters = start.get("customParameters") or {}
        if not isinstance(parameters, dict):
            raise StreamProtocolError("start.customParameters must be an object")
        try:
            rate, channels = int(media_format.get("sampleRate", 0)), int(media_format.get("channels", 0))
        except (TypeError, ValueError) as exc:
            raise StreamProtocolError("start.mediaFormat sampleRate and channels must be numbers") from exc
        return StreamStart(
            stream_sid=_text(message if "streamSid" in message else start, "streamSid", "start"),
            call_sid=_text(start, "callSid", "start"),
            account_sid=str(start.get("accountSid", "")),
            encoding=str(media_format.get("encoding", "")),
            sample_rate=rate,
            channels=channels,
            parameters={str(k): str(v) for k, v in parameters.items()},
        )
    if event == "media":
        media = _object(message, "media")
        try:
            payload = base64.b64decode(_text(media, "payload", "media"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StreamProtocolError("media.payload is not base64") from exc
        try:
            chunk, timestamp = int(media.get("chunk", 0)), int(media.get("timestamp", 0))
        except (TypeError, ValueError) as exc:
            raise StreamProtocolError("media.chunk and media.timestamp must be numbers") from exc
        return MediaFrame(payload, chunk, timestamp, str(media.get("track", "inbound")))
    if event == "dtmf":
        dtmf = _object(message, "dtmf")
        digit = _text(dtmf, "digit", "dtmf")
        if digit not in DTMF_KEYS:
            raise StreamProtocolError(f"dtmf.digit {digit!r} is not a keypad key")
        return KeyPress(digit)
    if event == "mark":
        return MarkPlayed(_text(_object(message, "mark"), "name", "mark"))
    if event == "stop":
        stop = message.get("stop")
        return StreamStopped(str(stop.get("callSid", "")) if isinstance(stop, dict) else "")
    raise StreamProtocolError(f"unknown event {event!r}")


class MediaStream:
    """The server side of one Media Streams websocket."""

    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket
        self.stream_sid: str | None = None
        self.start: StreamStart | None = None
        self.bad_frames = 0
        self._last_sequence = 0
        self.sent_media = 0

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Twilio's events in order; repeats (a ``sequenceNumber`` not above the last) are dropped."""
        async for message in self.socket:
            if message.type != WSMsgType.TEXT:
                if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE, WSMsgType.CLOSING):
                    return
                continue
            try:
                event, sequence = parse_event(message.data)
            except StreamProtocolError as exc:
                self.bad_frames += 1
                log.warning("media stream %s: %s", self.stream_sid or "?", exc)
                if self.bad_frames >= MAX_BAD_FRAMES:
                    log.error("media stream %s: too many bad frames, closing", self.stream_sid or "?")
                    await self.socket.close(code=1003, message=b"bad frames")
                    return
                continue
            if sequence is not None:
                if sequence <= self._last_sequence:
                    continue
                self._last_sequence = sequence
            if isinstance(event, StreamStart):
                self.stream_sid, self.start = event.stream_sid, event
            if event is not None:
                yield event
                if isinstance(event, StreamStopped):
                    return

    async def _send(self, message: dict[str, Any]) -> bool:
        if self.socket.closed or self.stream_sid is None:
            return False
        try:
            await self.socket.send_str(json.dumps({**message, "streamSid": self.stream_sid}))
        except (ConnectionError, RuntimeError) as exc:
            log.info("media stream %s went away: %s", self.stream_sid, exc)
            return False
        return True

    async def play(self, ulaw: bytes, mark: str) -> bool:
        """Queue audio for the caller in 20 ms frames, then a mark Twilio echoes when it has played."""
        for start in range(0, len(ulaw), FRAME_BYTES):
            payload = base64.b64encode(ulaw[start : start + FRAME_BYTES]).decode()
            if not await self._send({"event": "media", "media": {"payload": payload}}):
                return False
            self.sent_media += 1
        return await self._send({"event": "mark", "mark": {"name": mark}})

    async def clear(self) -> bool:
        """Drop the audio Twilio has not played yet (barge-in)."""
        return await self._send({"event": "clear"})

    async def close(self) -> None:
        """End the stream: Twilio goes on to the ``<Connect>`` action URL for the next TwiML."""
        if not self.socket.closed:
            await self.socket.close()
