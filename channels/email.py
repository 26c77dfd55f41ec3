"""E-mail: an SMTP listener (aiosmtpd) and optional IMAP polling in; SMTP to a relay out.

Owns the mail wire format around :mod:`channels.email_text`: which recipients the listener
accepts, answering the sending server only after the message is stored (250) or with a
temporary failure it will retry (451), polling a mailbox and marking mails seen only after
they are stored, and replies that thread in the customer's mail client (``Re:`` subject,
``In-Reply-To`` and ``References``). The Message-ID is the channel message id, so a mail
delivered twice (a retrying server, a re-polled mailbox) is stored and answered once.
Automatic mails (bounces, out-of-office replies) are acknowledged and never answered, so two
robots cannot talk to each other forever.

Must not know about dialogue, NLU or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any, ClassVar, Protocol

import aiosmtplib
from aiohttp import web
from aioimaplib import IMAP4
from aiosmtpd.smtp import SMTP, Envelope, Session

import textpatterns
from channels.base import (
    DeliveryFailed,
    InboundHandler,
    InputChannel,
    InvalidInbound,
    MediaRejected,
    MediaSink,
    OutputChannel,
    SenderThrottled,
    text_with_choices,
)
from channels.email_text import ParsedMail, UnreadableMail, parse_mail
from channels.spec import ChannelDeps, ChannelSpec
from configuration import SettingsError, setting
from store.models import MAX_TEXT_CHARS, Attachment, InboundMessage, Message

log = logging.getLogger(__name__)

DEFAULT_MAX_MAIL_BYTES = 25 * 1024 * 1024
_REPLY_PREFIX = textpatterns.compile(r"^\s*(re|回复|答复)\s*[:：]", textpatterns.IGNORECASE)
_UID_LINE = re.compile(rb"^\* SEARCH(?P<uids>(?: \d+)*)", re.MULTILINE)  # the IMAP server's answer, not outside text


@dataclass(frozen=True, slots=True)
class ImapMailbox:
    host: str
    port: int
    user: str
    password: str
    mailbox: str = "INBOX"
    poll_seconds: float = 30.0


class EmailInput(InputChannel):
    name: ClassVar[str] = "email"

    def __init__(
        self,
        addresses: list[str],
        media: MediaSink,
        *,
        listen: tuple[str, int] | None = ("127.0.0.1", 2525),
        imap: ImapMailbox | None = None,
        max_mail_bytes: int = DEFAULT_MAX_MAIL_BYTES,
        accept_domains: tuple[str, ...] = (),
        trusted_servers: tuple[str, ...] = (),
    ) -> None:
        if not addresses:
            raise ValueError("the e-mail channel needs at least one address it answers for")
        self.addresses = {a.lower() for a in addresses}
        # Whole domains (a catch-all such as ``kefu@`` and ``shouhou@`` of one shop domain).
        self.accept_domains = {d.strip().lstrip("@").lower() for d in accept_domains if d.strip()}
        self.media = media
        self.listen = listen
        self.imap = imap
        self.max_mail_bytes = max_mail_bytes
        # Receiving servers (authserv-id) whose Authentication-Results prove a From address.
        self.trusted_servers = frozenset(s.strip().lower() for s in trusted_servers if s.strip())
        self._server: asyncio.Server | None = None
        self._poller: asyncio.Task[None] | None = None

    def accepts(self, address: str) -> bool:
        """Whether the listener takes mail for this recipient (a configured address or domain)."""
        address = address.strip().lower()
        return address in self.addresses or address.rpartition("@")[2] in self.accept_domains

    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        return []  # mail arrives over SMTP or IMAP, not HTTP

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, on_message: InboundHandler) -> None:
        if self.listen is not None:
            handler = _SmtpHandler(self, on_message)
            host, port = self.listen
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                lambda: SMTP(
                    handler,
                    data_size_limit=self.max_mail_bytes,
                    enable_SMTPUTF8=True,
                    hostname="aftersales-gateway",
                ),
                host,
                port,
            )
            log.info("e-mail: SMTP listener on %s:%s for %s", host, self.port, ", ".join(sorted(self.addresses)))

    def receives_exclusively(self) -> bool:
        return self.imap is not None  # one process polls the mailbox; the others would race it

    async def start_exclusive(self, on_message: InboundHandler) -> None:
        if self.imap is not None and self._poller is None:
            self._poller = asyncio.create_task(self._poll_forever(on_message), name="imap-poller")

    async def stop_exclusive(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    async def stop(self) -> None:
        await self.stop_exclusive()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- turning a mail into a message ---------------------------------------------------

    async def to_inbound(self, mail: ParsedMail) -> InboundMessage:
        attachments: list[Attachment] = []
        rejected: list[dict[str, str]] = []
        for part in mail.attachments:
            try:
                attachments.append(await self.media.save(part.data, part.content_type, part.filename))
            except MediaRejected as refused:
                log.info("e-mail attachment of %s refused: %s", mail.message_id, refused.message)
                rejected.append({"reason": refused.reason, "detail": refused.message, "filename": part.filename or ""})
        text = mail.text or (mail.subject if not attachments else "")
        metadata: dict[str, Any] = {
            "message_id": mail.message_id,
            "subject": mail.subject,
            "in_reply_to": mail.in_reply_to,
            "references": mail.references,
        }
        if len(text) > MAX_TEXT_CHARS:
            text, metadata["truncated"] = text[:MAX_TEXT_CHARS], True
        if rejected:
            metadata["rejected_attachments"] = rejected
        if not text.strip() and not attachments and not rejected:
            raise InvalidInbound("empty_message", "the mail has no text and no attachment")
        # Anyone can write any From: it names the customer only when a mail server we trust says
        # SPF/DKIM/DMARC passed for it. Otherwise the address is where replies go, and a hint.
        profile: dict[str, str] = {}
        if mail.sender_authenticated(self.trusted_servers):
            profile["email"] = mail.sender
        else:
            metadata["from_unverified"] = True
        if mail.sender_name:
            profile["name"] = mail.sender_name
        return InboundMessage(
            channel=self.name,
            sender_id=mail.sender,
            channel_message_id=mail.message_id[:512],
            text=text,
            attachments=attachments,
            profile=profile,
            metadata=metadata,
        )

    async def accept(self, raw: bytes, on_message: InboundHandler, envelope_sender: str | None = None) -> str:
        """Store one mail; returns what happened ("stored", "automatic", "empty") or raises."""
        mail = parse_mail(raw, envelope_sender)
        if mail.automatic:
            log.info("e-mail %s not answered: %s", mail.message_id, mail.automatic)
            return "automatic"
        try:
            inbound = await self.to_inbound(mail)
        except InvalidInbound as error:
            log.info("e-mail %s dropped: %s", mail.message_id, error.message)
            return "empty"
        await on_message(inbound)
        return "stored"

    # -- IMAP ------------------------------------------------------------------------------

    async def _poll_forever(self, on_message: InboundHandler) -> None:
        assert self.imap is not None
        while True:
            try:
                await self.poll_once(on_message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the mailbox may be down: log, wait, try again
                log.warning("IMAP poll of %s@%s failed: %s", self.imap.user, self.imap.host, exc)
            await asyncio.sleep(self.imap.poll_seconds)

    async def poll_once(self, on_message: InboundHandler) -> int:
        """Store every unseen mail, then mark it seen; returns how many were stored."""
        assert self.imap is not None
        client = IMAP4(self.imap.host, self.imap.port, timeout=30)
        await client.wait_hello_from_server()
        stored = 0
        try:
            _check(await client.login(self.imap.user, self.imap.password), "LOGIN")
            _check(await client.select(self.imap.mailbox), "SELECT")
            search = await client.uid_search("UNSEEN", charset=None)
            _check(search, "SEARCH")
            uids = _search_uids(search.lines)
            for uid in uids:
                fetched = await client.uid("fetch", uid, "(BODY.PEEK[])")
                _check(fetched, "FETCH")
                raw = _fetched_body(fetched.lines)
                if raw is None:
                    log.warning("IMAP message %s had no body", uid)
                    continue
                try:
                    outcome = await self.accept(raw, on_message)
                except UnreadableMail as exc:
                    log.warning("IMAP message %s unreadable, marked seen: %s", uid, exc)
                    outcome = "unreadable"
                except SenderThrottled:  # left unseen: the next poll takes it; the others go on
                    log.info("IMAP message %s left for later: its sender writes too fast", uid)
                    continue
                # Seen only once stored: a crash before this line re-reads it, and the
                # Message-ID makes that harmless.
                _check(await client.uid("store", uid, "+FLAGS", "(\\Seen)"), "STORE")
                stored += outcome == "stored"
        finally:
            with contextlib.suppress(Exception):
                await client.logout()
        return stored


class _SmtpHandler:
    """aiosmtpd's hooks: whom we accept mail for, and storing it before saying 250."""

    def __init__(self, channel: EmailInput, on_message: InboundHandler) -> None:
        self.channel = channel
        self.on_message = on_message

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.channel.accepts(address):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", errors="replace")
        try:
            outcome = await self.channel.accept(raw, self.on_message, envelope.mail_from)
        except UnreadableMail as exc:
            log.warning("e-mail from %s refused: %s", session.peer, exc)
            return f"550 5.6.0 {exc}"
        except SenderThrottled:  # the sending server retries later, as for any temporary failure
            return "451 4.7.1 Too many messages from this sender, please retry later"
        except Exception:
            log.exception("storing an e-mail failed; the sender will retry")
            return "451 4.3.0 Temporary failure, please retry"
        return "250 OK" if outcome != "automatic" else "250 OK (automatic mail, not answered)"


