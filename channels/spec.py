"""What a channel declares about itself, for the registry (:mod:`gateway.channel_registry`).

A channel is one module: its :class:`InputChannel` and :class:`OutputChannel`, its settings
section (a :mod:`configuration` dataclass) and a ``SPEC`` naming it, its labels, the identity its
senders have on a customer, and how to build it from its section and what the gateway lends it.
Everything that lists channels — the store's identity indexes, the dialogue's channel names, the
console's labels and filters, ``make run``'s banner — reads the registry, never a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from channels.base import InputChannel, MediaSink, OutputChannel

ChannelPair = tuple[InputChannel, OutputChannel | None]
"""A channel's input, and its sender (None where replies go back in the request)."""


class ChannelDeps(Protocol):
    """What the gateway lends every channel it builds. A channel that needs more declares its own
    protocol extending this one (the app's history feed, the REST sessions, the phone line's call
    records), and the gateway's one implementation provides them all."""

    @property
    def media(self) -> MediaSink: ...

    @property
    def public_base_url(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    """The channel's name in messages, conversations and URLs (``rest``, ``telegram`` …)."""
    label: Mapping[str, str]
    """What customers and staff call it, per language (``{"zh": "短信", "en": "SMS"}``)."""
    identity: str
    """The key of a sender's id on this channel among a customer's identities."""
    settings: type[Any]
    """Its settings section; ``settings.enabled`` says whether it is turned on."""
    build: Callable[[Any, Any], ChannelPair]
    """``build(section, deps)``: the channel's input and output, from an enabled section."""
    outside_account: bool = False
    """It needs an account with a provider this machine cannot reach (Telegram, Twilio, WeChat)."""
    always_on: bool = False
    """It needs no configuration at all (the REST webhook)."""
    spoken: bool = False
    """Replies are spoken (the phone line): they keep the prompts' own wording, never converted to
    another written variety."""

    def label_in(self, language: str) -> str:
        return self.label.get(language) or self.label.get("zh") or self.name
