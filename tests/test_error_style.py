"""One error style (issue 20, item 6): every HTTP error the gateway answers is
``{"error": {"code", "message", "details"}}`` with a stable snake_case code, rendered by one
middleware (``gateway.app.json_errors``) through one helper (``channels.base.error_response``);
and every exception class the project defines belongs to the one tree under
``errors.GatewayError``.

Routes are hit on an in-process gateway (the NLU offline: nothing here needs Rasa); the
middleware's own branches (a store outage, a body that cannot be parsed, an unexpected failure)
also on a bare app with only the middleware, where each failure can be raised exactly.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientResponse, web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.test_utils import TestClient, TestServer
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect, ConnectionFailure, DuplicateKeyError, ServerSelectionTimeoutError

import errors
from channels.base import error_response
from gateway import GatewayBuilder, Settings, build_app
from gateway.app import json_errors
from gateway.openapi import ERROR_SCHEMA
from nlu import OfflineNlu
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from tests.conftest import REPO_ROOT

Client = TestClient[object, object]
ADMIN_TOKEN = "error-style-admin-token"
AGENT_SERVICE_TOKEN = "error-style-agent-service-token"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AS_SERVICE = {"Authorization": f"Bearer {AGENT_SERVICE_TOKEN}"}
CODE = re.compile(r"^[a-z][a-z0-9_]*$")


async def error_of(response: ClientResponse, status: int, code: str) -> dict[str, Any]:
    """The error of a response that must be exactly the one shape, with this status and code."""
    text = await response.text()
    assert response.status == status, (response.status, text)
    assert response.content_type == "application/json", (response.content_type, text)
    body = json.loads(text)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    assert error["code"] == code and CODE.match(error["code"]), body
    assert isinstance(error["message"], str) and error["message"].strip(), body
    assert isinstance(error["details"], dict), body
    return error  # type: ignore[no-any-return]


@pytest_asyncio.fixture
async def http(settings: Settings, store: ConversationStore) -> AsyncIterator[Client]:
    settings = settings.with_changes(
        backoffice__admin_token=ADMIN_TOKEN, backoffice__agent_api_token=AGENT_SERVICE_TOKEN
    )
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("not needed")).build()
    async with TestClient(TestServer(build_app(gateway))) as client:
        yield client


# -- the routes -----------------------------------------------------------------------------


async def test_the_rest_channel_answers_bad_messages_in_the_one_shape(http: Client) -> None:
    webhook = "/webhooks/rest/webhook"
    headers = {"Content-Type": "application/json"}
    await error_of(await http.post(webhook, data=b"{not json", headers=headers), 400, "invalid_json")
    missing = await error_of(await http.post(webhook, json={"sender": "s1"}), 400, "missing_field")
    assert missing["details"] == {"field": "message"}
    long = await error_of(
        await http.post(webhook, json={"sender": "s1", "message": "订" * 5000}), 400, "message_too_long"
    )
    assert long["details"]["field"] == "message" and long["details"]["limit"] == 4000
    first = await http.post(webhook, json={"sender": "s2", "message": "你好"})
    assert first.status == 200
    again = await http.post(webhook, json={"sender": "s2", "message": "在吗"})
    await error_of(again, 403, "session_required")
    token = {"X-Customer-Token": "not.a.jwt"}
    await error_of(
        await http.post(webhook, json={"sender": "s3", "message": "你好"}, headers=token), 401, "invalid_customer_token"
    )


async def test_the_backoffice_api_answers_in_the_one_shape(http: Client) -> None:
    api = "/api/backoffice"
    await error_of(await http.get(f"{api}/me"), 401, "unauthorized")
    await error_of(await http.get(f"{api}/me", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    limit = await error_of(await http.get(f"{api}/tickets?limit=x", headers=AS_ADMIN), 400, "invalid_field")
    assert limit["details"] == {"field": "limit"}
    missing = await error_of(await http.get(f"{api}/tickets/T-NOPE", headers=AS_ADMIN), 404, "not_found")
    assert "T-NOPE" in missing["message"]
    await error_of(await http.get(f"{api}/config/nowhere", headers=AS_ADMIN), 404, "not_found")
    await error_of(await http.post(f"{api}/staff", json={"id": 7}, headers=AS_ADMIN), 400, "invalid_field")
    staff = {"id": "admin", "name": "again", "roles": ["admin"]}
    await error_of(await http.post(f"{api}/staff", json=staff, headers=AS_ADMIN), 409, "exists")
    await error_of(
        await http.post(f"{api}/staff", data=b"[1, 2]", headers={**AS_ADMIN, "Content-Type": "application/json"}),
        400,
        "invalid_payload",
    )


async def test_the_agent_api_answers_in_the_one_shape(http: Client) -> None:
    api = "/api/agent"
    await error_of(await http.get(f"{api}/queue"), 401, "unauthorized")
    refused = await error_of(await http.get(f"{api}/queue", headers=AS_ADMIN), 403, "forbidden")
    assert "handle_conversations" in refused["message"]
    await error_of(await http.get(f"{api}/conversations/nope", headers=AS_SERVICE), 404, "not_found")
    claim = f"{api}/conversations/nope/claim"
    await error_of(await http.post(claim, json={}, headers=AS_SERVICE), 400, "missing_field")
    await error_of(await http.post(claim, json={"agent": "li"}, headers=AS_SERVICE), 404, "not_found")
    broken = {**AS_SERVICE, "Content-Type": "application/json"}
    await error_of(await http.post(claim, data=b'{"agent": ', headers=broken), 400, "invalid_json")


async def test_the_quality_api_answers_in_the_one_shape(http: Client) -> None:
    summary = "/api/console/quality/summary"
    await error_of(await http.get(summary), 401, "unauthorized")
    bad_day = await error_of(await http.get(f"{summary}?from=yesterday", headers=AS_ADMIN), 400, "invalid_field")
    assert bad_day["details"] == {"field": "from"}
    backwards = f"{summary}?from=2026-11-30&to=2026-11-01"
    await error_of(await http.get(backwards, headers=AS_ADMIN), 400, "invalid_range")
    score = {"item_id": "bot:x1", "verdict": "good"}
    await error_of(await http.post("/api/console/reviews", json=score, headers=AS_ADMIN), 403, "forbidden")


async def test_photo_ocr_answers_in_the_one_shape(http: Client) -> None:
    await error_of(await http.get("/api/ocr/nope"), 401, "unauthorized")
    await error_of(await http.get("/api/ocr/nope", headers=AS_ADMIN), 404, "not_found")
    text = {**AS_ADMIN, "Content-Type": "text/plain"}
    await error_of(await http.post("/api/ocr", data=b"a photo?", headers=text), 415, "unsupported_media_type")
    await error_of(await http.post("/api/ocr", json={}, headers=AS_ADMIN), 400, "missing_field")
    await error_of(await http.get("/api/ocr/review?limit=0", headers=AS_ADMIN), 400, "invalid_field")


async def test_route_planning_answers_in_the_one_shape(http: Client) -> None:
    await error_of(await http.get("/api/routes/plans/latest"), 401, "unauthorized")
    await error_of(await http.get("/api/routes/plans/latest", headers=AS_ADMIN), 404, "not_found")
    plan = await http.post("/api/routes/plan", json={"date": "tomorrow"}, headers=AS_ADMIN)
    await error_of(plan, 400, "invalid_payload")


async def test_unknown_paths_and_wrong_methods_answer_json_on_api_paths(http: Client) -> None:
    for path in ("/api/nope", "/webhooks/nope", "/nope"):
        nowhere = await error_of(await http.get(path), 404, "not_found")
        assert path in nowhere["message"]
    wrong = await http.get("/webhooks/rest/webhook")
    refused = await error_of(wrong, 405, "method_not_allowed")
    assert "POST" in wrong.headers["Allow"] and "POST" in refused["details"]["allowed"]
    await error_of(await http.delete("/api/backoffice/me", headers=AS_ADMIN), 405, "method_not_allowed")
    # The console's pages are for people in a browser: aiohttp's plain answer stays there.
    page = await http.get("/console/nope")
    assert page.status == 404 and page.content_type == "text/plain"


async def test_the_openapi_document_describes_the_one_shape(http: Client) -> None:
    document = await (await http.get("/api/openapi.json")).json()
    assert document["components"]["schemas"]["Error"] == ERROR_SCHEMA
    error = ERROR_SCHEMA["properties"]["error"]  # type: ignore[index]
    assert error["required"] == ["code", "message", "details"]


async def test_a_store_outage_answers_503_store_unavailable(settings: Settings, own_mongo: EmbeddedMongo) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(own_mongo.uri, serverSelectionTimeoutMS=300)
    store = ConversationStore(client)
    settings = settings.with_changes(backoffice__admin_token=ADMIN_TOKEN)
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("not needed")).build()
    try:
        async with TestClient(TestServer(build_app(gateway))) as http:
            assert (await http.get("/api/backoffice/me", headers=AS_ADMIN)).status == 200
            await own_mongo.stop()
            down = await http.get("/api/backoffice/me", headers=AS_ADMIN)
            await error_of(down, 503, "store_unavailable")
            assert down.headers["Retry-After"] == "5"
            message = {"sender": "o", "message": "你好"}
            await error_of(await http.post("/webhooks/rest/webhook", json=message), 503, "store_unavailable")
            await own_mongo.start()  # the gateway stops cleanly with its store back
    finally:
        await client.close()


# -- the middleware's branches, exactly -------------------------------------------------------


@dataclass
class Failing:
    """A handler raising whatever the test sets."""

    raised: BaseException | None = None

    async def __call__(self, request: web.Request) -> web.Response:
        if request.query.get("parse") == "json":
            await request.json()
        if self.raised is not None:
            raise self.raised
        return web.json_response({"ok": True})


@pytest_asyncio.fixture
async def bare() -> AsyncIterator[tuple[Client, Failing]]:
    failing = Failing()
    app = web.Application(middlewares=[json_errors], client_max_size=1024)

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/elsewhere")

    async def upload(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    app.router.add_route("*", "/fail", failing.__call__)
    app.router.add_get("/moved", moved)
    app.router.add_post("/upload", upload)
    async with TestClient(TestServer(app)) as client:
        yield client, failing


@pytest.mark.parametrize(
    "raised",
    [ConnectionFailure("socket closed"), AutoReconnect("not primary"), ServerSelectionTimeoutError("no servers")],
    ids=["connection_failure", "auto_reconnect", "server_selection_timeout"],
)
async def test_a_store_outage_is_503_with_retry_after(bare: tuple[Client, Failing], raised: Exception) -> None:
    http, failing = bare
    failing.raised = raised
    response = await http.get("/fail")
    error = await error_of(response, 503, "store_unavailable")
    assert response.headers["Retry-After"] == "5" and str(raised) not in error["message"]


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (RuntimeError("password=hunter2 at /srv/secret"), 500, "internal_error"),
        (KeyError("hunter2"), 500, "internal_error"),
        # Any other driver error is answered as an outage too (as before), but logged with its
        # traceback: a duplicate key reaching the middleware is a bug of ours.
        (DuplicateKeyError("E11000 duplicate key hunter2"), 503, "store_unavailable"),
    ],
    ids=["runtime_error", "key_error", "duplicate_key"],
)
async def test_an_unexpected_failure_is_logged_with_its_traceback_and_nothing_of_it_is_in_the_body(
    bare: tuple[Client, Failing], caplog: pytest.LogCaptureFixture, raised: Exception, status: int, code: str
) -> None:
    http, failing = bare
    failing.raised = raised
    with caplog.at_level(logging.ERROR, logger="gateway.app"):
        response = await http.get("/fail")
    await error_of(response, status, code)
    assert "hunter2" not in await response.text()
    assert any(record.exc_info and record.exc_info[1] is raised for record in caplog.records)


async def test_errors_of_the_tree_keep_their_status_code_and_details(bare: tuple[Client, Failing]) -> None:
    http, failing = bare
    failing.raised = errors.Conflict("the ticket changed meanwhile", code="ticket_changed", ticket_id="T1")
    conflict = await error_of(await http.get("/fail"), 409, "ticket_changed")
    assert conflict == {
        "code": "ticket_changed",
        "message": "the ticket changed meanwhile",
        "details": {"ticket_id": "T1"},
    }
    failing.raised = errors.TooManyRequests("slow down", code="rate_limited", retry_after=2.2)
    throttled = await http.get("/fail")
    assert (await error_of(throttled, 429, "rate_limited"))["details"] == {"retry_after": 3}
    assert throttled.headers["Retry-After"] == "3"
    failing.raised = errors.Unavailable("the NLU is down", code="nlu_unavailable")
    down = await http.get("/fail")
    await error_of(down, 503, "nlu_unavailable")
    assert down.headers["Retry-After"] == "5"
    # Ours failed: the code says which part, the message nothing of its internals.
    failing.raised = errors.OperationalError("/srv/fleet.json: line 3 is broken", code="fleet_file")
    failed = await error_of(await http.get("/fail"), 500, "fleet_file")
    assert "fleet.json" not in failed["message"] and failed["details"] == {}


async def test_a_body_that_cannot_be_parsed_is_400_malformed_body(bare: tuple[Client, Failing]) -> None:
    http, failing = bare
    sent = {"data": b'{"half": ', "headers": {"Content-Type": "application/json"}}
    await error_of(await http.post("/fail?parse=json", **sent), 400, "malformed_body")  # type: ignore[arg-type]
    failing.raised = BadHttpMessage("broken multipart header")
    await error_of(await http.post("/fail"), 400, "malformed_body")


async def test_aiohttps_own_errors_become_json_and_redirects_pass(bare: tuple[Client, Failing]) -> None:
    http, _ = bare
    await error_of(await http.get("/nowhere"), 404, "not_found")
    wrong = await http.get("/upload")
    await error_of(wrong, 405, "method_not_allowed")
    assert wrong.headers["Allow"] == "POST"
    await error_of(await http.post("/upload", data=b"x" * 4096), 413, "too_large")
    moved = await http.get("/moved", allow_redirects=False)
    assert moved.status == 303 and moved.headers["Location"] == "/elsewhere"


def test_the_helper_renders_the_error_itself() -> None:
    response = error_response(errors.NotFound("no ticket T1"))
    assert response.status == 404 and response.content_type == "application/json"
    assert response.text is not None
    assert json.loads(response.text) == {"error": {"code": "not_found", "message": "no ticket T1", "details": {}}}
    assert "Retry-After" not in response.headers


# -- one exception tree -----------------------------------------------------------------------

PACKAGES = (
    "backoffice", "channels", "configuration", "console", "dialogue", "downstream", "errors", "gateway",
    "intents", "ivr", "media_ocr", "nlu", "quality", "shop", "standins", "store", "supervisor",
    "textpatterns", "twiliohooks", "bench", "scripts", "run.py",
)  # fmt: skip
EXEMPT = {"nlu/rasa_yaml.py:RasaDataError"}
"""Changing ``nlu/rasa_yaml.py`` changes the NLU model's fingerprint (a retrain): its one error
class stays a plain ValueError (docs/api.md#errors)."""


@dataclass(frozen=True)
class Defined:
    where: str
    """``path:Name``"""
    module: str
    """The dotted name of the class (``channels.base.InvalidInbound``)."""
    bases: tuple[str, ...]
    """Each base as the dotted name it resolves to (``errors.UserError``, ``ValueError`` …)."""
    imports: dict[str, str]
    """What its module imports: local name → dotted name (a package's re-exports are looked up here)."""


def _module_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolved(node: ast.expr, names: dict[str, str]) -> str:
    dotted = ast.unparse(node).split("[")[0]
    head, _, rest = dotted.partition(".")
    return f"{names[head]}.{rest}".rstrip(".") if head in names else dotted


def defined_classes(root: Path, tops: tuple[str, ...] = PACKAGES) -> Iterator[Defined]:
    """Every class in the sources, its bases resolved through the module's imports, and each
    module itself (``where`` ending in ``:``, no bases) with its imports."""
    for top in tops:
        where = root / top
        files = [where] if where.is_file() else sorted(p for p in where.rglob("*.py") if "node_modules" not in p.parts)
        for path in files:
            module = _module_of(path, root)
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            names: dict[str, str] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    package = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                    base = ".".join([*package, node.module or ""]) if node.level else node.module or ""
                    for alias in node.names:
                        names[alias.asname or alias.name] = f"{base.strip('.')}.{alias.name}"
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.asname:  # import a.b as c: c is a.b
                            names[alias.asname] = alias.name
                        else:  # import a.b: a is a
                            names[alias.name.split(".")[0]] = alias.name.split(".")[0]
            local = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    bases = tuple(
                        f"{module}.{ast.unparse(b)}" if ast.unparse(b) in local else _resolved(b, names)
                        for b in node.bases
                    )
                    where = f"{path.relative_to(root).as_posix()}:{node.name}"
                    yield Defined(where, f"{module}.{node.name}", bases, names)
            yield Defined(f"{path.relative_to(root).as_posix()}:", module, (), names)  # the module itself


def exception_tree(classes: list[Defined]) -> tuple[set[str], set[str]]:
    """(every exception class defined, those under ``errors.GatewayError``), as ``path:Name``."""
    by_name = {c.module: c for c in classes if not c.where.endswith(":")}
    imports = {c.module: c.imports for c in classes if c.where.endswith(":")}
    memo: dict[str, tuple[bool, bool]] = {}

    def kind(dotted: str, seen: frozenset[str] = frozenset()) -> tuple[bool, bool]:
        """(is an exception, is under GatewayError) of a base named ``dotted``."""
        if dotted == "errors.GatewayError":
            return True, True
        if dotted in by_name:
            if dotted not in memo and dotted not in seen:
                results = [kind(b, seen | {dotted}) for b in by_name[dotted].bases]
                memo[dotted] = (any(r[0] for r in results), any(r[1] for r in results))
            return memo.get(dotted, (False, False))
        if "." not in dotted:
            value = getattr(builtins, dotted, None)
            return isinstance(value, type) and issubclass(value, BaseException), False
        module, _, name = dotted.rpartition(".")
        if name in imports.get(module, {}) and imports[module][name] != dotted:  # re-exported by a package
            return kind(imports[module][name], seen)
        try:
            value = getattr(importlib.import_module(module), name, None)
        except Exception:  # a package of another interpreter (rasa for nlu/rasa_components)
            return False, False
        is_exception = isinstance(value, type) and issubclass(value, BaseException)
        return is_exception, is_exception and issubclass(value, errors.GatewayError)  # type: ignore[arg-type]

    exceptions, rooted = set(), set()
    for c in classes:
        if c.where.endswith(":"):
            continue  # a package's imports, no class
        is_exception, under_root = kind(c.module)
        if is_exception:
            exceptions.add(c.where)
            if under_root:
                rooted.add(c.where)
    return exceptions, rooted


def test_every_exception_class_of_the_project_derives_from_gateway_error() -> None:
    exceptions, rooted = exception_tree(list(defined_classes(REPO_ROOT)))
    assert len(exceptions) > 50, sorted(exceptions)  # the walk found the project's classes
    assert "errors/__init__.py:UserError" in rooted and "channels/base.py:InvalidInbound" in rooted
    assert exceptions - rooted == EXEMPT, sorted(exceptions - rooted)


def test_the_walk_finds_an_exception_outside_the_tree(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "base.py").write_text("from errors import NotFound\n\nclass Missing(NotFound):\n    pass\n")
    (tmp_path / "pkg" / "leaf.py").write_text(
        "import json\n\nfrom .base import Missing\n\n\n"
        "class Stray(KeyError):\n    pass\n\n\nclass Decoded(json.JSONDecodeError):\n    pass\n\n\n"
        "class Fine(Missing):\n    pass\n\n\nclass Model:\n    pass\n"
    )
    exceptions, rooted = exception_tree(list(defined_classes(tmp_path, ("pkg",))))
    assert exceptions == {"pkg/base.py:Missing", "pkg/leaf.py:Stray", "pkg/leaf.py:Decoded", "pkg/leaf.py:Fine"}
    assert rooted == {"pkg/base.py:Missing", "pkg/leaf.py:Fine"}
