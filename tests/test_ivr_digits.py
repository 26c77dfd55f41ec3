"""Order and phone numbers on the phone: digit normalisation, keyed entries (``#`` ends, ``*`` clears)
on the media stream and in ``<Gather>``, the read-back with confirm / enter again, and the
digits-only decoding pass on a real phone clip (faster-whisper, one clip; the rest in the bench)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ivr import audio, twiml
from ivr.call import (
    CONFIRM,
    DIGITS_PASS,
    DTMF,
    REENTER,
    Call,
    CallTimers,
    Heard,
    Next,
    Prompt,
    StreamSession,
    answer_input,
)
from ivr.digits import closest, keyed, normalise_digits, read_back
from ivr.engines import EngineConfig, Engines
from ivr.media_stream import KeyPress, MarkPlayed, StreamEvent
from ivr.menu import number_asked
from ivr.phrases import Answer
from ivr.recognizer import Hypothesis, Recognition, RecognitionStream, SpeechEngine, SpeechWorkers
from tests.conftest import AUDIO

ORDERS = ("202611150001", "202611180002", "202611020003")  # 张伟's, in the demo shop


def test_digits_are_normalised_from_mandarin_english_and_sound_alikes() -> None:
    assert normalise_digits("二零二六幺幺幺五洞洞洞幺", "zh") == "202611150001"
    assert normalise_digits("幺三九 两两两两", "zh") == "1392222"
    assert normalise_digits("订单号是2026，一一一五零零零一。", "zh") == "202611150001"
    assert normalise_digits("二零二六雅雅雅五零零雅", "zh") == "20261115001"  # 幺 as whisper writes it
    assert normalise_digits("８５２－９１２３", "zh") == "8529123"  # full width
    assert normalise_digits("查物流", "zh") == "56"  # few digits: not a number (MIN_SPOKEN_DIGITS)
    assert normalise_digits("one three nine, double one, triple two, oh", "en") == "139112220"
    assert normalise_digits("My order number is 2026 1115, zero zero zero one.", "en") == "202611150001"
    assert normalise_digits("일 이 삼 공", "ko") == "1230"


def test_keyed_entries_clear_at_star_and_near_misses_snap_to_one_known_number() -> None:
    assert keyed("2026*202611150001#") == "202611150001"
    assert keyed("12*") == "" and keyed("") == ""
    assert closest("20261115001", ORDERS) == "202611150001"  # one digit lost
    assert closest("2029180002", ORDERS) == "202611180002"
    assert closest("12345", ORDERS) is None  # nothing close
    assert closest("202611", ORDERS) is None  # as close to all three
    assert closest("13800138000", ()) is None


def test_prompts_know_which_number_they_ask_for_and_read_it_back() -> None:
    assert number_asked("请提供您的订单号（10–20 位数字），我来为您查询。") == "order_id"
    assert number_asked("为了保护您的订单信息，请提供订单 2026 的收货手机号进行验证。") == "phone"
    assert number_asked("That number doesn't match the order. Please check and send it again.") == "phone"
    assert number_asked("Please tell me your order number (10–20 digits) and I'll look it up.") == "order_id"
    assert number_asked("订单 202611150001（耳机）当前状态：已发货。") is None
    assert read_back("order_id", "2026", "zh") == "您输入的订单号是 2 0 2 6，确认请按1，重新输入请按2。"
    assert (
        read_back("phone", "138", "en") == "You entered phone number 1 3 8. Press 1 to confirm, or 2 to enter it again."
    )


class FakeHost:
    """The channel's side of a call: records what reaches the gateway, asks for an order number."""

    voice = None

    def __init__(self, engine: SpeechEngine | None = None) -> None:
        self.received: list[Heard] = []
        self._engine = engine

    def engine(self, language: str) -> SpeechEngine:
        assert self._engine is not None
        return self._engine

    def known_numbers(self, call: Call, kind: str) -> tuple[str, ...]:
        return ORDERS if kind == "order_id" else ("13800138000",)

    async def respond(self, call: Call, heard: Heard) -> Prompt:
        self.received.append(heard)
        call.prompt = Prompt(f"answer to {heard.text}", "zh")
        return call.prompt

    def listen_twiml(self, call: Call, prompt: Prompt) -> str:
        raise AssertionError("stream mode")

    def final_twiml(self, call: Call, prompt: Prompt, *, spoken: bool) -> str:
        return "<Response/>"

    async def ended(self, call: Call) -> None:
        pass


