"""``run.py cluster``: several gateway processes on one machine, the way production runs them.

Starts the store (``MONGODB_URI`` or an embedded nx-27017 under the var dir), the Rasa servers
(``RASA_URL`` or ``--rasa-servers`` embedded ones sharing one token), ``--gateways`` real
``run.py serve`` processes on their own loopback ports (plus ``--voice-gateways`` that alone
answer the phone line), all on that one store and those Rasa servers, and a private nginx
(:mod:`supervisor.nginx`) on the public port with the site rendered from the same template as
``deploy/nginx/aftersales.conf`` (:mod:`gateway.nginx_site`). The gateways trust that nginx's
``X-Forwarded-For``. Each gateway and nginx are supervised: one that exits is started again; a
gateway whose ``/health`` fails is kept out of nginx's rotation until it answers again
(:mod:`supervisor.health`). Stops everything on SIGINT or SIGTERM. Must not know what the
gateways do inside.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import aiohttp

from gateway.nginx_site import cluster_site, render
from gateway.settings import Settings
from nlu import NluProject
from nlu.server import EmbeddedRasaServer
from store.embedded import EmbeddedMongo
from supervisor import ChildProcess, ChildStartError, free_port
from supervisor.health import HealthWatch
from supervisor.nginx import Nginx

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
GATEWAY_START_SECONDS = 120.0


class GatewayProcess:
    """One ``run.py serve`` process: the cluster's gateways, and the tests' and benchmarks' too."""

    def __init__(self, index: int, port: int, env: Mapping[str, str], args: list[str], log: Path) -> None:
        self.index, self.port, self.env, self.args, self.log = index, port, dict(env), args, log
        self.child = ChildProcess(f"gateway {index}", log)
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def healthy(self) -> bool:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
                http.get(f"{self.url}/health") as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def start(self, timeout: float = GATEWAY_START_SECONDS) -> None:
        """Start it and wait until ``/health`` answers 200 (:class:`ChildStartError` if it exits first)."""
        command = [sys.executable, str(REPO_ROOT / "run.py"), "serve", "--port", str(self.port), *self.args]
        await self.child.start(command, ready=self.healthy, timeout=timeout, cwd=REPO_ROOT, env=self.env)

    def running(self) -> bool:
        return self.child.running()

    async def kill(self) -> None:
        await self.child.kill()

    async def stop(self) -> None:
        await self.child.stop()

    async def supervise(self) -> None:
        """Start it again whenever it has exited (a crash, an OOM kill)."""
        while True:
            await asyncio.sleep(1.0)
            if self.running():
                continue
            self.restarts += 1
            log.warning("gateway %d exited; starting it again (restart %d)", self.index, self.restarts)
            try:
                await self.start()
            except ChildStartError as exc:
                log.error("gateway %d did not come back: %s", self.index, exc)


LOOPBACK = ("127.0.0.1/32", "::1/128")
"""Where the cluster's nginx connects to the gateways from: trusted to name the client."""


