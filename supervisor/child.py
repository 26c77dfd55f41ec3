"""One supervised child process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from errors import OperationalError

log = logging.getLogger(__name__)


class ChildStartError(OperationalError, RuntimeError):
    """A child process did not start, or did not become ready."""

    code = "child_start_failed"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ChildProcess:
    """A server started in its own process group, so stopping it reaches every child it forked."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None

    async def start(
        self,
        command: Sequence[str],
        *,
        ready: Callable[[], Awaitable[bool]],
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> float:
        """Start ``command`` and poll ``ready`` until it is true; returns the seconds it took."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as sink:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self._process.returncode is not None:
                code = self._process.returncode
                self._process = None
                tail = self.log_path.read_text(errors="replace")[-1500:] if self.log_path.exists() else ""
                raise ChildStartError(f"{self.name} exited with {code}; see {self.log_path}\n{tail}")
            if await ready():
                elapsed = time.monotonic() - started
                log.info("%s ready in %.1f s", self.name, elapsed)
                return elapsed
            await asyncio.sleep(0.1 if time.monotonic() - started < 2 else 0.5)
        await self.stop()
        raise ChildStartError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running() and self._process is not None else None

    def signal(self, signum: int) -> bool:
        """Send ``signum`` to the process itself (not its group), e.g. SIGHUP to reload; False if it is not running."""
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return False
        return True

    async def kill(self) -> None:
        """SIGKILL to the process group: no clean-up, no flush (a crash, for fault tests)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

    async def stop(self, grace_seconds: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), grace_seconds)
        except TimeoutError:
            log.warning("%s did not stop in %.0f s; killing it", self.name, grace_seconds)
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