ASK = Prompt("请提供您的订单号。", "zh", (Answer(("转人工",), "转人工", key="0"),), number="order_id", hotwords=())


def new_call() -> Call:
    return Call(sid="CA1", caller="+8613800138000", called="+864008001234", language="zh", token="t", prompt=ASK)


async def test_a_number_is_read_back_and_goes_on_only_when_confirmed() -> None:
    host, call = FakeHost(), new_call()
    keyed_in = Heard(kind="dtmf", text="202611150001", digits="202611150001", via=DTMF)
    readback = await answer_input(call, keyed_in, host)
    assert readback.readback == "202611150001" and "2 0 2 6 1 1 1 5 0 0 0 1" in readback.text
    assert [a.key for a in readback.answers] == ["1", "2", "0"] and host.received == []
    call.prompt = readback
    # Said something else at the read-back: it is read back again, nothing sent.
    again = await answer_input(call, Heard(kind="speech", text="嗯"), host)
    assert again.readback == "202611150001" and again.text.startswith("抱歉") and host.received == []
    call.prompt = again
    confirm = next(a for a in readback.answers if a.payload == CONFIRM)
    answered = await answer_input(call, Heard(kind="dtmf", text=CONFIRM, digits="1", answer=confirm), host)
    assert answered.text == "answer to 202611150001" and call.pending is None
    (sent,) = host.received
    assert (sent.text, sent.via, sent.read_back, sent.kind) == ("202611150001", DTMF, True, "dtmf")


async def test_enter_again_asks_the_question_again_and_a_person_is_still_reachable() -> None:
    host, call = FakeHost(), new_call()
    call.prompt = await answer_input(call, Heard(kind="dtmf", text="12345", digits="12345", via=DTMF), host)
    reenter = next(a for a in call.prompt.answers if a.payload == REENTER)
    asked = await answer_input(call, Heard(kind="dtmf", text=REENTER, digits="2", answer=reenter), host)
    assert asked.number == "order_id" and asked.readback is None and ASK.text in asked.text
    assert host.received == [] and call.pending is None
    call.prompt = asked
    call.prompt = await answer_input(call, Heard(kind="dtmf", text="12345", digits="12345", via=DTMF), host)
    person = next(a for a in call.prompt.answers if a.key == "0")
    await answer_input(call, Heard(kind="dtmf", text=person.payload, digits="0", answer=person), host)
    assert [h.text for h in host.received] == ["转人工"] and call.pending is None
    # A call moving between gateway processes keeps the number being read back.
    call.prompt = ASK
    call.prompt = await answer_input(call, Heard(kind="dtmf", text="999", digits="999", via=DTMF), host)
    moved = Call.from_record(call.record())
    assert moved.prompt == call.prompt and moved.pending == call.pending


class FakeStream:
    """The gateway's side of the websocket: what it plays."""

    def __init__(self) -> None:
        self.played: list[str] = []
        self.changed = asyncio.Event()

    async def play(self, ulaw: bytes, mark: str) -> bool:
        self.played.append(mark)
        self.changed.set()
        return True

    async def clear(self) -> bool:
        return True

    async def close(self) -> None:
        pass