def _check(response: Any, command: str) -> None:
    if getattr(response, "result", "OK") != "OK":
        lines = b" ".join(x if isinstance(x, bytes) else str(x).encode() for x in response.lines)
        raise ConnectionError(f"IMAP {command} failed: {lines.decode(errors='replace')[:300]}")


def _search_uids(lines: list[Any]) -> list[str]:
    uids: list[str] = []
    for line in lines:
        data = line if isinstance(line, bytes | bytearray) else str(line).encode()
        data = bytes(data)
        if match := _UID_LINE.match(b"* SEARCH " + data if not data.startswith(b"*") else data):
            uids += match.group("uids").decode().split()
        elif data.strip() and data.strip().replace(b" ", b"").isdigit():
            uids += data.decode().split()
    return uids


def _fetched_body(lines: list[Any]) -> bytes | None:
    """aioimaplib returns the literal as its own bytearray line after the FETCH line."""
    for line in lines:
        if isinstance(line, bytearray):
            return bytes(line)
    return None


class ThreadSource(Protocol):
    async def thread_of(self, conversation_id: str, in_reply_to: str | None) -> dict[str, Any] | None: ...


class EmailOutput(OutputChannel):
    name: ClassVar[str] = "email"
    combines_replies: ClassVar[bool] = True  # one turn's replies are one mail

    def __init__(
        self,
        address: str,
        relay: tuple[str, int],
        threads: ThreadSource,
        *,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
        display_name: str = "售后客服",
        timeout: float = 30.0,
    ) -> None:
        self.address = address
        self.relay = relay
        self.threads = threads
        self.username = username
        self.password = password
        self.start_tls = start_tls
        self.display_name = display_name
        self.timeout = timeout

    async def send(self, message: Message) -> str | None:
        return await self.send_combined([message])

    async def send_combined(self, messages: list[Message]) -> str | None:
        message = messages[0]
        if not message.recipient_id or "@" not in message.recipient_id:
            raise DeliveryFailed("the reply has no recipient address", permanent=True)
        thread = await self.threads.thread_of(message.conversation_id, message.in_reply_to)
        mail = self.compose(messages, thread)
        host, port = self.relay
        try:
            await aiosmtplib.send(
                mail,
                hostname=host,
                port=port,
                username=self.username,
                password=self.password,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"relay refused the recipient: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx will not change by retrying (bad address, policy); 4xx is the relay asking us to wait.
            raise DeliveryFailed(f"relay answered {exc.code}: {exc.message}", permanent=500 <= exc.code < 600) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        return str(mail["Message-ID"]).strip("<>")

    def compose(self, messages: list[Message], thread: dict[str, Any] | None) -> EmailMessage:
        message = messages[0]
        metadata = (thread or {}).get("metadata") or {}
        subject = str(metadata.get("subject") or "").strip()
        customer_message_id = metadata.get("message_id") or (thread or {}).get("channel_message_id")
        references = [str(r) for r in metadata.get("references") or []]
        mail = EmailMessage()
        mail["From"] = formataddr((self.display_name, self.address))
        mail["To"] = message.recipient_id
        mail["Subject"] = _reply_subject(subject)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=message.id, domain=self.address.split("@")[-1])
        mail["Auto-Submitted"] = "auto-replied" if message.author == "bot" else "no"
        if customer_message_id and not str(customer_message_id).startswith("sha256:"):
            mail["In-Reply-To"] = f"<{customer_message_id}>"
            chain = [*references, str(customer_message_id)][-20:]
            mail["References"] = " ".join(f"<{r}>" for r in chain)
        mail.set_content("\n\n".join(text_with_choices(m, blank_line=True) for m in messages))
        return mail


