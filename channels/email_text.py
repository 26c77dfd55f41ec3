"""Reading an e-mail: headers (RFC 2047, Chinese charsets), the customer's own words from a
text or HTML body without the quoted history and signature, attachments, and whether a mail
is an automatic one (bounce, out-of-office) that must never be answered.

Owns MIME, not the channel: :mod:`channels.email` turns a :class:`ParsedMail` into a message.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

import textpatterns
from errors import UserError

_BLANK_LINES = textpatterns.compile(r"\n{3,}")
_SPACES = textpatterns.compile(r"[ \t\u00a0]+")

MAX_REFERENCES = 20
MAX_AUTH_HEADERS = 10
_AUTH_RESULT = textpatterns.compile(
    r"(?:^|;)\s*+([a-z][a-z0-9-]{0,20})\s*+=\s*+([a-z]{1,20})([^;]{0,500})", textpatterns.IGNORECASE
)
_AUTH_PROPERTY = textpatterns.compile(
    r"([a-z]{1,12}\.[a-z-]{1,20})\s*+=\s*+\"?+([^\s;\"]{1,255})", textpatterns.IGNORECASE
)


def _auth_results(results: str) -> list[tuple[str, str, dict[str, str]]]:
    """``method=verdict property=value …`` clauses of one Authentication-Results header."""
    found = []
    for match in _AUTH_RESULT.finditer(results):
        properties = {k.lower(): v.strip().lower() for k, v in _AUTH_PROPERTY.findall(match.group(3))}
        found.append((match.group(1).lower(), match.group(2).lower(), properties))
    return found


def _aligned(value: str, domain: str) -> bool:
    """The checked domain is the From domain or the organisation it belongs to (relaxed alignment)."""
    checked = value.rpartition("@")[2].strip(".").lower()
    return bool(checked) and (checked == domain or domain.endswith("." + checked) or checked.endswith("." + domain))


# A line that starts the quoted earlier mail: everything from it on is history.
_QUOTE_HEADERS = textpatterns.compile(
    r"^[ \t\u3000]*(?:"  # the line's own indent only: \s* would run across blank lines
    r"On .{4,200}wrote:\s*$"  # Gmail, Apple Mail
    r"|在\s*.{2,200}写道[：:]\s*$"  # Gmail, Chinese UI
    r"|-{2,}\s*(?:原始邮件|原始郵件|Original Message|Forwarded message|转发的邮件)\s*-{2,}"  # QQ, Foxmail, Outlook
    r"|(?:发件人|寄件者|From)[：:]\s*.+"  # Outlook and Foxmail header blocks
    r"|_{20,}\s*$"  # Outlook's rule
    r")",
    textpatterns.IGNORECASE | textpatterns.MULTILINE,
)
_SIGNATURE = textpatterns.compile(r"^-- ?$", textpatterns.MULTILINE)
_SENT_FROM = textpatterns.compile(r"^[ \t\u3000]*(?:发自我的|來自我的|Sent from my )\S.*$", textpatterns.MULTILINE)
_BLOCK_TAGS = textpatterns.compile(r"<\s*(?:br|/p|/div|/tr|/li|/h\d|p|div|tr|li)\b[^>]*>", textpatterns.IGNORECASE)
_DROP = textpatterns.compile(
    r"<\s*(script|style|head|title)\b.*?</\s*\1\s*>", textpatterns.IGNORECASE | textpatterns.DOTALL
)
_BLOCKQUOTE = textpatterns.compile(
    r"<\s*blockquote\b.*?</\s*blockquote\s*>", textpatterns.IGNORECASE | textpatterns.DOTALL
)
_QUOTE_DIVS = textpatterns.compile(
    # [^<>]: a tag ends before the next one starts, so "<div<div<div…" is not searched to its end from every tag
    r"<\s*div\b[^<>]*(?:gmail_quote|moz-cite-prefix|yahoo_quoted|divRplyFwdMsg|QQMailQuote)[^<>]*>.*",
    textpatterns.IGNORECASE | textpatterns.DOTALL,
)
_TAG = textpatterns.compile(r"<[^>]+>")
_AUTO_SUBMITTED = textpatterns.compile(r"^\s*no\s*$", textpatterns.IGNORECASE)
_SYSTEM_SENDERS = textpatterns.compile(r"^(?:mailer-daemon|postmaster|no-?reply|noreply)@", textpatterns.IGNORECASE)


@dataclass(frozen=True, slots=True)
class MailAttachment:
    filename: str | None
    content_type: str
    data: bytes


@dataclass(slots=True)
class ParsedMail:
    message_id: str
    sender: str
    sender_name: str
    subject: str
    text: str
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    attachments: list[MailAttachment] = field(default_factory=list)
    automatic: str | None = None
    """Why this is an automatic mail (bounce, auto-reply, bulk) that gets no answer; None for a person."""
    authentication: list[str] = field(default_factory=list)
    """The ``Authentication-Results`` headers, as the receiving servers wrote them (RFC 8601)."""

    def sender_authenticated(self, trusted_servers: frozenset[str]) -> bool:
        """Whether a receiving server we trust checked that the From address is not forged: its
        ``Authentication-Results`` say ``dmarc=pass`` for the From domain, or ``dkim=pass`` with a
        signing domain aligned to it, or ``spf=pass`` for it. Anyone can write such a header,
        so only the servers named in ``trusted_servers`` (their authserv-id) count."""
        domain = self.sender.rpartition("@")[2].lower()
        if not domain or not trusted_servers:
            return False
        for header in self.authentication:
            server, _, results = header.partition(";")
            words = server.split()
            if not words or words[0].lower() not in trusted_servers:
                continue  # written by the sender, or by a server we do not know
            for method, verdict, properties in _auth_results(results):
                if verdict != "pass":
                    continue
                if method == "dmarc" and _aligned(properties.get("header.from", ""), domain):
                    return True
                if method == "dkim" and _aligned(properties.get("header.d", properties.get("header.i", "")), domain):
                    return True
                if method == "spf" and _aligned(properties.get("smtp.mailfrom", ""), domain):
                    return True
        return False


class UnreadableMail(UserError):
    """Not a mail the gateway can take: no sender, or no parsable structure."""

    code = "unreadable_mail"


def parse_mail(raw: bytes, envelope_sender: str | None = None) -> ParsedMail:
    try:
        mail = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the stdlib parser is lenient; anything escaping it is hopeless
        raise UnreadableMail(f"cannot parse the message: {exc}") from exc
    assert isinstance(mail, EmailMessage)
    sender, name = _sender(mail)
    if not sender:
        raise UnreadableMail("the message has no usable From address")
    message_id = _angle_free(str(mail.get("Message-ID", "") or ""))
    if not message_id:
        message_id = "sha256:" + hashlib.sha256(raw).hexdigest()  # a resend of the same bytes is the same mail
    references = [_angle_free(r) for r in str(mail.get("References", "") or "").split() if r.strip()]
    in_reply_to = _angle_free(str(mail.get("In-Reply-To", "") or "")) or None
    subject = str(mail.get("Subject", "") or "").strip()
    body = _body_text(mail)
    text = strip_history(body)
    return ParsedMail(
        message_id=message_id,
        sender=sender,
        sender_name=name,
        subject=subject,
        text=text,
        in_reply_to=in_reply_to,
        references=references[-MAX_REFERENCES:],
        attachments=_attachments(mail),
        automatic=_automatic(mail, sender, envelope_sender),
        authentication=[str(v) for v in mail.get_all("Authentication-Results", [])][:MAX_AUTH_HEADERS],
    )


def strip_history(text: str) -> str:
    """The new part of a reply: quoted lines, the quoted mail and the signature removed."""
    text = text.replace("\r\n", "\n")
    if match := _QUOTE_HEADERS.search(text):
        text = text[: match.start()]
    if match := _SIGNATURE.search(text):
        text = text[: match.start()]
    text = _SENT_FROM.sub("", text)
    lines = [line.rstrip() for line in text.split("\n") if not line.lstrip().startswith(">")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str) -> str:
    markup = _DROP.sub("", markup)
    markup = _BLOCKQUOTE.sub("", markup)
    markup = _QUOTE_DIVS.sub("", markup)
    markup = _BLOCK_TAGS.sub("\n", markup)
    text = html.unescape(_TAG.sub("", markup))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _angle_free(value: str) -> str:
    return value.strip().strip("<>").strip()


def _sender(mail: EmailMessage) -> tuple[str, str]:
    header = mail.get("From")
    if header is None:
        return "", ""
    try:
        addresses = list(header.addresses)
    except (AttributeError, TypeError, ValueError):
        addresses = []
    if addresses:
        first: Address = addresses[0]
        if first.addr_spec and "@" in first.addr_spec:
            return first.addr_spec.lower(), first.display_name or ""
    parsed = getaddresses([str(header)])
    if parsed and "@" in parsed[0][1]:
        return parsed[0][1].lower(), parsed[0][0]
    return "", ""


def _body_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError):  # an unknown or lying charset: decode what we can
        payload = part.get_payload(decode=True)
        content = payload.decode("gb18030", errors="replace") if isinstance(payload, bytes) else ""
    text = str(content)
    if part.get_content_subtype() == "html":
        return html_to_text(text)
    return text


def _attachments(mail: EmailMessage) -> list[MailAttachment]:
    found: list[MailAttachment] = []
    for part in mail.iter_attachments():
        if not isinstance(part, EmailMessage):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            found.append(MailAttachment(part.get_filename(), part.get_content_type(), payload))
    # Inline images (pasted screenshots) count too, unless they are the body itself.
    for part in mail.walk():
        if part.get_content_maintype() == "image" and part.get_content_disposition() == "inline":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                found.append(MailAttachment(part.get_filename(), part.get_content_type(), payload))
    return found


def _automatic(mail: EmailMessage, sender: str, envelope_sender: str | None) -> str | None:
    auto_submitted = str(mail.get("Auto-Submitted", "") or "")
    if auto_submitted and not _AUTO_SUBMITTED.match(auto_submitted):
        return f"Auto-Submitted: {auto_submitted}"
    precedence = str(mail.get("Precedence", "") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if mail.get(header) is not None and header != "X-Auto-Response-Suppress":
            return header
    if mail.get_content_type() == "multipart/report":
        return "delivery report"
    if _SYSTEM_SENDERS.match(sender):
        return f"system sender {sender}"
    if envelope_sender is not None and envelope_sender.strip("<>") == "":
        return "empty envelope sender (a bounce)"
    return None