async def wait_for(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_keys_on_the_media_stream_star_clears_hash_ends_then_one_confirms() -> None:
    host, call, stream = FakeHost(), new_call(), FakeStream()
    session = StreamSession(call, stream, host, SpeechWorkers(1), CallTimers(), streamed_prompts=True)  # type: ignore[arg-type]

    async def events() -> AsyncIterator[StreamEvent]:
        yield MarkPlayed("prompt-1")  # the question has played
        for key in "2099*202611150001#":
            yield KeyPress(key)
        await wait_for(lambda: len(stream.played) == 2)  # the read-back
        assert call.prompt is not None and call.prompt.readback == "202611150001"
        yield MarkPlayed("prompt-2")
        for key in "1#":
            yield KeyPress(key)
        await wait_for(lambda: host.received)

    await session.run(events())
    (sent,) = host.received
    assert (sent.text, sent.digits, sent.via, sent.read_back) == ("202611150001", "202611150001", DTMF, True)


def test_say_mode_speaks_number_prompts_inside_a_dtmf_gather_that_ends_at_hash() -> None:
    body = twiml.connect_stream(
        "wss://x/stream", "https://x/next", "tok", say="请提供订单号", gather_url="https://x/gather"
    )
    root = ET.fromstring(body)
    gather = root.find("Gather")
    assert gather is not None and gather.get("input") == "dtmf" and gather.get("finishOnKey") == "#"
    assert gather.get("action") == "https://x/gather" and gather.findtext("Say") == "请提供订单号"
    assert root.find("Connect/Stream") is not None  # no keys: the caller may speak it
    readback = ET.fromstring(
        twiml.connect_stream("wss://x", "https://x", "t", say="确认请按1", gather_url="https://g", num_digits=1)
    )
    assert readback.find("Gather").get("numDigits") == "1"  # type: ignore[union-attr]


class ScriptedEngine(SpeechEngine):
    """Says what it is told: the digits pass hears ``digits``, the ordinary pass ``words``."""

    name = "scripted"
    streaming = False

    def __init__(self, digits: str, words: str) -> None:
        super().__init__("zh")
        self.digits, self.words = digits, words
        self.opened: list[str] = []

    def open(self, phrases: Any = ()) -> RecognitionStream:
        self.opened.append("words")
        return _Said(self.words)

    def open_digits(self) -> RecognitionStream:
        self.opened.append("digits")
        return _Said(self.digits)


class _Said(RecognitionStream):
    def __init__(self, text: str) -> None:
        self.text = text

    def accept(self, samples: audio.Samples) -> Hypothesis | None:
        return None

    def finish(self) -> Hypothesis:
        return Hypothesis(self.text, 0.9, final=True, engine="scripted")


async def speak_at_number_prompt(engine: ScriptedEngine) -> tuple[FakeHost, Call]:
    host, call, stream = FakeHost(engine), new_call(), FakeStream()
    session = StreamSession(
        call, stream, host, SpeechWorkers(1), CallTimers(silence_seconds=0.3), streamed_prompts=True
    )  # type: ignore[arg-type]
    speech = (AUDIO / "zhT_w_order.8k.ulaw").read_bytes() + b"\xff" * 8000

    async def events() -> AsyncIterator[StreamEvent]:
        from ivr.media_stream import MediaFrame

        yield MarkPlayed("prompt-1")
        for n, frame in enumerate(audio.media_frames(speech)):
            yield MediaFrame(frame, n, n * 20)
        await wait_for(lambda: len(stream.played) == 2 or host.received)

    await session.run(events())
    return host, call


async def test_speech_at_a_number_prompt_is_decoded_digits_only_and_a_near_miss_read_back() -> None:
    host, call = await speak_at_number_prompt(ScriptedEngine("二零二六雅雅雅五零零雅", "unused"))
    assert host.received == [] and call.prompt is not None and call.prompt.readback == "202611150001"
    pending = Heard.from_record(call.pending["heard"])  # type: ignore[index]
    assert (pending.via, pending.heard_digits, pending.transcript) == (
        DIGITS_PASS,
        "20261115001",
        "二零二六雅雅雅五零零雅",
    )


async def test_speech_at_a_number_prompt_that_is_no_number_is_decoded_again_as_words() -> None:
    engine = ScriptedEngine("四", "转人工")
    host, _ = await speak_at_number_prompt(engine)
    assert engine.opened == ["digits", "words"]
    (sent,) = host.received
    assert sent.text == "转人工" and sent.via is None and sent.answer is not None  # the prompt's answer


@pytest.fixture(scope="module")
def whisper_zh() -> SpeechEngine:
    return Engines(EngineConfig(), ("zh",)).get("zh")  # no engine set: whisper


async def test_the_digits_pass_reads_a_spoken_order_number_from_a_noisy_phone_clip(whisper_zh: SpeechEngine) -> None:
    assert whisper_zh.name == "whisper"
    samples = audio.ulaw_to_asr((AUDIO / "ph_zA_order_id.8k.ulaw").read_bytes())  # 二零二六幺幺幺五零零零幺
    workers = SpeechWorkers(1)
    try:
        recognition = Recognition(whisper_zh, workers, digits=True)
        await recognition.feed(samples)
        heard = await recognition.finish()
    finally:
        workers.close()
    digits = normalise_digits(heard.text, "zh")
    assert len(digits) >= 8 and digits.startswith("2026"), heard.text  # whisper base drops repeated digits …
    assert closest(digits, ORDERS) == "202611150001", heard.text  # … the caller's own order is near enough


def test_prompt_records_keep_what_number_they_ask_for() -> None:
    call = new_call()
    call.prompt = Prompt("x", "zh", then=Next.LISTEN, number="phone", readback="138")
    assert Call.from_record(call.record()).prompt == call.prompt
