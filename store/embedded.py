"""Start the embedded MongoDB-protocol server (nx-27017) when no ``MONGODB_URI`` is set.

The server keeps one SQLite file per database under ``var/mongo`` so data survives a restart,
and is stopped with the gateway. nx-27017 has no passwords, so it listens on a Unix socket in
that directory, not on a port: socket and files are the gateway user's only (0600 in a 0700
directory; :mod:`store.embedded_server`), and no other local user can connect or read the files.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from supervisor import ChildProcess, ChildStartError

log = logging.getLogger(__name__)


class EmbeddedMongoError(ChildStartError):
    """The embedded MongoDB server did not start."""

    code = "embedded_mongo_failed"


def _check_installed() -> None:
    if not (Path(sys.executable).parent / "nx-27017").exists():
        raise EmbeddedMongoError(f"nx-27017 is not installed beside {sys.executable}; run `make setup`")


SOCKET_NAME = "nx-27017.sock"
REPO_ROOT = Path(__file__).resolve().parent.parent


class EmbeddedMongo:
    """One nx-27017 child process with its databases in ``data_dir``, on a private Unix socket."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket = data_dir.resolve() / SOCKET_NAME
        self._child = ChildProcess("nx-27017", data_dir / "nx-27017.log")

    @property
    def uri(self) -> str:
        return f"mongodb://{quote(str(self.socket), safe='')}/?directConnection=true"

    async def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / "nx-27017.pid"
        pid_file.unlink(missing_ok=True)
        _check_installed()
        command = [
            sys.executable,
            "-m",
            "store.embedded_server",
            "--data-dir",  # one SQLite file per database, so databases are isolated
            str(self.data_dir),
            "--socket",
            str(self.socket),
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
            await self._child.start(command, ready=answers, timeout=timeout, cwd=REPO_ROOT)
        finally:
            await client.close()
        log.info("embedded MongoDB (nx-27017) on %s, data in %s", self.uri, self.data_dir)

    async def stop(self) -> None:
        await self._child.stop(grace_seconds=10)
