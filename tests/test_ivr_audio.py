"""Telephone audio: μ-law, resampling, WAV reading, speech detection; the IVR's small pure parts
(phrase matching, nuisance guard, TwiML, the Media Streams parser, the menu, the prompt voice)."""

from __future__ import annotations

import base64
import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from ivr import audio, menu, twiml
from ivr.media_stream import KeyPress, MarkPlayed, MediaFrame, StreamProtocolError, StreamStart, parse_event
from ivr.nuisance import NuisanceGuard
from ivr.phrases import Answer, match_answer, phrase_list
from ivr.voice import EspeakVoice, pinyin_text
from tests.conftest import AUDIO


def tone(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def test_ulaw_decodes_the_g711_table_and_encodes_back() -> None:
    assert audio.ulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80, 0xFE, 0xEF])).tolist() == [0, 0, -32124, 32124, 8, 132]
    codes = bytes(range(256))
    back = audio.ulaw_encode(audio.ulaw_decode(codes))
    assert [a for a, b in zip(codes, back, strict=True) if a != b] == [0x7F]  # -0 and +0 both decode to 0
    pcm = np.arange(-32768, 32767, 13, dtype=np.int16)
    error = np.abs(audio.ulaw_decode(audio.ulaw_encode(pcm)).astype(int) - pcm.astype(int))
    assert error.max() <= 1024 and (error <= np.maximum(np.abs(pcm.astype(int)) // 16, 8)).all()  # log quantisation


def test_the_frame_by_frame_upsampler_matches_a_whole_signal_resample() -> None:
    source = tone(8000)
    upsampler = audio.Upsampler()
    pieces = [upsampler.process(source[i : i + 160]) for i in range(0, source.size, 160)]
    streamed = np.concatenate([*pieces, upsampler.flush()])[2 * upsampler.delay :][:16000]
    reference = tone(16000)
    assert np.abs(streamed[100:-100] - reference[100:-100]).max() < 0.02
    assert np.abs(audio.resample(source, 8000, 16000)[100:-100] - reference[100:-100]).max() < 0.01
    down = audio.resample(tone(22050, hz=5000.0), 22050, 8000)  # above the phone band: filtered out
    assert float(np.sqrt(np.mean(down**2))) < 0.01


def test_wav_files_are_read_as_a_call_delivers_them() -> None:
    ulaw_wav = audio.read_audio(AUDIO / "zhT_order.8k.ulaw.wav")
    raw = (AUDIO / "zhT_order.8k.ulaw").read_bytes()
    assert ulaw_wav.rate == 8000 and ulaw_wav.ulaw == raw and audio.as_phone_call(ulaw_wav) == raw
    pcm = audio.read_audio(AUDIO / "zhT_order.16k.wav")
    assert pcm.rate == 16000 and pcm.ulaw is None and abs(pcm.seconds - ulaw_wav.seconds) < 0.01
    assert len(audio.as_phone_call(pcm)) == pytest.approx(len(raw), abs=2)
    assert audio.read_audio(AUDIO / "zhT_order.8k.ulaw").ulaw == raw


def test_unreadable_audio_is_refused_with_the_reason(tmp_path: Path) -> None:
    cases = {
        "text.wav": b"hello",
        "empty.ulaw": b"",
        "float.wav": struct.pack(
            "<4sI4s4sIHHIIHH4sI", b"RIFF", 44, b"WAVE", b"fmt ", 16, 3, 1, 8000, 32000, 4, 32, b"data", 0
        ),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(audio.AudioFileError):
            audio.read_audio(tmp_path / name)
    wav = audio.wav_bytes(audio.to_pcm16(tone(8000, 0.1)), 8000)
    assert audio.read_audio_bytes(wav).samples.size == 800


def test_speech_detection_finds_the_utterance_and_its_end_in_audio_time() -> None:
    recording = (AUDIO / "zhT_w_order.8k.ulaw").read_bytes()
    detector = audio.SpeechDetector(silence=0.6)
    events = []
    for frame in audio.media_frames(b"\xff" * 4000 + recording + b"\xff" * 8000):
        event = detector.push(audio.to_float(audio.ulaw_decode(frame)))
        if event is not None:
            events.append((event, round(detector.seconds, 2)))
    assert [e for e, _ in events] == [audio.SpeechEvent.STARTED, audio.SpeechEvent.ENDED]
    started, ended = events[0][1], events[1][1]
    assert 0.5 <= started <= 0.8  # half a second of silence first
    speech_end = 0.5 + len(recording) / 8000
    assert speech_end - 0.3 <= ended - 0.6 <= speech_end + 0.05  # the last voiced frame, plus the silence


def test_a_transcript_maps_to_the_answer_it_says() -> None:
    answers = [Answer(("查订单", "查询订单"), "查订单", "1"), Answer(("转人工", "人工"), "转人工", "0")]
    assert match_answer("查询单，", answers).answer.payload == "查订单"  # one character misheard
    assert match_answer("帮我转人工吧", answers).answer.key == "0"  # the phrase is in it
    assert match_answer("我想改地址", answers) is None  # something else: left to the NLU
    assert match_answer("", answers) is None
    assert phrase_list(answers, ["确认"]) == ["查订单", "转人工", "确认", "查询订单", "人工"]


def test_the_nuisance_guard_blocks_listed_numbers_and_counts_attempts_in_a_window() -> None:
    now = [0.0]
    guard = NuisanceGuard(["+86 136-6666-6666"], max_calls=3, window_seconds=60, clock=lambda: now[0])
    assert guard.check("13666666666").reason == "blocklist"
    assert [guard.check("+8613800138000").allowed for _ in range(4)] == [True, True, True, False]
    assert guard.check("13800138000").reason == "rate"  # the same number in the shop's national form
    now[0] = 61.0
    assert guard.check("13800138000").allowed


def test_twiml_connects_the_stream_and_transfers_to_each_kind_of_target() -> None:
    connect = ET.fromstring(twiml.connect_stream("wss://cs/s", "https://cs/next", "tok", say="您好"))
    assert connect.find("Say").get("language") == "zh-CN"
    assert connect.find("Connect").get("action") == "https://cs/next"
    assert connect.find("Connect/Stream/Parameter").attrib == {"name": "call_token", "value": "tok"}
    queue = ET.fromstring(
        twiml.transfer(twiml.AgentTarget(queue="aftersales"), say=None, language="zh", conversation_id="c1")
    )
    assert queue.findtext("Enqueue") == "aftersales" and queue.find("Say") is None
    number = ET.fromstring(
        twiml.transfer(
            twiml.AgentTarget(number="+8610123"), say="Putting you through", language="en", conversation_id="c1"
        )
    )
    assert number.find("Say").get("language") == "en-US" and number.findtext("Dial/Number") == "+8610123"
    sip = ET.fromstring(
        twiml.transfer(
            twiml.AgentTarget(sip="sip:desk@pbx.example.com"), say=None, language="zh", conversation_id="c 1"
        )
    )
    assert sip.findtext("Dial/Sip") == "sip:desk@pbx.example.com?X-Conversation-Id=c%201"
    goodbye = ET.fromstring(twiml.hang_up(say="再见", language="zh"))
    assert [child.tag for child in goodbye] == ["Say", "Hangup"]


def test_media_stream_events_are_parsed_and_bad_ones_refused() -> None:
    start = {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "streamSid": "MZ1",
            "callSid": "CA1",
            "accountSid": "AC1",
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"call_token": "t"},
        },
        "streamSid": "MZ1",
    }
    event, sequence = parse_event(json.dumps(start))
    assert isinstance(event, StreamStart) and event.parameters == {"call_token": "t"} and sequence == 1
    payload = base64.b64encode(b"\xff" * 160).decode()
    media = {"event": "media", "sequenceNumber": "2", "media": {"chunk": "1", "timestamp": "20", "payload": payload}}
    event, _ = parse_event(json.dumps(media))
    assert isinstance(event, MediaFrame) and len(event.payload) == 160 and event.timestamp_ms == 20
    assert isinstance(parse_event('{"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "#"}}')[0], KeyPress)
    assert isinstance(parse_event('{"event": "mark", "mark": {"name": "prompt-1"}}')[0], MarkPlayed)
    assert parse_event('{"event": "connected", "protocol": "Call"}')[0] is None
    for bad in (
        "not json",
        "[]",
        '{"event": "media", "media": {"payload": "***"}}',
        '{"event": "dance"}',
        '{"event": "dtmf", "dtmf": {"digit": "x"}}',
        '{"event": "start", "start": {}}',
    ):
        with pytest.raises(StreamProtocolError):
            parse_event(bad)


def test_the_greeting_offers_a_known_callers_likeliest_scenarios_first() -> None:
    shipped = menu.CallerInfo(customer_id="c", order_id="202611150001", order_status="shipped")
    order = menu.scenario_order(shipped)
    assert order[0] == "logistics" and len(order) == 5
    text = menu.greeting(shipped, order, "zh", offer_english=True)
    assert "尾号0001" in text and "按1查询物流" in text and "人工服务请按0" in text and "press 9" in text
    refund = menu.CallerInfo(open_request_type="refund", open_request_order_id="202611180002", order_status="paid")
    assert menu.scenario_order(refund)[:2] == ["refund_progress", "address_change"]
    assert menu.scenario_order(menu.CallerInfo()) == list(menu.DEFAULT_ORDER)
    english = menu.greeting(menu.CallerInfo(), list(menu.DEFAULT_ORDER), "en", offer_english=False)
    assert english.startswith("Hello") and "press 1 for order status" in english
    answers = menu.menu_answers(order, "zh")
    assert [a.key for a in answers] == ["1", "2", "3", "4", "5", "0"] and answers[-1].payload == "转人工"
    assert menu.with_keypad_hint("请提供订单号。", "zh").endswith("以井号键结束，按星号键重新输入。")
    assert menu.spoken_language("Your order has shipped", "zh") == "en"


async def test_the_prompt_voice_speaks_mandarin_through_pinyin_as_phone_audio() -> None:
    assert pinyin_text("按1查询订单202611150001，谢谢") == (
        "an4 yi1 cha2 xun2 ding4 dan1 er4 ling2 er4 liu4 yao1 yao1 yao1 wu3 ling2 ling2 ling2 yao1 , xie4 xie4"
    )
    voice = EspeakVoice()
    spoken = await voice.speak("您好，请说出您的问题。", "zh")
    assert 1.0 < len(spoken) / 8000 < 8.0
    decoded = audio.ulaw_decode(spoken).astype(np.float64) / 32768
    assert 0.05 < float(np.abs(decoded).max()) <= 0.6  # audible, with headroom
    assert await voice.speak("您好，请说出您的问题。", "zh") is spoken  # cached
