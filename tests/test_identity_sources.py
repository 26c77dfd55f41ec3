"""Every channel's identities come from something that proves them, and an attack test says so.

The outside probe became "anyone can be any customer" through one channel (REST metadata taken as
identity). This table names, for every channel in the registry, what proves its sender id and
the contact details it links (phone, e-mail), and the test that tries to claim them without that
proof. A channel added to ``gateway.channel_registry`` fails here until both are written down.
"""

from __future__ import annotations

import importlib

import pytest

from gateway.channel_registry import CHANNELS

IDENTITY_PROOFS: dict[str, tuple[str, str]] = {
    "rest": (
        "the shop's signed customer token binds the sender; metadata phone/e-mail are hints until "
        "verified, and a sender id alone does not write as that customer",
        "tests.test_rest_identity:test_a_phone_number_in_metadata_is_only_a_hint",
    ),
    "app": (
        "the app user's HMAC token (user, expiry) signed with the shop's secret",
        "tests.test_channel_app:test_a_missing_wrong_or_expired_token_gets_401",
    ),
    "telegram": (
        "Telegram's secret-token header on the webhook; a phone only from a contact the user "
        "shared of themselves (contact.user_id == from.id)",
        "tests.test_channel_telegram:test_sharing_ones_own_contact_links_the_phone_to_the_customer",
    ),
    "wechat": (
        "WeChat's signature over the token, timestamp and nonce (and the AES envelope in safe mode); "
        "the openid is WeChat's",
        "tests.test_channel_wechat:test_safe_mode_messages_are_decrypted_and_a_forged_one_is_refused",
    ),
    "sms": (
        "Twilio's request signature; the sender's number is the carrier's",
        "tests.test_channel_sms:test_a_wrong_signature_is_refused_with_403",
    ),
    "email": (
        "a passing Authentication-Results (DMARC, or aligned DKIM/SPF) from a trusted receiving server",
        "tests.test_channel_email:test_a_from_address_names_the_customer_only_when_a_trusted_server_authenticated_it",
    ),
    "voice": (
        "the carrier's STIR/SHAKEN attestation of the caller ID (or the order's phone asked for)",
        "tests.test_ivr_call:test_a_caller_id_nobody_attested_names_no_customer",
    ),
}


def test_every_registered_channel_names_its_proof_of_identity() -> None:
    registered = {spec.name for spec in CHANNELS}
    assert registered == set(IDENTITY_PROOFS), (
        f"channels without a proof of identity here: {sorted(registered - set(IDENTITY_PROOFS))}; "
        f"listed but not registered: {sorted(set(IDENTITY_PROOFS) - registered)}"
    )


@pytest.mark.parametrize("channel", sorted(IDENTITY_PROOFS))
def test_the_attack_test_of_each_channel_exists(channel: str) -> None:
    proof, attack = IDENTITY_PROOFS[channel]
    module_name, function = attack.split(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function, None)), f"{channel}: {attack} is missing"
    assert len(proof) > 30
