"""A private nginx (Debian's package) run as a supervised child: no root, nothing under /etc.

Owns one prefix directory: the process-level ``nginx.conf`` written here (pid, error log,
access log and temp paths under the prefix, ``daemon off`` so the master is our child), the
site file the caller renders (``http``-level: upstreams, servers), checking a config with
``nginx -t`` before using it, reloading a new site with SIGHUP (in-flight requests and open
websockets finish on the old workers) and stopping it. Runs as the user who starts it; when
that is root, the workers run as the owner of the prefix directory (so they can use it)
instead of the package's ``www-data``. Must not know what the site proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import shutil
import signal
from pathlib import Path

from supervisor.child import ChildProcess, ChildStartError

TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class NginxUnavailable(ChildStartError):
    """No nginx binary, or a config it refuses."""

    code = "nginx_unavailable"


def nginx_binary() -> str:
    """Debian installs it as /usr/sbin/nginx, which an ordinary user's PATH may lack."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        raise NginxUnavailable("nginx is not installed: run `make setup` (apt-get install nginx)")
    return found


class Nginx:
    """One nginx master and its workers, everything under ``prefix``."""

    def __init__(self, prefix: Path, *, worker_processes: int = 1, worker_connections: int = 4096) -> None:
        self.prefix = prefix.resolve()
        self.worker_processes = worker_processes
        self.worker_connections = worker_connections
        self.child = ChildProcess("nginx", self.prefix / "nginx.out")
        self.reloads = 0

    @property
    def config_path(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def site_path(self) -> Path:
        return self.prefix / "site.conf"

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def main_config(self) -> str:
        """The process-level config: everything a packaged nginx keeps under /etc and /var, here."""
        temp = "".join(f"    {kind}_temp_path {self.prefix / 'tmp' / kind};\n" for kind in TEMP_PATHS)
        user = ""
        if os.geteuid() == 0:  # the master keeps root; workers as the prefix's owner, not www-data
            owner = self.prefix.stat()
            user = f"user {pwd.getpwuid(owner.st_uid).pw_name} {grp.getgrgid(owner.st_gid).gr_name};\n"
        return (
            "# Written by supervisor/nginx.py: a private nginx, everything under this directory.\n"
            f"{user}"
            f"worker_processes {self.worker_processes};\n"
            f"worker_rlimit_nofile {self.worker_connections * 2 + 64};\n"
            f"pid {self.prefix / 'nginx.pid'};\n"
            f"error_log {self.error_log} warn;\n"
            f"events {{\n    worker_connections {self.worker_connections};\n}}\n"
            "http {\n"
            '    log_format proxied \'$remote_addr [$time_local] "$request" $status $body_bytes_sent '
            "$request_time upstream=$upstream_addr $upstream_status';\n"
            f"    access_log {self.access_log} proxied buffer=64k flush=1s;\n"
            f"{temp}"
            "    default_type application/octet-stream;\n"
            "    server_tokens off;\n"
            f"    include {self.site_path};\n"
            "}\n"
        )

    def _command(self, *extra: str) -> list[str]:
        return [nginx_binary(), "-p", str(self.prefix), "-c", str(self.config_path), "-e", str(self.error_log), *extra]

    async def check(self) -> None:
        """``nginx -t`` on the files as they are; :class:`NginxUnavailable` with its complaint."""
        process = await asyncio.create_subprocess_exec(
            *self._command("-t", "-q"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise NginxUnavailable(f"nginx refuses the config in {self.prefix}:\n{out.decode(errors='replace')}")

    def write(self, site: str) -> None:
        """Write both configs (and make the temp directories); :meth:`check` them before use."""
        self.prefix.mkdir(parents=True, exist_ok=True)
        for kind in TEMP_PATHS:
            (self.prefix / "tmp" / kind).mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.main_config(), encoding="utf-8")
        self.site_path.write_text(site, encoding="utf-8")

    async def start(self, site: str, *, host: str, port: int, timeout: float = 15.0) -> None:
        """Write the configs, check them, start the master and wait until ``host:port`` accepts."""
        self.write(site)
        await self.check()

        async def listening() -> bool:
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                return False
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True

        await self.child.start(self._command("-g", "daemon off;"), ready=listening, timeout=timeout)

    async def reload(self, site: str) -> None:
        """Use a new site: checked first (a refused one leaves the running config alone and raises)."""
        previous = self.site_path.read_text(encoding="utf-8") if self.site_path.exists() else ""
        self.write(site)
        try:
            await self.check()
        except NginxUnavailable:
            self.site_path.write_text(previous, encoding="utf-8")
            raise
        workers = self.workers()
        if self.child.signal(signal.SIGHUP):
            await self._reloaded(workers)
            self.reloads += 1

    def workers(self) -> dict[int, str]:
        """The master's children (pid → process title) from /proc."""
        master = self.pid
        found: dict[int, str] = {}
        if master is None:
            return found
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == master:
                    found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except (OSError, ValueError, IndexError):
                continue
        return found

    async def _reloaded(self, before: dict[int, str], timeout: float = 10.0) -> None:
        """Wait until new workers run and the old ones no longer take connections (they finish
        what they hold, open websockets included, as "worker process is shutting down")."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            now = self.workers()
            new = set(now) - set(before)
            old_serving = [pid for pid in set(now) & set(before) if "shutting down" not in now[pid]]
            if new and not old_serving:
                return
            await asyncio.sleep(0.02)
        raise NginxUnavailable(f"nginx did not reload in {timeout:.0f} s; see {self.error_log}")

    def running(self) -> bool:
        return self.child.running()

    @property
    def pid(self) -> int | None:
        return self.child.pid

    async def stop(self) -> None:
        """SIGTERM to the group: nginx's fast shutdown (open connections are closed)."""
        await self.child.stop(grace_seconds=10)