def gateway_env(base: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The gateways believe the cluster's nginx (on loopback) about the client's address."""
    trusted = list(dict.fromkeys([*settings.limits.trusted_proxies, *LOOPBACK]))
    return {**base, "RATE_LIMIT_TRUSTED_PROXIES": ",".join(trusted)}


async def run_cluster(
    settings: Settings,
    *,
    gateways: int,
    rasa_servers: int,
    host: str,
    port: int,
    serve_args: list[str],
    voice_gateways: int = 0,
) -> int:
    var_dir = settings.var_dir
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    mongo: EmbeddedMongo | None = None
    rasa: list[EmbeddedRasaServer] = []
    children: list[GatewayProcess] = []
    supervisors: list[asyncio.Task[None]] = []
    nginx: Nginx | None = None
    watch: HealthWatch | None = None
    try:
        uri = settings.store.mongodb_uri
        if uri is None:
            mongo = EmbeddedMongo(var_dir / "mongo")
            await mongo.start()
            uri = mongo.uri
        rasa_urls, token = list(settings.nlu.rasa_urls), settings.nlu.rasa_token
        if not rasa_urls:
            project = NluProject(models_dir=settings.nlu.models_dir, var_dir=var_dir)
            model = await asyncio.to_thread(project.train)
            token = secrets.token_urlsafe(24)
            rasa = [EmbeddedRasaServer(project, model, token=token, name=f"rasa-{i + 1}") for i in range(rasa_servers)]
            print(f"starting {rasa_servers} Rasa server(s)…", file=sys.stderr, flush=True)
            await asyncio.gather(*(server.start() for server in rasa))
            rasa_urls = [server.url for server in rasa]
        base_env = gateway_env(
            {
                **os.environ,
                "MONGODB_URI": uri,
                "MONGODB_DATABASE": settings.store.database,
                "RASA_URL": ",".join(rasa_urls),
                "RASA_TOKEN": token or "",
            },
            settings,
        )
        email = settings.channel("email")
        smtp = email.smtp_listen if email.listen else None
        for index in range(gateways + voice_gateways):
            # One var dir (demo credentials, the media store) for all; each its own log.
            env = {**base_env, "GATEWAY_VAR_DIR": str(var_dir)}
            if index < gateways and voice_gateways:  # the phone line only on the speech gateways
                env.pop("TWILIO_VOICE_NUMBER", None)
            if email.enabled and smtp:  # each process listens for mail on its own port
                smtp_host, _, smtp_port = smtp.rpartition(":")
                env["EMAIL_SMTP_LISTEN"] = f"{smtp_host}:{int(smtp_port) + index}"
            # Demo staff and conversations once, by the first process; the others share its store.
            args = serve_args if index == 0 else [a for a in serve_args if a not in ("--demo-quality", "--demo-staff")]
            name = f"gateway-{index + 1}" if index < gateways else f"voice-{index + 1 - gateways}"
            children.append(GatewayProcess(index + 1, free_port(), env, args, var_dir / "log" / f"{name}.log"))
        print(f"starting {len(children)} gateway process(es)…", file=sys.stderr, flush=True)
        await children[0].start()  # the first one seeds orders and staff before the others start
        await asyncio.gather(*(child.start() for child in children[1:]))
        supervisors = [asyncio.create_task(child.supervise()) for child in children]
        web_ports = [c.port for c in children[:gateways]]
        voice_ports = [c.port for c in children[gateways:]]

        def site(down: Iterable[int] = ()) -> str:
            return render(
                cluster_site(settings, host=host, port=port, gateways=web_ports, voice=voice_ports, down=down)
            )

        nginx = Nginx(var_dir / "nginx")
        await nginx.start(site(), host=host, port=port)
        by_name = {f"gateway {c.index} ({c.url})": c for c in children}
        proxy = nginx

        async def keep_out(names: frozenset[str]) -> None:
            await proxy.reload(site(by_name[name].port for name in names))

        health = HealthWatch({name: f"{c.url}/health" for name, c in by_name.items()}, keep_out)
        watch = health
        watch.start()

        def current_site() -> str:  # what the health checks keep out now
            return site(by_name[name].port for name in health.out)

        supervisors.append(asyncio.create_task(_keep_running(nginx, current_site, host, port)))
        store_text = uri if settings.store.mongodb_uri else f"embedded nx-27017, data in {var_dir / 'mongo'}"
        credentials = var_dir / "demo-staff.json"
        print(
            f"Cluster listening on http://{host}:{port} (nginx {nginx.prefix}: round robin, health checks, limits)\n"
            + "".join(f"  gateway {c.index}     {c.url}  logs {c.log}\n" for c in children[:gateways])
            + "".join(f"  speech gw {c.index}   {c.url}  logs {c.log}\n" for c in children[gateways:])
            + f"  NLU           {', '.join(rasa_urls)}\n"
            + (f"  demo staff    {credentials} (console passwords and API tokens)\n" if credentials.exists() else "")
            + f"  store         {store_text}",
            flush=True,
        )
        await stop.wait()
        print("shutting down the cluster", file=sys.stderr, flush=True)
    finally:
        for task in supervisors:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if watch is not None:
            await watch.stop()
        if nginx is not None:
            await nginx.stop()
        await asyncio.gather(*(child.stop() for child in children), return_exceptions=True)
        await asyncio.gather(*(server.stop() for server in rasa), return_exceptions=True)
        if mongo is not None:
            await mongo.stop()
    return 0


async def _keep_running(nginx: Nginx, site: Callable[[], str], host: str, port: int) -> None:
    """Start nginx again if it exits (a crash, an OOM kill), with the site as the health checks left it."""
    while True:
        await asyncio.sleep(1.0)
        if nginx.running():
            continue
        log.warning("nginx exited; starting it again (see %s)", nginx.error_log)
        try:
            await nginx.start(site(), host=host, port=port)
        except ChildStartError as exc:
            log.error("nginx did not come back: %s", exc)
