"""Settings of the phone line: Twilio, the transfer target, prompts, languages and speech engines."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from configuration import SettingsError, setting
from ivr import twiml
from ivr.engines import ENGINE_NAMES, EngineConfig
from ivr.whisper_engine import default_model_dir

IVR_LANGUAGES = ("zh", "en")


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """The phone hotline (Twilio Voice webhooks and Media Streams, local speech recognition)."""

    title: ClassVar[str] = "Channel: phone (IVR)"
    voice_number: str | None = setting(
        None,
        env="TWILIO_VOICE_NUMBER",
        help="enables the phone hotline: the number whose voice webhook is `/webhooks/twilio/voice`",
    )
    account_sid: str | None = setting(
        None, env="TWILIO_ACCOUNT_SID", help="the Twilio account (SMS and the phone line)"
    )
    auth_token: str | None = setting(
        None, env="TWILIO_AUTH_TOKEN", secret=True, help="signs Twilio's webhooks (required with the phone line)"
    )
    agent_queue: str | None = setting(
        None, env="IVR_AGENT_QUEUE", help="transfer target (exactly one of three): a Twilio queue agents dequeue from …"
    )
    agent_number: str | None = setting(None, env="IVR_AGENT_NUMBER", help="… or a phone number (`<Dial><Number>`) …")
    agent_sip: str | None = setting(
        None, env="IVR_AGENT_SIP", help="… or a SIP address (the conversation id in an `X-Conversation-Id` header)"
    )
    agent_caller_id: str | None = setting(None, env="IVR_AGENT_CALLER_ID", help="caller id shown to the agent")
    prompts: str = setting(
        "stream",
        env="IVR_PROMPTS",
        choices=("stream", "say"),
        help="`stream`: prompts synthesised locally (espeak-ng) and streamed on the call's websocket, with barge-in; "
        "`say`: Twilio's `<Say>` voices",
    )
    languages: tuple[str, ...] = setting(("zh", "en"), env="IVR_LANGUAGES", help="languages the menu offers")
    default_language: str = setting("zh", env="IVR_DEFAULT_LANGUAGE", help="the language a call starts in")
    engines: tuple[tuple[str, str], ...] = setting(
        (),
        env="IVR_ENGINE_",
        prefix=True,
        help="`IVR_ENGINE_<LANG>`: `vosk` or `whisper` per language (default: `vosk` where `VOSK_MODEL_<LANG>` is "
        "set, else `whisper`)",
    )
    vosk_models: tuple[tuple[str, Path], ...] = setting(
        (), env="VOSK_MODEL_", prefix=True, help="`VOSK_MODEL_<LANG>`: a Vosk model directory per language (never "
        "downloaded)"
    )  # fmt: skip
    whisper_model_dir: Path | None = setting(
        None,
        env="IVR_WHISPER_MODEL_DIR",
        help="where faster-whisper base is assembled from its wheels",
        default_text="inside the venv",
    )
    whisper_threads: int = setting(2, env="IVR_WHISPER_THREADS", minimum=1, help="CTranslate2 threads per decode")
    asr_workers: int = setting(2, env="IVR_ASR_WORKERS", minimum=1, help="speech decodes running at once")
    blocklist: tuple[str, ...] = setting((), env="IVR_BLOCKLIST", help="numbers whose calls are rejected")
    rate_max_calls: int = setting(5, env="IVR_RATE_MAX_CALLS", minimum=1, help="calls per number per window")
    rate_window_seconds: float = setting(600.0, env="IVR_RATE_WINDOW_SECONDS", minimum=1, help="the window")
    trusted_attestations: tuple[str, ...] = setting(
        ("A",),
        env="IVR_TRUSTED_ATTESTATIONS",
        help="STIR/SHAKEN levels (Twilio's `StirVerstat`) that make the calling number the caller's; other "
        "callers' numbers are hints, verified before anything personal",
    )
    trust_caller_id: bool = setting(
        False, env="IVR_TRUST_CALLER_ID", help="the carrier guarantees caller ID (a private line): take it as proof"
    )
    silence_seconds: float = setting(
        0.8, env="IVR_SILENCE_SECONDS", minimum=0.1, help="silence that ends a caller's turn"
    )
    no_input_seconds: float = setting(8.0, env="IVR_NO_INPUT_SECONDS", minimum=1, help="silence before a re-prompt")

    @property
    def enabled(self) -> bool:
        return bool(self.voice_number)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            engines=dict(self.engines),
            vosk_models=dict(self.vosk_models),
            whisper_model_dir=self.whisper_model_dir or default_model_dir(),
            whisper_threads=self.whisper_threads,
            whisper_workers=self.asr_workers,
        )

    def agent_target(self) -> twiml.AgentTarget:
        given = {
            "IVR_AGENT_QUEUE": self.agent_queue,
            "IVR_AGENT_NUMBER": self.agent_number,
            "IVR_AGENT_SIP": self.agent_sip,
        }
        chosen = [name for name, value in given.items() if value]
        if len(chosen) != 1:
            raise SettingsError(
                "the phone IVR (TWILIO_VOICE_NUMBER) needs exactly one transfer target: IVR_AGENT_QUEUE (a Twilio "
                "queue agents dequeue from), IVR_AGENT_NUMBER or IVR_AGENT_SIP"
                + (f"; got {', '.join(chosen)}" if chosen else ""),
                variable="IVR_AGENT_QUEUE",
            )
        if self.agent_sip and not self.agent_sip.startswith(("sip:", "sips:")):
            raise SettingsError(
                f"IVR_AGENT_SIP must be a sip: address, not {self.agent_sip!r}", variable="IVR_AGENT_SIP"
            )
        return twiml.AgentTarget(
            queue=self.agent_queue, number=self.agent_number, sip=self.agent_sip, caller_id=self.agent_caller_id
        )

    def validate(self) -> None:
        """Everything the line needs, checked before anything starts; the message says what is missing."""
        if not self.enabled:
            return
        if not self.auth_token:
            raise SettingsError(
                "the phone IVR (TWILIO_VOICE_NUMBER) needs TWILIO_AUTH_TOKEN to check Twilio's signatures",
                variable="TWILIO_AUTH_TOKEN",
            )
        self.agent_target()
        if self.prompts == "stream" and shutil.which("espeak-ng") is None:
            raise SettingsError(
                "IVR_PROMPTS=stream needs espeak-ng (make setup installs it), or set IVR_PROMPTS=say",
                variable="IVR_PROMPTS",
            )
        unknown = [lang for lang in self.languages if lang not in IVR_LANGUAGES]
        if unknown or not self.languages:
            raise SettingsError(
                f"IVR_LANGUAGES: use some of {', '.join(IVR_LANGUAGES)}, not {unknown or 'nothing'}",
                variable="IVR_LANGUAGES",
            )
        if self.default_language not in self.languages:
            raise SettingsError(
                f"IVR_DEFAULT_LANGUAGE={self.default_language} is not in IVR_LANGUAGES", variable="IVR_DEFAULT_LANGUAGE"
            )
        config = self.engine_config()
        for language in self.languages:
            engine = config.engine_for(language)
            variable = f"IVR_ENGINE_{language.upper()}"
            if engine not in ENGINE_NAMES:
                raise SettingsError(f"{variable}={engine!r}: use one of {', '.join(ENGINE_NAMES)}", variable=variable)
            if engine == "vosk":
                path = config.vosk_models.get(language)
                if path is None:  # only when IVR_ENGINE_<LANG>=vosk was asked for: the default follows the models
                    raise SettingsError(
                        f"{variable}=vosk needs VOSK_MODEL_{language.upper()}, the directory of a Vosk model (nothing "
                        f"is downloaded), or leave {variable} unset for whisper",
                        variable=f"VOSK_MODEL_{language.upper()}",
                    )
                if not path.is_dir():
                    raise SettingsError(
                        f"VOSK_MODEL_{language.upper()}={path}: no such directory",
                        variable=f"VOSK_MODEL_{language.upper()}",
                    )
