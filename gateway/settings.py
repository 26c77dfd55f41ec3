"""The gateway's settings: every package's section, composed into one object.

Each package declares and validates the settings it uses (``store/settings.py``,
``nlu/settings.py``, each channel's module …, see :mod:`configuration`); this module adds the
gateway's own sections (the server, the outbox, rate limits) and composes them, reading the
environment only when :meth:`Settings.from_env` is called (``run.py --help`` never does).
``docs/configuration.md`` is generated from the same declarations (``run.py config reference``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from backoffice.settings import BackofficeSettings
from configuration import SettingsError, from_env, reference, setting
from console.settings import ConsoleSettings
from dialogue.settings import DialogueSettings
from downstream.settings import DownstreamSettings
from gateway.channel_registry import CHANNELS, channel_named
from media_ocr.settings import OcrSettings
from nlu.settings import NluSettings
from shop.settings import ShopSettings
from store.settings import MediaSettings, StoreSettings

REPO_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """The gateway process: where it listens, where it keeps its files, how it recovers."""

    title: ClassVar[str] = "Gateway"
    host: str = setting("127.0.0.1", env="GATEWAY_HOST", help="listen address (also `--host`)")
    port: int = setting(8080, env="GATEWAY_PORT", minimum=1, help="listen port (also `--port`)")
    var_dir: Path = setting(
        REPO_ROOT / "var",
        env="GATEWAY_VAR_DIR",
        help="embedded database files, logs, demo secrets",
        default_text="var/",
    )
    public_base_url: str | None = setting(
        None,
        env="PUBLIC_BASE_URL",
        help="the gateway's address as providers see it (behind a proxy), e.g. `https://cs.example.com`; used for "
        "Twilio signatures and Telegram's webhook registration",
    )
    recovery_seconds: float = setting(
        15.0,
        env="RECOVERY_SECONDS",
        minimum=0,
        help="how often each process looks for customer messages no process answered (one died mid-turn); `0`: "
        "only at start",
    )
    recovery_after_seconds: float = setting(
        30.0, env="RECOVERY_AFTER_SECONDS", minimum=0, help="a message unanswered this long is taken over"
    )
    metrics_from: tuple[str, ...] = setting(
        ("127.0.0.0/8", "::1/128"),
        env="METRICS_FROM",
        help="addresses (CIDR) allowed to read `GET /metrics` (turn stages and store round trips, Prometheus text)",
    )


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """Replies on their way to the providers: retries, and one sender per channel across processes."""

    title: ClassVar[str] = "Outbox"
    base_delay: float = setting(2.0, env="OUTBOX_BASE_DELAY_SECONDS", minimum=0, help="first retry delay")
    max_delay: float = setting(600.0, env="OUTBOX_MAX_DELAY_SECONDS", minimum=0, help="longest retry delay")
    max_attempts: int = setting(12, env="OUTBOX_MAX_ATTEMPTS", minimum=1, help="attempts before a reply is failed")
    poll_interval: float = setting(1.0, env="OUTBOX_POLL_SECONDS", minimum=0.01, help="how often senders look")
    lease_seconds: float = setting(
        30.0,
        env="OUTBOX_LEASE_SECONDS",
        minimum=1,
        help="with several gateway processes, one sends for each channel (and one polls Telegram's getUpdates or "
        "an IMAP mailbox); another takes over this long after it dies",
    )


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """Flood limits per client address (webhooks) and per channel sender (messages)."""

    title: ClassVar[str] = "Rate limits"
    ip_per_minute: float = setting(
        600.0,
        env="RATE_LIMIT_IP_PER_MINUTE",
        minimum=0,
        help="requests a minute per client IP on `/webhooks/rest/`, `/webhooks/app/`, `/chat` (token bucket in each "
        "process; `0` turns it off), and nginx's `limit_req` in `run.py cluster`; answered 429 with `Retry-After`",
    )
    ip_burst: int = setting(200, env="RATE_LIMIT_IP_BURST", minimum=1, help="the bucket's size per IP")
    ip_exempt: tuple[str, ...] = setting(
        ("127.0.0.0/8", "::1/128"),
        env="RATE_LIMIT_IP_EXEMPT",
        help="addresses (CIDR, comma-separated) never limited per IP: loopback, add the shop backend's",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        env="RATE_LIMIT_TRUSTED_PROXIES",
        help="load balancers (CIDR) whose `X-Forwarded-For` names the client (`run.py cluster` adds loopback for its "
        "own nginx)",
        default_text="unset: `X-Forwarded-For` ignored",
    )
    sender_per_minute: float = setting(
        60.0,
        env="RATE_LIMIT_SENDER_PER_MINUTE",
        minimum=0,
        help="inbound messages a minute per channel sender (all channels but voice), counted in the store so the "
        "limit holds across gateway processes (`0` turns it off); answered 429 with `Retry-After`",
    )
    sender_burst: int = setting(
        30,
        env="RATE_LIMIT_SENDER_BURST",
        minimum=1,
        help="most messages per sender in one window; a window lasts burst ÷ per-minute minutes (30 s by default)",
    )
    max_keys: int = setting(
        100_000,
        env="RATE_LIMIT_MAX_KEYS",
        minimum=1,
        help="per-IP buckets kept per process (least recently used dropped)",
    )


SECTIONS: dict[str, type[Any]] = {
    "gateway": GatewaySettings,
    "store": StoreSettings,
    "media": MediaSettings,
    "nlu": NluSettings,
    "shop": ShopSettings,
    "dialogue": DialogueSettings,
    "backoffice": BackofficeSettings,
    "downstream": DownstreamSettings,
    "console": ConsoleSettings,
    "ocr": OcrSettings,
    "outbox": OutboxSettings,
    "limits": RateLimitSettings,
}
"""The composed object's attributes and the section each holds (channels come from the registry)."""


