"""No phone number, e-mail address or token reaches a log record unmasked once the masking that
``run.py serve`` installs is on: a real conversation through a real gateway, logged at DEBUG
(pymongo's command log writes whole documents, the customer's words included)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient

from gateway import log_privacy
from tests.helpers import post_rest

PHONE = "13812345678"
INTERNATIONAL = "+8613912345678"
EMAIL = "li.na.customer@example.com"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRETS = (PHONE, INTERNATIONAL, "13912345678", EMAIL, BOT_TOKEN)


@pytest.fixture
def masking() -> Iterator[None]:
    log_privacy.install()
    yield
    log_privacy.uninstall()


def everything_in(record: logging.LogRecord) -> str:
    return " ".join(str(part) for part in (record.getMessage(), record.args, record.exc_text, record.stack_info))


def where_it_leaks(record: logging.LogRecord) -> str:
    text = everything_in(record)
    at = min(text.find(s) for s in SECRETS if s in text)
    return f"{record.name}: ...{text[max(0, at - 80) : at + 80]}"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (f"手机{PHONE}，谢谢", "手机138****5678，谢谢"),
        (f"from {INTERNATIONAL}", "from +***********78"),
        (f"mail {EMAIL} ok", "mail l***@example.com ok"),
        (
            f"POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage",
            "POST https://api.telegram.org/bot<bot-token>/sendMessage",
        ),
        (
            "GET /webhooks/app/ws?user=u1&expires=1&token=9f86d081884c7d65",
            "GET /webhooks/app/ws?user=u1&expires=1&token=***",
        ),
        ("{'Authorization': 'Bearer s3cr3t-staff-token'}", "{'Authorization': 'Bearer ***'}"),
        ("order 2026113000123, id 65a2f0c4e1b7", "order 2026113000123, id 65a2f0c4e1b7"),
        (r'{"text": "\u662f13812345678"}', r'{"text": "\u662f138****5678"}'),  # JSON-escaped Chinese
    ],
)
def test_the_patterns_mask_what_they_should_and_leave_ids_alone(raw: str, masked: str) -> None:
    assert log_privacy.mask(raw) == masked


def test_arguments_and_tracebacks_are_masked(masking: None, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("tests.privacy")
    with caplog.at_level(logging.INFO, logger="tests.privacy"):
        log.info("customer %s wrote from %s", EMAIL, PHONE)
        try:
            raise ValueError(f"no customer with phone {PHONE}")
        except ValueError:
            log.exception("lookup failed")
    text = "\n".join(everything_in(r) for r in caplog.records) + caplog.text
    assert PHONE not in text and EMAIL not in text
    assert "l***@example.com" in text and "138****5678" in text


async def test_a_conversation_with_a_phone_number_and_an_address_logs_neither(
    masking: None, client: TestClient[object, object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = "privacy-customer-1"
    turns = [
        {"message": f"你好，我的手机是{PHONE}，邮箱是{EMAIL}", "metadata": {"phone": PHONE, "email": EMAIL}},
        {"message": f"我想退货，订单号2026113000123，联系电话 {INTERNATIONAL}"},
        {"message": f"发到 {EMAIL} 就行"},
    ]
    for turn in turns:
        response = await post_rest(client, {"sender": sender, **turn})
        assert response.status == 200, await response.text()
    response = await client.get("/api/agent/queue", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    assert response.status == 401

    assert caplog.records, "the gateway logged nothing at DEBUG: the test would prove nothing"
    leaks = [where_it_leaks(r) for r in caplog.records if any(secret in everything_in(r) for secret in SECRETS)]
    assert not leaks, "unmasked in the log:\n" + "\n".join(leaks)
    # The store's command log did carry the customer's words: masked, not missing.
    assert any("138****5678" in everything_in(r) for r in caplog.records)