def _reply_subject(subject: str) -> str:
    # One line: a customer's subject with a line break made every reply to them fail for good.
    subject = " ".join(subject.split())[:200]
    if not subject:
        return "Re: 您的售后咨询"
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """E-mail: an SMTP listener and/or an IMAP mailbox in, a relay out."""

    title: ClassVar[str] = "Channel: e-mail"
    addresses: tuple[str, ...] = setting(
        (),
        env="EMAIL_ADDRESS",
        help="enables e-mail: the shop's service address(es), comma-separated; the first is the replies' From",
    )
    accept_domains: tuple[str, ...] = setting(
        (), env="EMAIL_ACCEPT_DOMAINS", help="other recipient domains the listener accepts mail for"
    )
    smtp_listen: str | None = setting(
        "127.0.0.1:2525", env="EMAIL_SMTP_LISTEN", help="where the SMTP listener accepts mail (`host:port`); `off` "
        "for IMAP polling only"
    )  # fmt: skip
    smtp_relay: str | None = setting(
        None, env="EMAIL_SMTP_RELAY", help="the relay replies go out through (`host:port`); required with e-mail on"
    )
    smtp_user: str | None = setting(None, env="EMAIL_SMTP_USER", help="the relay's user")
    smtp_password: str | None = setting(None, env="EMAIL_SMTP_PASSWORD", secret=True, help="the relay's password")
    smtp_starttls: bool = setting(False, env="EMAIL_SMTP_STARTTLS", help="STARTTLS to the relay")
    imap_host: str | None = setting(None, env="EMAIL_IMAP_HOST", help="also poll this IMAP mailbox")
    imap_port: int = setting(143, env="EMAIL_IMAP_PORT", help="the IMAP server's port")
    imap_user: str | None = setting(None, env="EMAIL_IMAP_USER", help="the mailbox's user")
    imap_password: str | None = setting(None, env="EMAIL_IMAP_PASSWORD", secret=True, help="the mailbox's password")
    imap_mailbox: str = setting("INBOX", env="EMAIL_IMAP_MAILBOX", help="the mailbox polled")
    imap_poll_seconds: float = setting(30.0, env="EMAIL_IMAP_POLL_SECONDS", minimum=1, help="how often it is polled")
    trusted_servers: tuple[str, ...] = setting(
        (),
        env="EMAIL_TRUSTED_AUTH_SERVERS",
        help="the receiving mail servers (the authserv-id of their `Authentication-Results`) whose SPF/DKIM/DMARC "
        "verdict proves a sender's address",
        default_text="unset: a From address is only a hint (the customer verifies before anything personal)",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.addresses)

    @property
    def listen(self) -> tuple[str, int] | None:
        if not self.smtp_listen or self.smtp_listen.lower() == "off":
            return None
        return host_port(self.smtp_listen, "EMAIL_SMTP_LISTEN")

    def validate(self) -> None:
        if not self.enabled:
            return
        if not self.smtp_relay:
            raise SettingsError("EMAIL_ADDRESS needs EMAIL_SMTP_RELAY (host:port) to send replies through",
                                variable="EMAIL_SMTP_RELAY")  # fmt: skip
        host_port(self.smtp_relay, "EMAIL_SMTP_RELAY")
        if self.imap_host and not (self.imap_user and self.imap_password):
            raise SettingsError("EMAIL_IMAP_HOST needs EMAIL_IMAP_USER and EMAIL_IMAP_PASSWORD",
                                variable="EMAIL_IMAP_USER")  # fmt: skip
        if self.listen is None and not self.imap_host:
            raise SettingsError(
                "e-mail needs the SMTP listener or an IMAP mailbox (EMAIL_SMTP_LISTEN=off and no IMAP)",
                variable="EMAIL_SMTP_LISTEN",
            )


