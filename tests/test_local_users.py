"""Security finding 9: other users on the same host. The embedded store took connections from
anyone on a loopback port with no password and its files were world-readable; Rasa's API token
was on its command line (``ps`` shows it to everyone)."""

from __future__ import annotations

import stat
from pathlib import Path

from nlu.server import EmbeddedRasaServer
from store.embedded import EmbeddedMongo


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_store_is_its_owners_only(mongo: EmbeddedMongo) -> None:
    assert mongo.uri.startswith("mongodb://%2F"), "a Unix socket, not a TCP port anyone on the host can open"
    assert stat.S_ISSOCK(mongo.socket.stat().st_mode) and _mode(mongo.socket) == 0o600
    assert _mode(mongo.data_dir) == 0o700
    files = [p for p in mongo.data_dir.iterdir() if p.is_file()]
    assert files and all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}


def test_rasas_token_is_not_on_its_command_line(rasa: EmbeddedRasaServer) -> None:
    process = rasa._child._process
    assert process is not None
    command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
    assert "--enable-api" in command_line and rasa.token not in command_line
