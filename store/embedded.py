"""Start the embedded MongoDB-protocol server (nx-27017) when no ``MONGODB_URI`` is set.

The server keeps one SQLite file per database under ``var/mongo`` so data survives a restart,
listens on a free loopback port, and is stopped with the gateway.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from supervisor import ChildProcess, ChildStartError, free_port

log = logging.getLogger(__name__)


class EmbeddedMongoError(ChildStartError):
    pass


def _server_binary() -> str:
    candidate = Path(sys.executable).parent / "nx-27017"
    if candidate.exists():
        return str(candidate)
    raise EmbeddedMongoError(f"nx-27017 is not installed beside {sys.executable}; run `make setup`")


class EmbeddedMongo:
    """One nx-27017 child process with its databases in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self._child = ChildProcess("nx-27017", data_dir / "nx-27017.log")

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / "nx-27017.pid"
        pid_file.unlink(missing_ok=True)
        command = [
            _server_binary(),
            "--data-dir",  # one SQLite file per database, so databases are isolated
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-file",
            str(self._child.log_path),
            "--pid-file",
            str(pid_file),
        ]
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.uri, serverSelectionTimeoutMS=300)

        async def answers() -> bool:
            try:
                await client.admin.command("ping")
            except PyMongoError:
                return False
            return True

        try:
            await self._child.start(command, ready=answers, timeout=timeout)
        finally:
            await client.close()
        log.info("embedded MongoDB (nx-27017) on %s, data in %s", self.uri, self.data_dir)

    async def stop(self) -> None:
        await self._child.stop(grace_seconds=10)
