"""Gateway settings, from the environment with embedded defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from nlu.understanding import DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_TIMEZONE

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    mongodb_uri: str | None = None
    """A real MongoDB (replica set or sharded cluster); unset starts the embedded nx-27017."""
    mongodb_database: str = "aftersales"
    rasa_urls: tuple[str, ...] = ()
    """Rasa servers started with ``--enable-api``; empty starts one from ``.venv-rasa``."""
    rasa_token: str | None = None
    nlu_timeout_seconds: float = 5.0
    nlu_confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    """Intent confidence below which the dialogue asks to rephrase (``run.py nlu eval`` calibrates it)."""
    timezone: str = DEFAULT_TIMEZONE
    """The shop's time zone: what 明天 and 周六 mean."""
    var_dir: Path = REPO_ROOT / "var"
    models_dir: Path = REPO_ROOT / "models"
    aftersales_policy_path: Path | None = None
    """After-sales rules (return windows, excluded categories …); unset uses ``shop/aftersales_policy.yml``."""
    knowledge_path: Path | None = None
    """The after-sales FAQ; unset uses ``dialogue/knowledge/aftersales.yml``."""
    ocr_engine: str = "combined"
    """Photo OCR engine: combined, rapidocr or tesseract."""
    ocr_workers: int = 1
    """OCR worker processes (each about 300 MB and one CPU core while reading)."""
    media_dir: Path | None = None
    """Attachments by content hash; unset means ``<var_dir>/media``."""
    media_max_bytes: int = 10 * 1024 * 1024
    media_quota_bytes: int | None = None
    """Most bytes the media store keeps in all; past it attachments are refused (``storage_full``)."""
    public_base_url: str | None = None
    """The gateway's address as providers see it (behind a proxy), e.g. ``https://cs.example.com``;
    used for Twilio signatures and Telegram's webhook registration."""
    outbox_base_delay: float = 2.0
    outbox_max_delay: float = 600.0
    outbox_max_attempts: int = 12
    outbox_poll_interval: float = 1.0
    outbox_lease_seconds: float = 30.0
    """One gateway process sends for each channel; if it dies another takes over after this long."""
    recovery_seconds: float = 15.0
    """How often each process looks for customer messages no process answered (one died mid-turn); 0: only at start."""
    recovery_after_seconds: float = 30.0
    """A message unanswered this long is taken over by the next recovery pass."""
    rasa_servers: int = 1
    """Embedded mode (no ``RASA_URL``): how many Rasa servers to start (each serves one request at a time)."""
    telegram_bot_token: str | None = None
    """Set to enable the Telegram channel."""
    telegram_webhook_secret: str | None = None
    """Required in webhook mode: Telegram sends it in ``X-Telegram-Bot-Api-Secret-Token``."""
    telegram_mode: str = "webhook"
    """``webhook`` (production) or ``polling`` (development, no public URL needed)."""
    telegram_api_base_url: str = "https://api.telegram.org"
    agent_api_token: str | None = None
    canned_replies_path: Path | None = None
    """Agents' canned replies (YAML); unset means ``console/canned_replies.yml``."""
    console_cookie_secure: bool = True
    """The console's session cookie is Secure (browsers keep it on http://127.0.0.1 and localhost
    too); switch off only for plain-http hosts other than those."""
    """Bearer token of the agent API (``/api/agent/…``); unset disables it."""
    backoffice_admin_token: str | None = None
    """An ``admin`` staff account signs in to the backoffice API with this token (bootstrap)."""
    backoffice_sweep_seconds: float = 60.0
    """How often SLA reminders, escalations, auto-assignment and auto-close run; 0 turns the sweep off."""
    app_im_secret: str | None = None
    """Set to enable the app IM websocket; the shop's backend signs user tokens with it."""
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    """Both set enable the SMS channel."""
    twilio_from_number: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    email_addresses: tuple[str, ...] = ()
    email_accept_domains: tuple[str, ...] = ()
    """Set to enable e-mail: the shop's service address(es); the first is the replies' From."""
    email_smtp_listen: str | None = "127.0.0.1:2525"
    """Where the SMTP listener accepts mail (``host:port``); ``off`` for IMAP polling only."""
    email_smtp_relay: str | None = None
    """The relay replies go out through (``host:port``); required with e-mail on."""
    email_smtp_user: str | None = None
    email_smtp_password: str | None = None
    email_smtp_starttls: bool = False
    email_imap_host: str | None = None
    """Set to poll an IMAP mailbox as well (or instead of the listener)."""
    email_imap_port: int = 143
    email_imap_user: str | None = None
    email_imap_password: str | None = None
    email_imap_mailbox: str = "INBOX"
    email_imap_poll_seconds: float = 30.0
    twilio_voice_number: str | None = None
    """Set to enable the phone IVR: the hotline number whose voice webhook is ``/webhooks/twilio/voice``."""
    ivr_agent_queue: str | None = None
    """Transfer target (exactly one of the three): a Twilio queue (``<Enqueue>``) agents dequeue from …"""
    ivr_agent_number: str | None = None
    """… or a phone number (``<Dial><Number>``) …"""
    ivr_agent_sip: str | None = None
    """… or a SIP address (``<Dial><Sip>``, the conversation id in an ``X-Conversation-Id`` header)."""
    ivr_agent_caller_id: str | None = None
    ivr_prompts: str = "stream"
    """``stream``: prompts synthesised locally (espeak-ng) and streamed on the call's websocket, with
    barge-in; ``say``: Twilio's ``<Say>`` voices, the stream reconnected after each prompt."""
    ivr_languages: tuple[str, ...] = ("zh", "en")
    ivr_default_language: str = "zh"
    ivr_engines: tuple[tuple[str, str], ...] = ()
    """``IVR_ENGINE_<LANG>``: ``vosk`` (default) or ``whisper`` per language."""
    vosk_models: tuple[tuple[str, Path], ...] = ()
    """``VOSK_MODEL_<LANG>``: a Vosk model directory per language (never downloaded)."""
    ivr_whisper_model_dir: Path | None = None
    """Where faster-whisper base is assembled from its wheels; unset: inside the venv."""
    ivr_whisper_threads: int = 2
    """CTranslate2 threads per decode (2 on 2 cores: 0.64 s per short utterance instead of 0.85 s)."""
    ivr_asr_workers: int = 2
    """Speech decodes running at once (threads; one per core)."""
    ivr_blocklist: tuple[str, ...] = ()
    ivr_rate_max_calls: int = 5
    ivr_rate_window_seconds: float = 600.0
    ivr_silence_seconds: float = 0.8
    ivr_no_input_seconds: float = 8.0
    rest_webhook_token: str | None = None
    """Set: ``POST /webhooks/rest/webhook`` needs ``Authorization: Bearer <token>`` (the shop backend's)."""
    rest_customer_token_secret: str | None = None
    """The shop's HS256 secret for customer tokens (``metadata.customer_token``): only a verified
    token links a REST sender to a customer's phone, e-mail and orders. Unset: nothing links."""
    sender_session_secret: str | None = None
    """Signs REST sender sessions; unset: one generated per installation and kept in the store."""
    rate_limit_ip_per_minute: float = 600.0
    """Requests a minute per client IP on the REST and app webhooks (0: off); see gateway/limits.py."""
    rate_limit_ip_burst: int = 200
    rate_limit_ip_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    """Addresses never limited per IP: loopback by default; add the shop backend's."""
    rate_limit_trusted_proxies: tuple[str, ...] = ()
    """Proxies (load balancers) whose ``X-Forwarded-For`` is believed; unset: the header is ignored."""
    rate_limit_sender_per_minute: float = 60.0
    """Inbound messages a minute per channel sender (0: off)."""
    rate_limit_sender_burst: int = 30
    rate_limit_max_keys: int = 100_000
    """Buckets kept per limiter (least recently used dropped), so a flood of keys is bounded."""

    @property
    def media_root(self) -> Path:
        return self.media_dir or self.var_dir / "media"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        urls = tuple(u.strip() for u in env.get("RASA_URL", "").split(",") if u.strip())
        return cls(
            host=env.get("GATEWAY_HOST", defaults.host),
            port=int(env.get("GATEWAY_PORT", defaults.port)),
            mongodb_uri=env.get("MONGODB_URI") or None,
            mongodb_database=env.get("MONGODB_DATABASE", defaults.mongodb_database),
            rasa_urls=urls,
            rasa_token=env.get("RASA_TOKEN") or None,
            nlu_timeout_seconds=float(env.get("NLU_TIMEOUT_SECONDS", defaults.nlu_timeout_seconds)),
            nlu_confidence_threshold=float(env.get("NLU_CONFIDENCE_THRESHOLD", defaults.nlu_confidence_threshold)),
            timezone=env.get("SHOP_TIMEZONE", defaults.timezone),
            var_dir=Path(env.get("GATEWAY_VAR_DIR", defaults.var_dir)),
            aftersales_policy_path=Path(env["AFTERSALES_POLICY"]) if env.get("AFTERSALES_POLICY") else None,
            knowledge_path=Path(env["KNOWLEDGE_BASE"]) if env.get("KNOWLEDGE_BASE") else None,
            ocr_engine=env.get("OCR_ENGINE", defaults.ocr_engine),
            ocr_workers=int(env.get("OCR_WORKERS", defaults.ocr_workers)),
            media_dir=Path(env["MEDIA_DIR"]) if env.get("MEDIA_DIR") else None,
            media_max_bytes=int(env.get("MEDIA_MAX_BYTES", defaults.media_max_bytes)),
            media_quota_bytes=int(env["MEDIA_QUOTA_BYTES"]) if env.get("MEDIA_QUOTA_BYTES") else None,
            public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
            outbox_base_delay=float(env.get("OUTBOX_BASE_DELAY_SECONDS", defaults.outbox_base_delay)),
            outbox_max_delay=float(env.get("OUTBOX_MAX_DELAY_SECONDS", defaults.outbox_max_delay)),
            outbox_max_attempts=int(env.get("OUTBOX_MAX_ATTEMPTS", defaults.outbox_max_attempts)),
            outbox_poll_interval=float(env.get("OUTBOX_POLL_SECONDS", defaults.outbox_poll_interval)),
            outbox_lease_seconds=float(env.get("OUTBOX_LEASE_SECONDS", defaults.outbox_lease_seconds)),
            recovery_seconds=float(env.get("RECOVERY_SECONDS", defaults.recovery_seconds)),
            recovery_after_seconds=float(env.get("RECOVERY_AFTER_SECONDS", defaults.recovery_after_seconds)),
            rasa_servers=int(env.get("RASA_SERVERS", defaults.rasa_servers)),
            telegram_bot_token=env.get("TELEGRAM_BOT_TOKEN") or None,
            telegram_webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET") or None,
            telegram_mode=env.get("TELEGRAM_MODE", defaults.telegram_mode),
            telegram_api_base_url=(env.get("TELEGRAM_API_BASE_URL") or defaults.telegram_api_base_url).rstrip("/"),
            agent_api_token=env.get("AGENT_API_TOKEN") or None,
            canned_replies_path=Path(env["CANNED_REPLIES"]) if env.get("CANNED_REPLIES") else None,
            console_cookie_secure=env.get("CONSOLE_COOKIE_SECURE", "1").lower() not in ("0", "false", "no"),
            backoffice_admin_token=env.get("BACKOFFICE_ADMIN_TOKEN") or None,
            backoffice_sweep_seconds=float(env.get("BACKOFFICE_SWEEP_SECONDS", defaults.backoffice_sweep_seconds)),
            app_im_secret=env.get("APP_IM_SECRET") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_from_number=env.get("TWILIO_FROM_NUMBER") or None,
            twilio_api_base_url=(env.get("TWILIO_API_BASE_URL") or defaults.twilio_api_base_url).rstrip("/"),
            email_addresses=tuple(a.strip() for a in env.get("EMAIL_ADDRESS", "").split(",") if a.strip()),
            email_accept_domains=tuple(d.strip() for d in env.get("EMAIL_ACCEPT_DOMAINS", "").split(",") if d.strip()),
            email_smtp_listen=None
            if env.get("EMAIL_SMTP_LISTEN", "").lower() == "off"
            else env.get("EMAIL_SMTP_LISTEN") or defaults.email_smtp_listen,
            email_smtp_relay=env.get("EMAIL_SMTP_RELAY") or None,
            email_smtp_user=env.get("EMAIL_SMTP_USER") or None,
            email_smtp_password=env.get("EMAIL_SMTP_PASSWORD") or None,
            email_smtp_starttls=env.get("EMAIL_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
            email_imap_host=env.get("EMAIL_IMAP_HOST") or None,
            email_imap_port=int(env.get("EMAIL_IMAP_PORT", defaults.email_imap_port)),
            email_imap_user=env.get("EMAIL_IMAP_USER") or None,
            email_imap_password=env.get("EMAIL_IMAP_PASSWORD") or None,
            email_imap_mailbox=env.get("EMAIL_IMAP_MAILBOX", defaults.email_imap_mailbox),
            email_imap_poll_seconds=float(env.get("EMAIL_IMAP_POLL_SECONDS", defaults.email_imap_poll_seconds)),
            twilio_voice_number=env.get("TWILIO_VOICE_NUMBER") or None,
            ivr_agent_queue=env.get("IVR_AGENT_QUEUE") or None,
            ivr_agent_number=env.get("IVR_AGENT_NUMBER") or None,
            ivr_agent_sip=env.get("IVR_AGENT_SIP") or None,
            ivr_agent_caller_id=env.get("IVR_AGENT_CALLER_ID") or None,
            ivr_prompts=env.get("IVR_PROMPTS", defaults.ivr_prompts),
            ivr_languages=_list(env.get("IVR_LANGUAGES")) or defaults.ivr_languages,
            ivr_default_language=env.get("IVR_DEFAULT_LANGUAGE", defaults.ivr_default_language),
            ivr_engines=tuple(
                sorted(
                    (k.removeprefix("IVR_ENGINE_").lower(), v)
                    for k, v in env.items()
                    if k.startswith("IVR_ENGINE_") and v
                )
            ),
            vosk_models=tuple(
                sorted(
                    (k.removeprefix("VOSK_MODEL_").lower(), Path(v))
                    for k, v in env.items()
                    if k.startswith("VOSK_MODEL_") and v
                )
            ),
            ivr_whisper_model_dir=Path(env["IVR_WHISPER_MODEL_DIR"]) if env.get("IVR_WHISPER_MODEL_DIR") else None,
            ivr_whisper_threads=int(env.get("IVR_WHISPER_THREADS", defaults.ivr_whisper_threads)),
            ivr_asr_workers=int(env.get("IVR_ASR_WORKERS", defaults.ivr_asr_workers)),
            ivr_blocklist=_list(env.get("IVR_BLOCKLIST")),
            ivr_rate_max_calls=int(env.get("IVR_RATE_MAX_CALLS", defaults.ivr_rate_max_calls)),
            ivr_rate_window_seconds=float(env.get("IVR_RATE_WINDOW_SECONDS", defaults.ivr_rate_window_seconds)),
            ivr_silence_seconds=float(env.get("IVR_SILENCE_SECONDS", defaults.ivr_silence_seconds)),
            ivr_no_input_seconds=float(env.get("IVR_NO_INPUT_SECONDS", defaults.ivr_no_input_seconds)),
            rest_webhook_token=env.get("REST_WEBHOOK_TOKEN") or None,
            rest_customer_token_secret=env.get("REST_CUSTOMER_TOKEN_SECRET") or None,
            sender_session_secret=env.get("SENDER_SESSION_SECRET") or None,
            rate_limit_ip_per_minute=float(env.get("RATE_LIMIT_IP_PER_MINUTE", defaults.rate_limit_ip_per_minute)),
            rate_limit_ip_burst=int(env.get("RATE_LIMIT_IP_BURST", defaults.rate_limit_ip_burst)),
            rate_limit_ip_exempt=_list(env["RATE_LIMIT_IP_EXEMPT"])
            if "RATE_LIMIT_IP_EXEMPT" in env
            else defaults.rate_limit_ip_exempt,
            rate_limit_trusted_proxies=_list(env.get("RATE_LIMIT_TRUSTED_PROXIES")),
            rate_limit_sender_per_minute=float(
                env.get("RATE_LIMIT_SENDER_PER_MINUTE", defaults.rate_limit_sender_per_minute)
            ),
            rate_limit_sender_burst=int(env.get("RATE_LIMIT_SENDER_BURST", defaults.rate_limit_sender_burst)),
            rate_limit_max_keys=int(env.get("RATE_LIMIT_MAX_KEYS", defaults.rate_limit_max_keys)),
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _list(value: str | None) -> tuple[str, ...]:
    """A comma-separated variable as a tuple of its non-empty items."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())
