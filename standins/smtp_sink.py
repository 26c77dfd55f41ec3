"""An SMTP server on loopback that keeps every mail it is given (a relay the gateway sends
replies through), with when each arrived. Parses with the stdlib's ``policy.default``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session

from supervisor import free_port


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    mail: EmailMessage
    recipients: tuple[str, ...]
    at: float
    """``time.monotonic()`` when the DATA command completed."""


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[ReceivedMail] = []
        self.on_mail: Callable[[ReceivedMail], None] | None = None
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        received = ReceivedMail(parsed, tuple(envelope.rcpt_tos), time.monotonic())
        self.received.append(received)
        if self.on_mail is not None:
            self.on_mail(received)
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self), "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
