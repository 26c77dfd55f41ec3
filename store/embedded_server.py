"""The embedded store's server process: nx-27017's MongoDB wire-protocol handler, served on a Unix
socket only its owner can open.

nx-27017 has no authentication: on a TCP port, any local user could read and change every
conversation. A socket file with mode 0600 in a directory with mode 0700 lets in the gateway's own
user only (every gateway process of the cluster runs as it); the database files are created 0600.

    python -m store.embedded_server --data-dir var/mongo --socket var/mongo/nx-27017.sock --log-file …
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from nx_27017.handler import NeoSQLiteHandler
from nx_27017.server import handle_client

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private(data_dir: Path) -> None:
    """The directory and every file in it: the owner's only (files an older version left 0644 too)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(PRIVATE_DIR)
    for path in data_dir.iterdir():
        if path.is_file():
            path.chmod(PRIVATE_FILE)


async def serve(handler: NeoSQLiteHandler, socket_path: Path) -> None:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_client(reader, writer, handler)

    await asyncio.to_thread(socket_path.unlink, missing_ok=True)
    server = await asyncio.start_unix_server(client, path=str(socket_path))
    await asyncio.to_thread(socket_path.chmod, PRIVATE_FILE)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        logging.getLogger(__name__).info("listening on %s", socket_path)
        await stop.wait()
    await asyncio.to_thread(socket_path.unlink, missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the embedded store's server (nx-27017 on a private Unix socket)")
    parser.add_argument("--data-dir", type=Path, required=True, help="one SQLite file per database")
    parser.add_argument("--socket", type=Path, required=True, help="the Unix socket to listen on")
    parser.add_argument("--log-file", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args(argv)
    os.umask(0o077)  # every file the server creates (databases, WAL, logs) is the owner's only
    make_private(args.data_dir)
    logging.basicConfig(
        filename=args.log_file, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if args.pid_file is not None:
        args.pid_file.write_text(str(os.getpid()))
    handler = NeoSQLiteHandler(":memory:", journal_mode="WAL", data_dir=str(args.data_dir))
    try:
        asyncio.run(serve(handler, args.socket))
    finally:
        if args.pid_file is not None:
            args.pid_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
