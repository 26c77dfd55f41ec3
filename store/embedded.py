"""Start the embedded MongoDB-protocol server (nx-27017) when no ``MONGODB_URI`` is set.

The server keeps one SQLite file per database under ``var/mongo`` so data survives a restart, listens on a free
loopback port, and is stopped with the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

from pymongo import AsyncMongoClient

log = logging.getLogger(__name__)


class EmbeddedMongoError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_binary() -> str:
    candidate = Path(sys.executable).parent / "nx-27017"
    if candidate.exists():
        return str(candidate)
    raise EmbeddedMongoError(f"nx-27017 is not installed beside {sys.executable}; run `make setup`")


class EmbeddedMongo:
    """One nx-27017 child process with its database file in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.port = port or _free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"


    async def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.data_dir / "nx-27017.log"
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
            str(log_file),
            "--pid-file",
            str(pid_file),
        ]
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(self.uri, serverSelectionTimeoutMS=300)
        started = time.monotonic()
        try:
            while time.monotonic() - started < timeout:
                if self._process.returncode is not None:
                    raise EmbeddedMongoError(f"nx-27017 exited with {self._process.returncode}; see {log_file}")
                try:
                    await client.admin.command("ping")
                    log.info("embedded MongoDB (nx-27017) on %s, data in %s", self.uri, self.data_dir)
                    return
                except Exception:  # not listening yet
                    await asyncio.sleep(0.1)
        finally:
            await client.close()
        await self.stop()
        raise EmbeddedMongoError(f"nx-27017 did not answer within {timeout:.0f} s; see {log_file}")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
