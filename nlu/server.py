"""Run ``rasa run --enable-api`` from ``.venv-rasa`` as a supervised child process."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from nlu.client import RasaNluClient
from nlu.project import NluProject, rasa_environment
from supervisor import ChildProcess, free_port

log = logging.getLogger(__name__)
LAUNCHER = Path(__file__).resolve().parent / "rasa_launch.py"
TOKEN_VARIABLE = "RASA_TOKEN"
"""Read by :mod:`nlu.rasa_launch` (which cannot import this module: it runs under Rasa's interpreter)."""


class EmbeddedRasaServer:
    """A loopback Rasa server with an auth token, for when ``RASA_URL`` is not set."""

    def __init__(
        self,
        project: NluProject,
        model: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        name: str = "rasa",
    ) -> None:
        self.project = project
        self.model = model
        self.host = host
        self.port = port or free_port(host)
        self.token = token or secrets.token_urlsafe(24)
        self._child = ChildProcess("Rasa server", project.var_dir / "log" / f"{name}.log")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, timeout: float = 180.0) -> None:
        command = [
            str(self.project.rasa_venv / "bin" / "python"),
            str(LAUNCHER),  # the token goes in its environment, not on the command line
            "run",
            "--enable-api",
            "--model",
            str(self.model),
            "--interface",
            self.host,
            "--port",
            str(self.port),
            "--log-file",
            str(self._child.log_path),
        ]
        log.info("starting Rasa server on %s with %s", self.url, self.model.name)
        client = RasaNluClient(self.url, self.token)
        try:
            await self._child.start(
                command,
                ready=client.ready,
                timeout=timeout,
                cwd=self.project.var_dir,
                env={**rasa_environment(self.project.var_dir), TOKEN_VARIABLE: self.token},
            )
        finally:
            await client.close()

    async def stop(self) -> None:
        await self._child.stop()