def _default_channels() -> dict[str, Any]:
    return {spec.name: spec.settings() for spec in CHANNELS}


@dataclass(frozen=True)
class Settings:
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    nlu: NluSettings = field(default_factory=NluSettings)
    shop: ShopSettings = field(default_factory=ShopSettings)
    dialogue: DialogueSettings = field(default_factory=DialogueSettings)
    backoffice: BackofficeSettings = field(default_factory=BackofficeSettings)
    downstream: DownstreamSettings = field(default_factory=DownstreamSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    ocr: OcrSettings = field(default_factory=OcrSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    channels: Mapping[str, Any] = field(default_factory=_default_channels)
    """Each registered channel's section, by channel name (see :meth:`channel`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        sections = {name: from_env(section, env) for name, section in SECTIONS.items()}
        channels = {spec.name: from_env(spec.settings, env) for spec in CHANNELS}
        settings = cls(**sections, channels=channels)
        settings.validate()
        return settings

    def validate(self) -> None:
        """What spans sections (each section checked its own fields as it was read)."""
        sms, voice = self.channel("sms"), self.channel("voice")
        if sms.account_sid and not (sms.enabled or voice.enabled):
            raise SettingsError(
                "TWILIO_ACCOUNT_SID is set but neither TWILIO_FROM_NUMBER (SMS) nor TWILIO_VOICE_NUMBER (phone)",
                variable="TWILIO_FROM_NUMBER",
            )

    def channel(self, name: str) -> Any:
        """The channel's section (its defaults where none was given)."""
        section = self.channels.get(name)
        return section if section is not None else channel_named(name).settings()

    def with_channel(self, name: str, **changes: Any) -> Settings:
        """A copy with this channel's section changed (each change is checked by its ``validate``)."""
        section = dataclasses.replace(self.channel(name), **changes)
        if callable(validate := getattr(section, "validate", None)):
            validate()
        return dataclasses.replace(self, channels={**self.channels, name: section})

    def with_changes(self, **sections: Any) -> Settings:
        """A copy with whole sections replaced, or fields changed as ``section__field=value``."""
        replaced: dict[str, Any] = {}
        for key, value in sections.items():
            name, _, field_name = key.partition("__")
            if name not in SECTIONS:
                raise TypeError(f"no settings section {name!r}")
            if field_name:
                current = replaced.get(name, getattr(self, name))
                replaced[name] = dataclasses.replace(current, **{field_name: value})
            else:
                replaced[name] = value
        return dataclasses.replace(self, **replaced)

    @property
    def var_dir(self) -> Path:
        return self.gateway.var_dir

    @property
    def media_root(self) -> Path:
        return self.media.media_dir or self.gateway.var_dir / "media"


def all_sections() -> list[type[Any]]:
    """Every section, in the order the configuration reference shows them."""
    return [*SECTIONS.values(), *(spec.settings for spec in CHANNELS)]


def configuration_reference() -> str:
    """``docs/configuration.md``: every variable, its default and meaning, from the declarations."""
    header = (
        "# Configuration\n\n"
        "Every setting is an environment variable with an embedded default: `make run` needs none. "
        "Generated from the settings' declarations by `run.py config reference` (a test keeps it current); "
        "each package declares its own section, and a bad value stops the start naming the variable.\n\n"
    )
    return header + reference(all_sections())
