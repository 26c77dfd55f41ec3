"""Property-based tests (hypothesis) of the pure parsers: whatever arrives, they answer with a
message or a clear error code, never an unhandled exception, and oversized input is refused
with its own code."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Bot, Update

from channels.app_im import AppImInput, Connections, sign_user
from channels.base import InvalidInbound, error_response, storable_text, unstorable
from channels.email_text import UnreadableMail, html_to_text, parse_mail, strip_history
from channels.rest import RestInput
from channels.sms import TwilioSmsInput
from channels.telegram import Ignored, TelegramInput
from nlu.entities import extract_entities
from nlu.normalize import default_normaliser, to_half_width
from store.media import MediaStore
from store.models import MAX_TEXT_CHARS, InboundMessage
from tests.telegram_standin import TOKEN, private_update

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("sender", "message", "message_id", "metadata", "text", "client_id", "attachments", "type")
OBJECTS = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), JSON_VALUES, max_size=6)
CHINESE = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF), max_size=20)
CUSTOMER_TEXT = st.one_of(
    st.text(max_size=200), CHINESE, st.from_regex(r"[一-龥0-9A-Za-z，。？ ]{0,60}", fullmatch=True)
)


def storable(message: InboundMessage) -> None:
    """What a parser hands on can be stored: bounded, no NUL, no lone surrogate, 64-bit ints."""
    assert len(message.text) <= MAX_TEXT_CHARS
    assert message.sender_id and message.channel_message_id
    assert unstorable(message.model_dump(mode="json")) is None


# -- REST -------------------------------------------------------------------------------


@FAST
@given(body=st.one_of(st.binary(max_size=300), OBJECTS.map(lambda o: json.dumps(o).encode())))
def test_rest_parsing_yields_a_storable_message_or_a_coded_400(body: bytes) -> None:
    try:
        message = RestInput().parse(body)
    except InvalidInbound as error:
        assert error.code and error.message and error_response(error).status == 400
    else:
        storable(message)


@FAST
@given(extra=st.integers(min_value=1, max_value=5000))
def test_an_oversized_rest_message_has_its_own_code(extra: int) -> None:
    body = json.dumps({"sender": "a", "message": "订" * (MAX_TEXT_CHARS + extra)}).encode()
    try:
        RestInput().parse(body)
    except InvalidInbound as error:
        assert error.code == "message_too_long" and error.details["limit"] == MAX_TEXT_CHARS
    else:
        raise AssertionError("an oversized message was accepted")


# -- app IM frames ----------------------------------------------------------------------


class NoFeed:
    async def channel_history(
        self, channel: str, sender_id: str, after_id: str | None = None, limit: int = 100
    ) -> list:
        return []

    async def mark_delivered(self, message_ids: list[str]) -> None:
        return None

    async def mark_read(self, channel: str, sender_id: str, up_to_id: str) -> int:
        return 0


@FAST
@given(frame=OBJECTS)
def test_app_frames_yield_a_storable_message_or_a_coded_error(frame: dict[str, Any]) -> None:
    channel = AppImInput("secret", Connections(), MediaStore(Path("/nonexistent-media")), NoFeed())
    # Frames that reference uploads need the store; the others are pure.
    frame.pop("attachments", None)
    try:
        message = asyncio.run(channel.parse_message("user-1", frame))
    except InvalidInbound as error:
        assert error.code and error.message
    else:
        storable(message)


def test_an_app_token_is_bound_to_its_user_and_expiry() -> None:
    expires = int(time.time()) + 60
    assert sign_user("s", "u1", expires) != sign_user("s", "u2", expires) != sign_user("s", "u1", expires + 1)


# -- Telegram ---------------------------------------------------------------------------

BOT = Bot(TOKEN, base_url="http://127.0.0.1:9/bot")


@FAST
@given(
    text=st.one_of(st.none(), CUSTOMER_TEXT),
    chat_type=st.sampled_from(["private", "group", "supergroup", "channel"]),
    update_id=st.integers(min_value=0, max_value=2**31),
)
def test_telegram_text_updates_normalise_or_are_ignored(text: str | None, chat_type: str, update_id: int) -> None:
    data = private_update(update_id, 4242, **({"text": text} if text is not None else {}))
    data["message"]["chat"]["type"] = chat_type
    channel = TelegramInput(BOT, MediaStore(Path("/nonexistent-media")), webhook_secret="s")
    try:
        message = asyncio.run(channel.to_inbound(Update.de_json(data, BOT)))
    except Ignored:
        assert chat_type != "private" or not storable_text(text or "").strip()
    else:
        assert chat_type == "private" and message.text == storable_text(text or "").strip()
        assert message.channel_message_id == str(update_id)
        storable(message)


# -- Twilio SMS -------------------------------------------------------------------------

SID = "AC" + "1" * 32


@FAST
@given(
    fields=st.dictionaries(
        st.sampled_from(
            ["MessageSid", "From", "To", "Body", "NumMedia", "AccountSid", "MediaUrl0", "MediaContentType0"]
        ),
        st.text(max_size=40),
        max_size=8,
    )
)
def test_twilio_forms_yield_a_storable_message_or_a_coded_400(fields: dict[str, str]) -> None:
    try:
        message = TwilioSmsInput("token", SID).parse(fields)
    except InvalidInbound as error:
        assert error.code and error.message
    else:
        storable(message)
        assert message.channel_message_id == fields["MessageSid"]


def test_an_oversized_sms_body_has_its_own_code() -> None:
    fields = {"MessageSid": "SM1", "From": "+8613800138000", "Body": "好" * (MAX_TEXT_CHARS + 1)}
    try:
        TwilioSmsInput("token", SID).parse(fields)
    except InvalidInbound as error:
        assert error.code == "message_too_long"
    else:
        raise AssertionError("an oversized SMS was accepted")


# -- e-mail -----------------------------------------------------------------------------

HEADER_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40)


@FAST
@given(raw=st.binary(max_size=600))
def test_any_bytes_parse_as_a_mail_or_are_unreadable(raw: bytes) -> None:
    try:
        mail = parse_mail(raw)
    except UnreadableMail:
        return
    assert "@" in mail.sender and mail.message_id
    for decoded in (mail.text, mail.subject, mail.sender, mail.sender_name):
        decoded.encode("utf-8")  # no lone surrogates left over from undecodable bytes


@FAST
@given(subject=HEADER_TEXT, body=CUSTOMER_TEXT, name=HEADER_TEXT)
def test_a_composed_mail_keeps_sender_and_words(subject: str, body: str, name: str) -> None:
    from email.headerregistry import Address
    from email.message import EmailMessage

    mail = EmailMessage()
    # Quoted as a mail client quotes it (a bare backslash or quote in the name would be escaped).
    mail["From"] = Address(display_name=name, addr_spec="kehu@example.com")
    mail["Subject"] = subject
    mail.set_content(body or "在吗")
    parsed = parse_mail(mail.as_bytes())
    assert parsed.sender == "kehu@example.com"
    # Mail has one line ending: a lone CR in the body arrives as a line break too.
    assert parsed.text == strip_history((body or "在吗").replace("\r\n", "\n").replace("\r", "\n"))


@FAST
@given(markup=st.text(max_size=300))
def test_html_and_quote_stripping_never_raise_and_never_grow_without_bound(markup: str) -> None:
    text = html_to_text(markup)
    assert len(strip_history(text)) <= len(text) + 1


# -- NLU normaliser and entities --------------------------------------------------------

NORMALISER = default_normaliser()


@FAST
@given(text=st.text(max_size=200))
def test_the_normaliser_never_raises(text: str) -> None:
    result = NORMALISER.normalise(text)
    assert isinstance(result.text, str) and result.language in ("zh", "en", "und")


@FAST
@given(text=st.text(max_size=200))
def test_half_width_conversion_is_idempotent(text: str) -> None:
    once = to_half_width(text)
    assert to_half_width(once) == once


@FAST
@given(text=CUSTOMER_TEXT)
def test_normalising_chinese_twice_changes_nothing_more(text: str) -> None:
    once = NORMALISER(text)
    assert NORMALISER(once) == once


@FAST
@given(text=st.text(max_size=300), today=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_entity_extraction_never_raises_and_spans_fit_the_text(text: str, today: date) -> None:
    for entity in extract_entities(text, today):
        rasa = entity.as_rasa()
        assert 0 <= rasa["start"] <= rasa["end"] <= len(text)
