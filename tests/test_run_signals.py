"""Security (low): a `run.py` command stopped with SIGTERM (``timeout``, a supervisor) left the
Rasa server it had started running as an orphan."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def _rasa_children_of(var_dir: Path) -> list[int]:
    """Processes whose command line names this run's var dir and Rasa's launcher."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            environment = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "rasa_launch.py" in command and str(var_dir) in environment:
            found.append(int(entry.name))
    return found


async def test_sigterm_stops_the_servers_a_command_started(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_VAR_DIR": str(tmp_path / "var")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "run.py", "nlu", "parse", cwd=REPO_ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("你好\n".encode())
    await process.stdin.drain()
    answer = await asyncio.wait_for(process.stdout.readline(), 240)  # Rasa started and answered
    assert b'"greet"' in answer
    assert _rasa_children_of(tmp_path / "var"), "the command's Rasa server is running"
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), 60)
    assert code == 130
    for _ in range(50):  # its children stop within ten seconds
        if not _rasa_children_of(tmp_path / "var"):
            break
        await asyncio.sleep(0.2)
    assert _rasa_children_of(tmp_path / "var") == [], "no orphaned Rasa server"
