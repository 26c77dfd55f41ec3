"""Every channel the gateway speaks, one line each (after Rasa's channel registry).

Adding a channel is one module (its input, output, settings section and ``SPEC``) plus one line
here. Everything that lists channels reads this tuple: the settings (each channel's section),
the gateway (which channels to build), the store (an identity index per channel), the dialogue
(a channel's name in a reply), the console (labels and filters, through ``/api/channels``) and
``make run``'s banner.

It lives in the composition root, not in ``channels/``: the phone line (``ivr.channel``) is one of
the channels and knows the dialogue's spoken replies, so a registry inside ``channels`` would make
every channel adapter import the phone line, and through it the dialogue and the NLU.
"""

from __future__ import annotations

from channels import app_im, email, rest, sms, telegram, wechat
from channels.spec import ChannelSpec
from ivr import channel as voice

CHANNELS: tuple[ChannelSpec, ...] = (
    rest.SPEC,
    app_im.SPEC,
    telegram.SPEC,
    wechat.SPEC,
    sms.SPEC,
    email.SPEC,
    voice.SPEC,
)

CONTACT_IDENTITIES = ("phone", "email")
"""Identities that are contact details rather than a channel's sender id; a channel may prove them."""


def channel_named(name: str) -> ChannelSpec:
    for spec in CHANNELS:
        if spec.name == name:
            return spec
    raise KeyError(f"no channel named {name!r}")


def names() -> tuple[str, ...]:
    return tuple(spec.name for spec in CHANNELS)


def identity_kinds() -> tuple[str, ...]:
    """Every key a customer's identities may have: contacts, then each channel's sender id."""
    return tuple(dict.fromkeys([*CONTACT_IDENTITIES, *(spec.identity for spec in CHANNELS)]))


def labels() -> dict[str, dict[str, str]]:
    """``{channel: {language: label}}``, for the dialogue and the console."""
    return {spec.name: dict(spec.label) for spec in CHANNELS}
