"""Odd query-string values never cost a 5xx, on every GET route the gateway serves.

The schemathesis run (tests/test_api_fuzz.py) covers the parameters /api/openapi.json documents;
this one also covers the pages and parameters it does not (``/console/routes?date=…``): the
parameter names are read from the handlers' own source, so a new ``request.query.get("x")``
is tried as soon as it is written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

import textpatterns
from backoffice.permissions import Role
from backoffice.settings import BackofficeSettings
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from media_ocr.pipeline import OcrWorkers
from nlu import OfflineNlu
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS

Client = TestClient[object, object]
ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("gateway", "channels", "console", "quality")
_QUERY_NAME = textpatterns.compile(r"query(?:\.get)?[(\[]\"([A-Za-z_]+)\"")
ODD_VALUES = (
    "", "-1", "0", "9" * 40, "1e999", "NaN", "nan", "inf", "[]", "{}", "null", "true", "../../etc/passwd",
    "2026-13-45", "2026-02-30", "0000-00-00", "\x00", "\u202e", "😀" * 5, "a" * 100, "$where", "%ff",
    "1;DROP", "<script>",
)  # fmt: skip
SKIPPED_PREFIXES = ("/webhooks/", "/console/assets/")
"""Channels' signed callbacks answer an unsigned GET with 4xx before any query is read (the
fuzz test signs them); assets take no query."""


def query_names() -> list[str]:
    names: set[str] = set()
    for package in HANDLERS:
        for path in (ROOT / package).rglob("*.py"):
            names.update(_QUERY_NAME.findall(path.read_text(encoding="utf-8")))
    return sorted(names)


@pytest_asyncio.fixture
async def signed_in(store: ConversationStore, tmp_path: Path) -> AsyncIterator[tuple[Client, list[str]]]:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"),
        backoffice=BackofficeSettings(admin_token="odd-queries-admin", sweep_seconds=0),
    )
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("test")).build()
    gateway.ocr_workers = OcrWorkers("combined", use_threads=True)
    app = build_app(gateway)
    async with TestClient(TestServer(app)) as client:
        await gateway.seed_orders(DEMO_ORDERS)
        assert gateway.backoffice is not None
        _, token = await gateway.backoffice.staff.create(
            "odd", name="Odd", roles=list(Role), skill_groups=["general"], online=True
        )
        client.session.headers["Authorization"] = f"Bearer {token}"
        paths = sorted(
            {
                info.get("path") or info.get("formatter", "")
                for route in app.router.routes()
                if route.method == "GET"
                for info in [route.resource.get_info() if route.resource is not None else {}]
            }
            - {""}
        )
        yield client, paths


async def test_no_get_route_fails_on_odd_query_values(signed_in: tuple[Client, list[str]]) -> None:
    client, paths = signed_in
    names = query_names()
    assert {"date", "limit", "lang", "status"} <= set(names)  # the source scan found the handlers' parameters
    failures: list[str] = []
    tried = 0
    for template in paths:
        if template.startswith(SKIPPED_PREFIXES) or template.endswith("/ws"):
            continue
        path = textpatterns.compile(r"\{[^}]+\}").sub("x", template)
        for value in ODD_VALUES:
            response = await client.get(path, params={name: value for name in names}, allow_redirects=False)
            tried += 1
            if response.status >= 500 and (path, response.status) != ("/health", 503):  # 503: the NLU is offline here
                failures.append(f"GET {path} with every parameter = {value[:30]!r}: {response.status}")
    assert tried > 100
    assert not failures, "\n".join(failures)


async def test_the_route_planning_page_carries_the_consoles_security_headers(
    signed_in: tuple[Client, list[str]],
) -> None:
    client, _ = signed_in
    for query in ({}, {"date": "2026-12-05"}):
        page = await client.get("/console/routes", params=query)
        assert page.status == 200, await page.text()
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
        assert "style=" not in await page.text()  # the policy allows no inline style
