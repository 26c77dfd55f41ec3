"""Debian's dovecot as a private IMAP server on loopback, for the e-mail channel's tests.

A config of its own in a temporary directory (no system config, no root-owned paths): one user
from a passwd-file, Maildir storage owned by ``nobody``, plaintext login allowed (loopback only).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from supervisor import free_port

DOVECOT = "/usr/sbin/dovecot"
USER = "service@shop.example"
PASSWORD = "imap-test-password"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
mail_location = maildir:{root}/mail/%n
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


class Dovecot:
    def __init__(self) -> None:
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are closed to the unprivileged mail user.
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.config = self.root / "dovecot.conf"

    def _write_config(self) -> None:
        nobody = pwd.getpwnam("nobody")
        os.chmod(self.root, 0o755)
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir()
        os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        self.config.write_text(CONFIG.format(root=self.root, port=self.port, uid=nobody.pw_uid, gid=nobody.pw_gid))

    async def start(self) -> None:
        if not await asyncio.to_thread(Path(DOVECOT).exists):
            raise RuntimeError(f"{DOVECOT} is missing: run `make setup` (it installs dovecot-imapd)")
        await asyncio.to_thread(self._write_config)
        await asyncio.to_thread(subprocess.run, [DOVECOT, "-c", str(self.config)], check=True)
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen: {(self.root / 'dovecot.log').read_text()[-2000:]}")

    async def stop(self) -> None:
        await asyncio.to_thread(subprocess.run, [DOVECOT, "-c", str(self.config), "stop"], check=False)
        await asyncio.to_thread(shutil.rmtree, self.root, True)
