"""``run.py ivr transcribe``: one JSON line per file, errors on stderr, exit 1 when a file failed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import clean_env, run_cli
from tests.test_ivr_recognizers import AUDIO, KOREAN_MODEL


async def test_transcribe_prints_one_json_line_per_file_and_reports_unreadable_ones(tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    files = [AUDIO / "zhT_w_agent.8k.ulaw.wav", broken, AUDIO / "zhT_order.16k.wav", tmp_path / "missing.wav"]
    code, out, err = await run_cli("ivr", "transcribe", *map(str, files), "--json", "--engine", "whisper")
    assert code == 1, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["file"] for line in lines] == [str(files[0]), str(files[2])]
    assert all(set(line) == {"file", "text", "engine", "rtf"} for line in lines)
    assert lines[0]["text"] == "转人工" and lines[1]["text"] == "查一下我的订单"
    assert all(line["engine"] == "whisper" and 0 < line["rtf"] < 20 for line in lines)
    assert f"error: {broken}:" in err and f"error: {files[3]}: No such file or directory" in err


async def test_transcribe_with_vosk_in_grammar_mode_and_a_clear_error_without_a_model() -> None:
    code, out, err = await run_cli(
        "ivr",
        "transcribe",
        str(AUDIO / "ko_agent.8k.ulaw"),
        "--json",
        "--language",
        "ko",
        "--model",
        str(KOREAN_MODEL),
        "--phrases",
        "상담원 연결,주문 조회,환불해 주세요",
    )
    assert code == 0, err
    assert json.loads(out) == {
        "file": str(AUDIO / "ko_agent.8k.ulaw"),
        "text": "상담원 연결",
        "engine": "vosk",
        "rtf": json.loads(out)["rtf"],
    }
    env = {k: v for k, v in clean_env().items() if not k.startswith(("VOSK_MODEL", "IVR_ENGINE"))}
    env["IVR_ENGINE_ZH"] = "vosk"  # asked for, with no model configured
    code, out, err = await run_cli("ivr", "transcribe", str(AUDIO / "zhT_w_agent.8k.ulaw"), "--json", env=env)
    assert code == 2 and out == "" and "VOSK_MODEL_ZH" in err


async def test_transcribe_with_no_variable_set_uses_whisper_on_the_shipped_mandarin_clips() -> None:
    """What a fresh `make setup` does: no IVR_ENGINE_*, no VOSK_MODEL_* (none can be had here)."""
    env = {k: v for k, v in clean_env().items() if not k.startswith(("VOSK_MODEL", "IVR_", "TWILIO_"))}
    files = [AUDIO / "zhT_w_agent.8k.ulaw.wav", AUDIO / "zhT_w_order.8k.ulaw"]
    code, out, err = await run_cli("ivr", "transcribe", *map(str, files), "--json", env=env)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["engine"], line["text"]) for line in lines] == [("whisper", "转人工"), ("whisper", "查订单")]
