"""Prompt audio for streaming back on the call: text → 8 kHz μ-law, synthesised locally.

Owns the :class:`PromptVoice` interface and its local engine, espeak-ng (a Debian package; no
network, no model download): English with its ``en-us`` voice; Mandarin through pypinyin (its
dictionary ships in the wheel) and espeak-ng's ``cmn-latn-pinyin`` voice, because its ``cmn``
voice spells most Hanzi out as English letters. Digit strings are read digit by digit (幺 for 1,
as on the phone). Synthesised prompts are cached by text, so fixed menus cost nothing after the
first call. The voice is robotic: a production hotline would plug a better TTS in here or use
Twilio's ``<Say>`` voices (``IVR_PROMPTS=say``).

Must not know Twilio's wire format, the call flow or the dialogue.
"""

from __future__ import annotations

import asyncio
import shutil
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import ClassVar

import textpatterns
from ivr.audio import PHONE_RATE, AudioFileError, phone_line, read_audio_bytes
from ivr.recognizer import EngineUnavailable

_DIGITS_ZH = {
    "0": "ling2",
    "1": "yao1",
    "2": "er4",
    "3": "san1",
    "4": "si4",
    "5": "wu3",
    "6": "liu4",
    "7": "qi1",
    "8": "ba1",
    "9": "jiu3",
}
_DIGIT_RUN = textpatterns.compile(r"\d+")
PROMPT_PEAK = 0.5
"""About -6 dBFS: loud enough on a handset, no clipping after resampling."""
_ZH_PAUSES = str.maketrans({"，": ", ", "。": ". ", "、": ", ", "；": ", ", "：": ", ", "！": ". ", "？": "? "})


class PromptVoice(ABC):
    name: ClassVar[str]

    @abstractmethod
    async def speak(self, text: str, language: str) -> bytes:
        """The prompt as 8 kHz μ-law, ready for Twilio ``media`` messages."""


def pinyin_text(text: str) -> str:
    """Mandarin text as tone-numbered pinyin for espeak-ng's pinyin voice; digits one by one."""
    from pypinyin import Style, lazy_pinyin

    def digits(match: textpatterns.Match[str]) -> str:
        run = match.group(0)
        if len(run) <= 2:  # "按1", "第12位": a number, not a code
            return _small_number(int(run))
        return " " + " ".join(_DIGITS_ZH[d] for d in run) + " "

    text = _DIGIT_RUN.sub(digits, text)
    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors="default")
    return " ".join(" ".join(syllables).translate(_ZH_PAUSES).split())


def _small_number(value: int) -> str:
    names = "零一二三四五六七八九"
    if value < 10:
        return names[value]
    tens, ones = divmod(value, 10)
    return ("" if tens == 1 else names[tens]) + "十" + (names[ones] if ones else "")


class EspeakVoice(PromptVoice):
    name: ClassVar[str] = "espeak-ng"
    VOICES: ClassVar[dict[str, str]] = {"zh": "cmn-latn-pinyin", "en": "en-us"}

    def __init__(self, *, words_per_minute: int = 150, cache_size: int = 256, binary: str = "espeak-ng") -> None:
        path = shutil.which(binary)
        if path is None:
            raise EngineUnavailable(
                f"IVR_PROMPTS=stream needs {binary} (Debian package espeak-ng; `make setup` installs it), "
                "or set IVR_PROMPTS=say to use Twilio's voices"
            )
        self.binary = path
        self.words_per_minute = words_per_minute
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cache_size = cache_size

    async def speak(self, text: str, language: str) -> bytes:
        key = (language, text)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        voice = self.VOICES.get(language, self.VOICES["en"])
        spoken = pinyin_text(text) if language == "zh" else text
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "-v",
            voice,
            "-s",
            str(self.words_per_minute),
            "--stdout",
            "--",
            spoken,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        wav, error = await process.communicate()
        if process.returncode != 0:
            raise EngineUnavailable(f"espeak-ng failed ({process.returncode}): {error.decode(errors='replace')[:200]}")
        try:
            recording = read_audio_bytes(wav)
        except AudioFileError as exc:
            raise EngineUnavailable(f"espeak-ng gave no audio: {exc}") from exc
        # espeak-ng writes at full scale; leave headroom so the phone path does not clip.
        peak = float(abs(recording.samples).max()) or 1.0
        ulaw = await asyncio.to_thread(phone_line, recording.samples * (PROMPT_PEAK / peak), recording.rate)
        self._cache[key] = ulaw
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return ulaw


def prompt_seconds(ulaw: bytes) -> float:
    return len(ulaw) / PHONE_RATE
