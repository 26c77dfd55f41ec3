"""Telephone audio: G.711 μ-law, resampling, WAV files, and finding where speech starts and ends.

Owns the sample-level work between Twilio's wire format (8 kHz μ-law, 20 ms = 160 bytes per
media frame) and the recognisers (16-bit PCM at 16 kHz): decoding and encoding μ-law, the 8 → 16
kHz upsampler that runs frame by frame in a call, a general resampler for whole files and prompt
audio, reading PCM and μ-law WAV files, and the energy detector that marks speech onsets (barge-in)
and utterance ends (silence timeout). Everything is counted in audio time, not wall time: Twilio
streams the inbound track continuously, silence included, so audio time is call time.

Written with numpy rather than :mod:`audioop`: audioop is deprecated since Python 3.11 and gone in
3.13, and its replacement ``audioop-lts`` only installs on 3.13+; numpy works on both and handles a
frame in one vectorised step.

Must not know about recognisers, Twilio's JSON or the dialogue.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from errors import UserError

PHONE_RATE = 8000
"""Twilio media streams carry 8 kHz mono μ-law."""
ASR_RATE = 16000
"""What the recognisers' models were trained on."""
FRAME_BYTES = 160
"""One Twilio media frame: 20 ms of 8 kHz μ-law."""
FRAME_SECONDS = FRAME_BYTES / PHONE_RATE

Samples = npt.NDArray[np.float32]
"""Mono audio as float32 in [-1, 1)."""

_BIAS = 0x84
_CLIP = 32635


def _decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa << 3) + _BIAS) << exponent
    linear = magnitude - _BIAS
    return np.where(sign != 0, -linear, linear).astype(np.int16)


ULAW_TO_PCM16 = _decode_table()
"""G.711 μ-law code → 16-bit linear sample (the standard table)."""


def ulaw_decode(data: bytes) -> npt.NDArray[np.int16]:
    """μ-law bytes → 16-bit PCM samples."""
    return ULAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """16-bit PCM samples → μ-law bytes (G.711, with the usual clipping at 32635)."""
    pcm = samples.astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(pcm), _CLIP) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    codes: bytes = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()
    return codes


def media_frames(ulaw: bytes) -> list[bytes]:
    """A recording cut into Twilio's 20 ms media frames (the last one padded with μ-law silence)."""
    padded = ulaw + b"\xff" * (-len(ulaw) % FRAME_BYTES)
    return [padded[i : i + FRAME_BYTES] for i in range(0, len(padded), FRAME_BYTES)]


def to_float(samples: npt.NDArray[np.int16]) -> Samples:
    return (samples.astype(np.float32) / 32768.0).astype(np.float32)


def to_pcm16(samples: Samples) -> npt.NDArray[np.int16]:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def _kaiser_sinc(offsets: npt.NDArray[np.float64], cutoff: float, half_width: float) -> npt.NDArray[np.float64]:
    """A Kaiser-windowed sinc low-pass at ``cutoff`` (fraction of the input rate), by sample offset."""
    x = np.clip(offsets / half_width, -1.0, 1.0)
    beta = 8.0
    window = np.i0(beta * np.sqrt(1.0 - x * x)) / np.i0(beta)
    return 2.0 * cutoff * np.sinc(2.0 * cutoff * offsets) * window


class Upsampler:
    """8 → 16 kHz, frame by frame, with state across frames (a call's audio arrives in 20 ms pieces).

    A factor-2 windowed-sinc interpolator: even output samples are the input samples, odd ones are
    interpolated from ``taps`` neighbours on each side. The output lags the input by ``delay``
    input samples (about 2 ms at 16 taps); :meth:`flush` returns the tail.
    """

    def __init__(self, taps: int = 16) -> None:
        self.taps = taps
        offsets = np.arange(-taps, taps, dtype=np.float64) + 0.5
        kernel = _kaiser_sinc(offsets, 0.5, taps + 0.5)
        self._kernel = (kernel / kernel.sum()).astype(np.float32)
        self._history = np.zeros(2 * taps, dtype=np.float32)
        self.delay = taps + 1

    def process(self, samples: Samples) -> Samples:
        if samples.size == 0:
            return np.zeros(0, dtype=np.float32)
        buffer = np.concatenate([self._history, samples.astype(np.float32)])
        count = samples.size
        # Output pairs for inputs buffer[taps-1 .. taps-1+count): each needs taps samples after it.
        centre = buffer[self.taps - 1 : self.taps - 1 + count]
        windows = np.lib.stride_tricks.sliding_window_view(buffer, 2 * self.taps)[:count]
        between = windows @ self._kernel
        self._history = buffer[-2 * self.taps :]
        out = np.empty(2 * count, dtype=np.float32)
        out[0::2] = centre
        out[1::2] = between
        return out

    def flush(self) -> Samples:
        return self.process(np.zeros(self.delay, dtype=np.float32))