def host_port(value: str, variable: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise SettingsError(f"{variable} must be host:port, not {value!r}", variable=variable)
    return host, int(port)


class EmailDeps(ChannelDeps, Protocol):
    @property
    def feed(self) -> ThreadSource: ...


def build(section: EmailSettings, deps: EmailDeps) -> tuple[InputChannel, OutputChannel]:
    imap = None
    if section.imap_host:
        assert section.imap_user and section.imap_password
        imap = ImapMailbox(
            section.imap_host,
            section.imap_port,
            section.imap_user,
            section.imap_password,
            section.imap_mailbox,
            section.imap_poll_seconds,
        )
    assert section.smtp_relay is not None
    inbound = EmailInput(
        list(section.addresses),
        deps.media,
        listen=section.listen,
        imap=imap,
        accept_domains=section.accept_domains,
        trusted_servers=section.trusted_servers,
    )
    outbound = EmailOutput(
        section.addresses[0],
        host_port(section.smtp_relay, "EMAIL_SMTP_RELAY"),
        deps.feed,
        username=section.smtp_user,
        password=section.smtp_password,
        start_tls=section.smtp_starttls,
    )
    return inbound, outbound


SPEC = ChannelSpec(
    name=EmailInput.name,
    label={"zh": "邮件", "en": "email"},
    identity="mailbox",  # the address mail comes from; it proves the contact "email" only when authenticated
    settings=EmailSettings,
    build=build,
)
