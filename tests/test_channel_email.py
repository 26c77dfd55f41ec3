"""E-mail with real servers on loopback: the gateway's own SMTP listener (aiosmtpd) receiving
mail sent with aiosmtplib, an aiosmtpd relay stand-in capturing the replies, and Debian's
dovecot for IMAP polling."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import pytest_asyncio
from aioimaplib import IMAP4
from PIL import Image

from channels.email import EmailInput, ImapMailbox
from channels.email_text import html_to_text, parse_mail, strip_history
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from standins.smtp_sink import SmtpSink
from store import InboundMessage, Message
from store.media import MediaStore
from store.mongo import ConversationStore
from supervisor import free_port
from tests.conftest import DEMO_ORDERS
from tests.dovecot import PASSWORD, USER, Dovecot

SHOP = "service@shop.example"
CUSTOMER = "zhang.wei@example.com"


@pytest_asyncio.fixture
async def relay() -> AsyncIterator[SmtpSink]:
    """An SMTP relay on loopback that keeps what it is given; can be stopped to play an outage."""
    server = SmtpSink()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def media(store: ConversationStore, tmp_path: Path) -> MediaStore:
    media = MediaStore(tmp_path / "media", max_bytes=64 * 1024)
    media.use_collection(store.media)
    return media


def storing(store: ConversationStore) -> Callable[[InboundMessage], Awaitable[list[Message]]]:
    async def on_message(message: InboundMessage) -> list[Message]:
        await store.accept_inbound(message)
        return []

    return on_message


@pytest_asyncio.fixture
async def listener(store: ConversationStore, media: MediaStore) -> AsyncIterator[EmailInput]:
    channel = EmailInput([SHOP], media, listen=("127.0.0.1", 0))
    await channel.start(storing(store))
    yield channel
    await channel.stop()


def mail(text: str, subject: str = "订单问题", sender: str = f"张伟 <{CUSTOMER}>", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SHOP
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", make_msgid(domain="example.com"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


async def send(port: int, message: EmailMessage | bytes, recipients: list[str] | None = None) -> None:
    await aiosmtplib.send(
        message, hostname="127.0.0.1", port=port, sender=CUSTOMER, recipients=recipients or [SHOP], timeout=10
    )


async def stored(store: ConversationStore) -> list[dict[str, Any]]:
    return [m async for m in store.messages.find({"channel": "email", "direction": "in"}).sort("_id", 1)]


async def test_a_gbk_mail_with_an_rfc2047_subject_is_decoded(listener: EmailInput, store: ConversationStore) -> None:
    from email.header import Header

    name, subject = Header("张伟", "gbk").encode(), Header("订单问题", "gbk").encode()
    assert name.startswith("=?gbk?")  # RFC 2047 encoded words, as a Chinese mail client writes them
    raw = (
        f"From: {name} <Zhang.Wei@Example.com>\r\n"
        f"To: {SHOP}\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <gbk-1@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=gbk\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + __import__("base64").encodebytes("我的订单202611150001到哪了？".encode("gbk"))
    await send(listener.port or 0, raw)
    (message,) = await stored(store)
    assert message["text"] == "我的订单202611150001到哪了？"
    conversation = await store.conversations.find_one({"_id": message["conversation_id"]})
    assert conversation is not None and conversation["sender_id"] == "zhang.wei@example.com"
    assert message["metadata"]["subject"] == "订单问题"
    assert message["channel_message_id"] == "gbk-1@example.com"
    customer = await store.customers.find_one({"_id": message["customer_id"]})
    assert customer is not None and customer["identities"]["email"] == "zhang.wei@example.com"


def test_quoted_history_and_signatures_are_stripped() -> None:
    reply = (
        "好的，就改到明天下午吧。\n\n-- \n张伟\n13800138000\n\n"
        "在 2026年11月20日 10:00，售后客服 <service@shop.example> 写道：\n> 请问改到什么时间？\n"
    )
    assert strip_history(reply) == "好的，就改到明天下午吧。"
    qq = (
        "收到，谢谢\n\n------------------ 原始邮件 ------------------\n发件人: 售后客服\n发送时间: 2026年11月20日\n内容"
    )
    assert strip_history(qq) == "收到，谢谢"
    outlook = "Thanks!\n\nFrom: Service <service@shop.example>\nSent: Friday\nSubject: RE: order"
    assert strip_history(outlook) == "Thanks!"
    gmail = "OK\n\nOn Fri, Nov 20, 2026 at 10:00 AM Service <service@shop.example> wrote:\n> old\n"
    assert strip_history(gmail) == "OK"
    assert strip_history("第一行\n> 引用\n第二行\n发自我的iPhone") == "第一行\n第二行"


def test_html_bodies_become_text_without_the_quote() -> None:
    markup = (
        "<html><head><style>p{color:red}</style></head><body>"
        "<div>您好，</div><p>杯子收到是<b>碎的</b>&nbsp;怎么办？</p>"
        '<div class="gmail_quote">On Fri … wrote:<blockquote>旧邮件</blockquote></div>'
        "<script>x()</script></body></html>"
    )
    assert html_to_text(markup) == "您好，\n\n杯子收到是碎的 怎么办？"


async def test_an_html_only_mail_is_read(listener: EmailInput, store: ConversationStore) -> None:
    message = mail("")
    message.set_content("<p>我要<b>退货</b></p><blockquote>以前的邮件</blockquote>", subtype="html")
    await send(listener.port or 0, message)
    (stored_message,) = await stored(store)
    assert stored_message["text"] == "我要退货"


async def test_the_same_message_id_twice_is_stored_once(listener: EmailInput, store: ConversationStore) -> None:
    message = mail("查一下订单", message_id="<dup-1@example.com>")
    await send(listener.port or 0, message)
    await send(listener.port or 0, message)
    assert len(await stored(store)) == 1


async def test_attachments_go_to_the_media_store_and_oversized_ones_are_noted(
    listener: EmailInput, store: ConversationStore, media: MediaStore
) -> None:
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), (250, 10, 10)).save(photo, "PNG")
    message = mail("破损照片见附件")
    message.add_attachment(photo.getvalue(), maintype="image", subtype="png", filename="破损.png")
    message.add_attachment(b"\x89PNG\r\n\x1a\n" + b"0" * 100_000, maintype="image", subtype="png", filename="big.png")
    await send(listener.port or 0, message)
    (stored_message,) = await stored(store)
    (attachment,) = stored_message["attachments"]
    assert attachment["content_type"] == "image/png" and await media.read(attachment["media_id"]) == photo.getvalue()
    assert stored_message["metadata"]["rejected_attachments"][0]["filename"] == "big.png"


async def test_mail_for_another_address_is_refused(listener: EmailInput, store: ConversationStore) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(listener.port or 0, mail("hi"), recipients=["someone.else@shop.example"])
    assert await stored(store) == []


async def test_automatic_mails_are_accepted_but_never_answered(listener: EmailInput, store: ConversationStore) -> None:
    await send(listener.port or 0, mail("我正在休假，11月30日回来。", Auto_Submitted="auto-replied"))
    await send(listener.port or 0, mail("Delivery failed", sender="MAILER-DAEMON@example.com"))
    await send(listener.port or 0, mail("促销", Precedence="bulk"))
    assert await stored(store) == []


async def test_a_conversation_by_mail_threads_and_survives_a_relay_outage(
    store: ConversationStore, nlu: NluClient, relay: SmtpSink, tmp_path: Path
) -> None:
    listen_port = free_port()
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), outbox=OutboxSettings(base_delay=0.05, poll_interval=0.05)
    ).with_channel(
        "email", addresses=(SHOP,), smtp_listen=f"127.0.0.1:{listen_port}", smtp_relay=f"127.0.0.1:{relay.port}"
    )
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    from aiohttp.test_utils import TestServer

    server = TestServer(build_app(gateway))
    await server.start_server()
    try:
        await gateway.seed_orders(DEMO_ORDERS)
        first = mail("帮我查一下订单202611150001到哪了", subject="物流查询", message_id="<q1@example.com>")
        await send(listen_port, first)
        await wait_for(lambda: len(relay.received) >= 1)
        reply = relay.received[0].mail
        assert reply["Subject"] == "Re: 物流查询" and reply["To"] == CUSTOMER
        assert reply["In-Reply-To"] == "<q1@example.com>" and "<q1@example.com>" in reply["References"]
        assert reply["Auto-Submitted"] == "auto-replied"
        body = reply.get_body(preferencelist=("plain",))
        # The parcel has not moved for days: the mail says so and that a courier inquiry is open.
        assert body is not None and "已发货" in body.get_content() and "查件" in body.get_content()
        # No mail server vouched for the From address: the order's owner is not taken for granted,
        # so the answer is a tracking page's (no items), although the address is the order's.
        assert "西湖龙井" not in body.get_content()

        # The relay goes down; the customer answers in the same thread; the reply waits.
        await relay.stop()
        answer = mail(
            "谢谢\n\n在 2026年11月22日，售后客服 写道：\n> 订单已发货",
            subject="Re: 物流查询",
            message_id="<q2@example.com>",
            In_Reply_To=str(reply["Message-ID"]),
            References=f"<q1@example.com> {reply['Message-ID']}",
        )
        await send(listen_port, answer)
        messages = await stored(store)
        assert [m["text"] for m in messages] == ["帮我查一下订单202611150001到哪了", "谢谢"]
        assert messages[0]["conversation_id"] == messages[1]["conversation_id"]

        async def retried() -> bool:
            doc = await store.messages.find_one({"direction": "out", "in_reply_to": messages[1]["_id"]})
            return doc is not None and doc["attempts"] >= 1

        await wait_for_async(retried)
        await relay.start()
        await wait_for(lambda: len(relay.received) >= 2)
        await asyncio.sleep(0.3)
        assert len(relay.received) == 2, "sent once"
        second = relay.received[1].mail
        assert second["In-Reply-To"] == "<q2@example.com>" and second["Subject"] == "Re: 物流查询"
        second_body = second.get_body(preferencelist=("plain",))
        assert second_body is not None and "1. " in second_body.get_content(), "choices as numbered lines"
    finally:
        await server.close()
        await gateway.stop()


async def test_imap_polling_stores_each_mail_once_and_marks_it_seen(
    store: ConversationStore, media: MediaStore
) -> None:
    dovecot = Dovecot()
    await dovecot.start()
    try:
        client = IMAP4("127.0.0.1", dovecot.port)
        await client.wait_hello_from_server()
        await client.login(USER, PASSWORD)
        for n in (1, 2):
            await client.append(bytes(mail(f"第{n}封邮件", message_id=f"<imap-{n}@example.com>")), mailbox="INBOX")
        channel = EmailInput([SHOP], media, listen=None, imap=ImapMailbox("127.0.0.1", dovecot.port, USER, PASSWORD))
        assert await channel.poll_once(storing(store)) == 2
        assert await channel.poll_once(storing(store)) == 0, "seen mails are not read again"
        assert [m["text"] for m in await stored(store)] == ["第1封邮件", "第2封邮件"]
        await client.select("INBOX")
        unseen = await client.uid_search("UNSEEN", charset=None)
        assert not [line for line in unseen.lines if line.strip().isdigit()]
        await client.logout()
    finally:
        await dovecot.stop()


async def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def wait_for_async(condition: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_oversized_and_unreadable_mails_are_refused(store: ConversationStore, media: MediaStore) -> None:
    channel = EmailInput([SHOP], media, listen=("127.0.0.1", 0), max_mail_bytes=4096)
    await channel.start(storing(store))
    try:
        with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
            await send(channel.port or 0, mail("很长的邮件" * 2000))
        assert too_big.value.code == 552
        no_from = b"To: service@shop.example\r\nSubject: hi\r\nMessage-ID: <x1@example.com>\r\n\r\nhello\r\n"
        with pytest.raises(aiosmtplib.SMTPResponseException) as unreadable:
            await send(channel.port or 0, no_from)
        assert unreadable.value.code == 550
    finally:
        await channel.stop()
    assert await stored(store) == []


async def test_a_store_failure_answers_451_so_the_sender_retries(store: ConversationStore, media: MediaStore) -> None:
    async def failing(message: InboundMessage) -> list[Message]:
        raise ConnectionError("store down")

    channel = EmailInput([SHOP], media, listen=("127.0.0.1", 0))
    await channel.start(failing)
    try:
        with pytest.raises(aiosmtplib.SMTPResponseException) as retry:
            await send(channel.port or 0, mail("退款什么时候到账"))
        assert retry.value.code == 451
    finally:
        await channel.stop()


async def test_a_configured_domain_accepts_any_of_its_addresses(store: ConversationStore, media: MediaStore) -> None:
    channel = EmailInput([SHOP], media, listen=("127.0.0.1", 0), accept_domains=("kefu.example",))
    await channel.start(storing(store))
    try:
        await send(channel.port or 0, mail("发票什么时候开"), recipients=["Shouhou@KEFU.example"])
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await send(channel.port or 0, mail("hi"), recipients=["a@other.example"])
    finally:
        await channel.stop()
    assert [m["text"] for m in await stored(store)] == ["发票什么时候开"]


async def test_a_from_address_names_the_customer_only_when_a_trusted_server_authenticated_it(
    media: MediaStore,
) -> None:
    """Security finding 8: a mail's From was taken as the customer's proven address, so anyone
    could write as anyone. Only a receiving server we trust, saying DMARC/DKIM/SPF passed for
    the From domain, makes it an identity; otherwise it is where replies go, and a hint."""
    channel = EmailInput([SHOP], media, listen=None, trusted_servers=("mx.shop.example",))

    async def inbound(message: EmailMessage) -> InboundMessage:
        return await channel.to_inbound(parse_mail(message.as_bytes()))

    failed = "mx.shop.example; dmarc=fail header.from=example.com"
    forged = await inbound(mail("查一下我的订单", Authentication_Results=failed))
    assert "email" not in forged.profile and forged.metadata["from_unverified"] is True
    assert forged.sender_id == CUSTOMER  # replies still go to the address the mail came from
    self_made = await inbound(mail("查一下", Authentication_Results="evil.example; dmarc=pass header.from=example.com"))
    assert "email" not in self_made.profile  # the sender wrote that header itself
    passed = await inbound(
        mail("查一下", Authentication_Results="mx.shop.example 1; dmarc=pass header.from=example.com")
    )
    assert passed.profile["email"] == CUSTOMER and "from_unverified" not in passed.metadata
    untrusting = EmailInput([SHOP], media, listen=None)  # nobody named: no From is proof
    claimed = mail("hi", Authentication_Results="x; dmarc=pass header.from=example.com")
    assert "email" not in (await untrusting.to_inbound(parse_mail(claimed.as_bytes()))).profile


def test_a_subject_with_line_breaks_is_answered_on_one_line() -> None:
    """Security (low): a customer's subject with a line break blocked every reply to their address."""
    from channels.email import _reply_subject

    assert _reply_subject("退款\r\nBcc: victim@example.com") == "Re: 退款 Bcc: victim@example.com"
    assert _reply_subject("回复：\n\n") == "回复："
