"""The nginx site in front of the gateways, from one template, rendered two ways: production
(``deploy/nginx/aftersales.conf``, ``run.py config nginx``) and ``run.py cluster``'s private
nginx on loopback (with the servers the cluster's health checks keep out marked ``down``).

Owns the values that differ between the two (where nginx listens, the upstream servers, the
per-address limit and body size from the settings); the template
(``deploy/nginx/aftersales.conf.template``) owns the routes: which paths are websockets, which
go to the speech gateways, which are limited per address. Must not know how nginx is run
(:mod:`supervisor.nginx`).

The template's placeholders are ``{{name}}``: one alone on a line takes a list of lines (each
indented as the placeholder; an empty list removes the line), inline ones a string.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import textpatterns
from errors import UserError
from gateway.settings import RateLimitSettings, Settings
from media_ocr.pipeline import MAX_IMAGE_BYTES

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "aftersales.conf.template"
PRODUCTION = TEMPLATE.with_name("aftersales.conf")
MULTIPART_ALLOWANCE = 1024 * 1024
"""Form fields and boundaries around the largest upload."""
_PLACEHOLDER = textpatterns.compile(r"\{\{(\w+)\}\}")


class TemplateError(UserError):
    """A template and its values that do not fit together."""

    code = "invalid_template"


@dataclass(frozen=True)
class Upstream:
    """``host:port`` servers of one upstream; those in ``down`` stay listed but get no requests,
    unless that is all of them (each one is at least as good as none, and nginx's passive checks
    still skip those that refuse connections)."""

    servers: Sequence[str]
    down: frozenset[str] = field(default_factory=frozenset)
    max_fails: int = 1
    fail_timeout_seconds: int = 5

    def lines(self) -> list[str]:
        if not self.servers:
            raise TemplateError("an upstream needs at least one server")
        options = f"max_fails={self.max_fails} fail_timeout={self.fail_timeout_seconds}s"
        down = frozenset() if self.down.issuperset(self.servers) else self.down
        return [f"server {s} {options}{' down' if s in down else ''};" for s in self.servers]


@dataclass(frozen=True)
class Site:
    rendering: str
    """What this rendering is for (its first comment line)."""
    listen: Sequence[str]
    """Server-level lines: listen, server_name, TLS."""
    gateways: Upstream
    voice: Upstream
    limits: RateLimitSettings
    body_limit_bytes: int

    def values(self) -> dict[str, str | list[str]]:
        per_ip = not self.limits.ip_per_minute <= 0
        return {
            "rendering": self.rendering,
            "listen": list(self.listen),
            "gateway_servers": self.gateways.lines(),
            "voice_servers": self.voice.lines(),
            "ip_exempt": [f"{network} 0;" for network in self.limits.ip_exempt if network.strip()],
            "ip_limit_zone": (
                [
                    "limit_req_zone $aftersales_ip_key zone=aftersales_per_ip:20m "
                    f"rate={max(1, round(self.limits.ip_per_minute))}r/m;"
                ]
                if per_ip
                else []
            ),
            "ip_limit": [f"limit_req zone=aftersales_per_ip burst={self.limits.ip_burst} nodelay;"] if per_ip else [],
            "retry_after": str(max(1, math.ceil(60 / self.limits.ip_per_minute))) if per_ip else "1",
            "body_limit": _size(self.body_limit_bytes),
        }


def _size(n: int) -> str:
    """Bytes in nginx's units, rounded up."""
    return f"{n // 2**20}m" if n % 2**20 == 0 else f"{math.ceil(n / 1024)}k"


def body_limit(settings: Settings) -> int:
    """The largest body any gateway route takes: a media upload or a photo to read, plus the form around it."""
    return max(settings.media.max_bytes, MAX_IMAGE_BYTES) + MULTIPART_ALLOWANCE


def render(site: Site, template: str | None = None) -> str:
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    return fill(text, site.values())


def fill(template: str, values: Mapping[str, str | list[str]]) -> str:
    """Replace every ``{{name}}``; a name without a value, or a value no placeholder uses, is an error."""
    used: set[str] = set()
    out: list[str] = []
    for line in template.splitlines():
        alone = _PLACEHOLDER.fullmatch(line.strip())
        if alone is not None:
            name = alone.group(1)
            value = _value(values, name)
            used.add(name)
            if isinstance(value, str):
                value = [value]
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(f"{indent}{item}" for item in value)
            continue

        def inline(match: textpatterns.Match[str]) -> str:
            value = _value(values, match.group(1))
            used.add(match.group(1))
            if not isinstance(value, str):
                raise TemplateError(f"{{{{{match.group(1)}}}}} takes lines: put it alone on its line")
            return value

        out.append(_PLACEHOLDER.sub(inline, line))
    if unused := set(values) - used:
        raise TemplateError(f"values the template does not use: {sorted(unused)}")
    return "\n".join(out) + "\n"


def _value(values: Mapping[str, str | list[str]], name: str) -> str | list[str]:
    if name not in values:
        raise TemplateError(f"the template asks for {{{{{name}}}}}, which has no value")
    return values[name]


def production_site(settings: Settings | None = None) -> Site:
    """The deployment in ``deploy/``: TLS on 443, gateways on 8081–8082, speech gateways on
    8090–8091 (``deploy/systemd``), limits and body size from the settings' defaults."""
    settings = settings or Settings()
    return Site(
        rendering="production; replace the host name and certificate paths",
        listen=[
            "listen 443 ssl http2;",
            "server_name cs.example.com;",
            "ssl_certificate     /etc/ssl/aftersales/fullchain.pem;",
            "ssl_certificate_key /etc/ssl/aftersales/privkey.pem;",
        ],
        gateways=Upstream(["127.0.0.1:8081", "127.0.0.1:8082"], max_fails=2),
        voice=Upstream(["127.0.0.1:8090", "127.0.0.1:8091"], max_fails=2),
        limits=settings.limits,
        body_limit_bytes=body_limit(settings),
    )


def cluster_site(
    settings: Settings,
    *,
    host: str,
    port: int,
    gateways: Iterable[int],
    voice: Iterable[int] = (),
    down: Iterable[int] = (),
) -> Site:
    """``run.py cluster``'s: plain HTTP on ``host:port``, its gateway processes' loopback ports
    (the speech upstream is the speech gateways if it has any, else the same gateways)."""
    servers = [f"127.0.0.1:{p}" for p in gateways]
    voice_servers = [f"127.0.0.1:{p}" for p in voice] or servers
    out = frozenset(f"127.0.0.1:{p}" for p in down)
    return Site(
        rendering=f"run.py cluster, {len(servers)} gateway process(es) on loopback",
        listen=[f"listen {host}:{port};"],
        gateways=Upstream(servers, out),
        voice=Upstream(voice_servers, out),
        limits=settings.limits,
        body_limit_bytes=body_limit(settings),
    )
