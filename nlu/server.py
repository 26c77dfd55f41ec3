"""Run ``rasa run --enable-api`` from ``.venv-rasa`` as a supervised child process."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from pathlib import Path

from nlu.client import RasaNluClient
from nlu.project import NluProject, rasa_environment

log = logging.getLogger(__name__)


class RasaServerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedRasaServer:
    """A loopback Rasa server with an auth token, for when ``RASA_URL`` is not set."""

    def __init__(self, project: NluProject, model: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.project = project
        self.model = model
        self.host = host
        self.port = port or free_port(host)
        self.token = secrets.token_urlsafe(24)
        self.log_path = project.var_dir / "log" / "rasa.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, timeout: float = 180.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.project.rasa_bin),
            "run",
            "--enable-api",
            "--model",
            str(self.model),
            "--interface",
            self.host,
            "--port",
            str(self.port),
            "--auth-token",
            self.token,
            "--log-file",
            str(self.log_path),
        ]
        log.info("starting Rasa server on %s", self.url)
        with self.log_path.open("ab") as sink:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.project.var_dir,
                env=rasa_environment(self.project.var_dir),
                stdout=sink,
                stderr=sink,
                start_new_session=True,  # its own process group, so stop() reaches every child
            )
        client = RasaNluClient(self.url, self.token)
        started = time.monotonic()
        try:
            while time.monotonic() - started < timeout:
                if self._process.returncode is not None:
                    raise RasaServerError(
                        f"Rasa server exited with {self._process.returncode}; see {self.log_path}"
                    )
                if await client.ready():
                    log.info("Rasa server ready in %.1f s", time.monotonic() - started)
                    return
                await asyncio.sleep(0.5)
        finally:
            await client.close()
        await self.stop()
        raise RasaServerError(f"Rasa server not ready after {timeout:.0f} s; see {self.log_path}")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