def resample(samples: Samples, source_rate: int, target_rate: int) -> Samples:
    """Whole-signal resampling between any two rates, for files and prompt audio (calls use
    :class:`Upsampler`). In the frequency domain: everything above the lower Nyquist is cut, with
    a short taper so the cut does not ring; a 10 s prompt takes milliseconds."""
    if source_rate == target_rate or samples.size == 0:
        return samples.astype(np.float32)
    pad = source_rate // 10  # 100 ms of silence each side keeps the circular wrap out of the audio
    padded = np.concatenate([np.zeros(pad), samples.astype(np.float64), np.zeros(pad)])
    count = round(padded.size * target_rate / source_rate)
    spectrum = np.fft.rfft(padded)
    bins = count // 2 + 1
    kept = np.zeros(bins, dtype=np.complex128)
    shared = min(bins, spectrum.size)
    kept[:shared] = spectrum[:shared]
    taper = max(1, shared // 20)  # the top 5 % of the kept band fades out
    kept[shared - taper : shared] *= np.cos(np.linspace(0.0, np.pi / 2, taper)) ** 2
    out = np.fft.irfft(kept, n=count) * (count / padded.size)
    skip = round(pad * target_rate / source_rate)
    length = round(samples.size * target_rate / source_rate)
    return out[skip : skip + length].astype(np.float32)


def phone_line(samples: Samples, rate: int) -> bytes:
    """What a phone line delivers of this audio: 8 kHz μ-law (band-limited by the resampler)."""
    return ulaw_encode(to_pcm16(resample(samples, rate, PHONE_RATE)))


def ulaw_to_asr(data: bytes) -> Samples:
    """A whole μ-law recording at 8 kHz, upsampled for the recognisers as a call does it."""
    upsampler = Upsampler()
    out = np.concatenate([upsampler.process(to_float(ulaw_decode(data))), upsampler.flush()])
    return out[2 * upsampler.delay :]


class AudioFileError(UserError):
    """A file that is not audio this module can read."""

    code = "unreadable_audio"


@dataclass(frozen=True, slots=True)
class Recording:
    samples: Samples
    rate: int
    ulaw: bytes | None = None
    """The file's μ-law bytes when it was μ-law (used as is, no re-encoding)."""

    @property
    def seconds(self) -> float:
        return self.samples.size / self.rate


def read_audio(path: Path) -> Recording:
    """A WAV file (16-bit PCM or G.711 μ-law, any rate, mono or the first channel), or a headerless
    ``.ulaw``/``.mulaw`` file (8 kHz μ-law as a media stream carries it)."""
    data = path.read_bytes()
    if path.suffix.lower() in (".ulaw", ".mulaw", ".ul"):
        if not data:
            raise AudioFileError("empty file")
        return Recording(to_float(ulaw_decode(data)), PHONE_RATE, data)
    return read_audio_bytes(data)


def read_audio_bytes(data: bytes) -> Recording:
    """A WAV file's bytes (see :func:`read_audio`). A streamed WAV whose sizes were left unset
    (0 or 0xFFFFFFFF, as espeak-ng writes to a pipe) is read to the end."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFileError("not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    payload: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk_id == b"data" and (size == 0 or offset + 8 + size > len(data)):
            size = len(data) - offset - 8
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise AudioFileError("truncated fmt chunk")
            code, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if code == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's code
                code = struct.unpack_from("<H", body, 24)[0]
            fmt = (code, channels, rate, bits)
        elif chunk_id == b"data":
            payload = body
        offset += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise AudioFileError("WAV file without fmt or data chunk")
    code, channels, rate, bits = fmt
    if channels < 1 or rate <= 0:
        raise AudioFileError(f"bad WAV format: {channels} channels at {rate} Hz")
    if code == 7 and bits == 8:
        ulaw = payload[::channels] if channels > 1 else payload
        if not ulaw:
            raise AudioFileError("no audio samples")
        return Recording(to_float(ulaw_decode(ulaw)), rate, ulaw if rate == PHONE_RATE else None)
    if code == 1 and bits == 16:
        frames = np.frombuffer(payload[: len(payload) // (2 * channels) * 2 * channels], dtype="<i2")
        pcm = frames.reshape(-1, channels)[:, 0]
        if pcm.size == 0:
            raise AudioFileError("no audio samples")
        return Recording(to_float(pcm.astype(np.int16)), rate)
    raise AudioFileError(f"unsupported WAV encoding (format {code}, {bits} bits): use 16-bit PCM or μ-law")


def as_phone_call(recording: Recording) -> bytes:
    """The 8 kHz μ-law a call would carry for this recording (μ-law at 8 kHz is used as is)."""
    if recording.ulaw is not None:
        return recording.ulaw
    return phone_line(recording.samples, recording.rate)


def wav_bytes(pcm: npt.NDArray[np.int16], rate: int) -> bytes:
    """A 16-bit mono PCM WAV file."""
    body = pcm.astype("<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(body),
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(body),
    )
    return header + body


# -- speech detection ------------------------------------------------------------------------


class SpeechEvent(StrEnum):
    STARTED = "started"
    """Speech began (a few voiced frames in a row): barge-in point."""
    ENDED = "ended"
    """The caller stopped: ``silence`` seconds without speech after speaking."""
    TOO_LONG = "too_long"
    """An utterance longer than the limit is cut here (background talk, TV)."""


@dataclass(slots=True)
class SpeechDetector:
    """Energy-based speech detection on 20 ms frames, with an adaptive noise floor.

    A frame is voiced when it is ``margin_db`` above the noise floor and above ``min_db``; speech
    starts after ``onset_frames`` voiced frames in a row and ends after ``silence`` seconds of
    unvoiced frames. Cheap enough to run on every frame of every call in the event loop.
    """

    silence: float = 0.8
    onset_frames: int = 4
    margin_db: float = 12.0
    min_db: float = -48.0
    max_utterance: float = 15.0
    noise_db: float = -70.0
    speaking: bool = False
    _voiced_run: int = 0
    _silent_run: int = 0
    _speech_frames: int = 0
    last_voiced_frame: int = -1
    frames: int = 0

    def level(self, frame: Samples) -> float:
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) if frame.size else 0.0
        return 20.0 * math.log10(max(rms, 1e-6))

    def push(self, frame: Samples) -> SpeechEvent | None:
        """One 20 ms frame; returns what changed with it, if anything."""
        self.frames += 1
        db = self.level(frame)
        voiced = db > max(self.noise_db + self.margin_db, self.min_db)
        if not voiced:  # the floor follows quiet frames quickly and loud ones never
            self.noise_db = 0.9 * self.noise_db + 0.1 * db if db > self.noise_db else db
        if voiced:
            self._voiced_run += 1
            self._silent_run = 0
            self.last_voiced_frame = self.frames
        else:
            self._voiced_run = 0
            self._silent_run += 1
        if not self.speaking:
            if self._voiced_run >= self.onset_frames:
                self.speaking = True
                self._speech_frames = self._voiced_run
                return SpeechEvent.STARTED
            return None
        self._speech_frames += 1
        if self._silent_run * FRAME_SECONDS >= self.silence:
            self.reset()
            return SpeechEvent.ENDED
        if self._speech_frames * FRAME_SECONDS >= self.max_utterance:
            self.reset()
            return SpeechEvent.TOO_LONG
        return None

    def reset(self) -> None:
        self.speaking = False
        self._voiced_run = 0
        self._silent_run = 0
        self._speech_frames = 0

    @property
    def seconds(self) -> float:
        """Audio time so far."""
        return self.frames * FRAME_SECONDS
