"""Masking personal data and secrets in log records: phone numbers (mainland mobiles and
``+``-international), e-mail addresses, and secrets (``token=``/``secret=``… in URLs and forms,
``Authorization`` values, bearer tokens, Telegram bot tokens, which python-telegram-bot's HTTP
client writes into every request URL it logs).

``install()`` (called by ``run.py serve``) masks every record at creation, message and arguments
and traceback alike, so every handler (files, stderr, a log shipper, pytest's caplog) gets the
masked record. Masking is a safety net, not a licence: code should not log customers' words,
numbers or addresses in the first place.

Owns the patterns; must not know who logs or where records go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import textpatterns

_SECRETS: tuple[tuple[textpatterns.Pattern, str | Callable[[textpatterns.Match[str]], str]], ...] = (
    # Telegram bot tokens: <bot id>:<35 characters>, e.g. in https://api.telegram.org/bot<token>/sendMessage
    (textpatterns.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}"), "<bot-token>"),
    # Authorization headers (any scheme), in dict reprs and header dumps.
    (
        textpatterns.compile(r"(?i)(\bauthorization['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic|token)\s+)?[^\s'\",;}]+"),
        lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}***",
    ),
    (textpatterns.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    # Credentials in query strings and forms: token=…, access_token=…, password=…
    (
        textpatterns.compile(
            r"(?i)\b((?:[a-z_]*token|secret|password|passwd|api[_-]?key|signature|sig|auth)=)[^&\s'\"]+"
        ),
        r"\1***",
    ),
    (textpatterns.compile(r"(?i)(x-twilio-signature['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1***"),
    (textpatterns.compile(r"(?i)(x-telegram-bot-api-secret-token['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1***"),
)
_EMAIL = textpatterns.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# Letters may touch a number: JSON escapes Chinese text (是13812345678 is \u662f13812345678). The
# price: eleven digits inside a hex id are masked too, which only makes that log line less useful.
_MOBILE = textpatterns.compile(r"(?<!\d)((?:86)?1[3-9]\d)(\d{4})(\d{4})(?!\d)")  # with 86: E.164 without its +
_INTERNATIONAL = textpatterns.compile(r"(?<![\d+])\+\d[\d \-]{6,17}\d(?!\d)")


def _email(match: textpatterns.Match[str]) -> str:
    return f"{match.group(1)[:1]}***@{match.group(2)}"  # the domain helps tell shops' mail apart


def _international(match: textpatterns.Match[str]) -> str:
    digits = [ch for ch in match.group(0) if ch.isdigit()]
    return "+" + "*" * (len(digits) - 2) + "".join(digits[-2:])


def mask(text: str) -> str:
    """``text`` with secrets, e-mail addresses and phone numbers masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    text = _EMAIL.sub(_email, text)
    text = _INTERNATIONAL.sub(_international, text)
    return _MOBILE.sub(r"\1****\3", text)


_formatter = logging.Formatter()


class MaskingRecordFactory:
    """Wraps the logging module's record factory: each new record leaves it masked."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        mask_record(record)
        return record


def mask_record(record: logging.LogRecord) -> None:
    """Fold the arguments into the message and mask it (and the traceback) in place."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep what we can read
        message = f"{record.msg} {record.args!r}"
    record.msg = mask(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask(_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = mask(record.stack_info)


def install() -> None:
    """Mask every log record from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, MaskingRecordFactory):
        logging.setLogRecordFactory(MaskingRecordFactory(current))


def uninstall() -> None:
    current = logging.getLogRecordFactory()
    if isinstance(current, MaskingRecordFactory):
        logging.setLogRecordFactory(current.previous)
