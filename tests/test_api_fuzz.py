"""Fuzzing the whole HTTP API from its own ``/api/openapi.json`` with schemathesis, against a real
gateway on loopback (store, Rasa, and the Telegram, SMS and app channels switched on).

Every operation is called with schema-conforming and with schema-violating data, once signed in
(a staff token holding every role, the Telegram secret, a Twilio signature, an app user token)
and once as a stranger. Checked: never a 5xx, the status code is one the document lists, and
the content type is the documented one. Bounded by MAX_EXAMPLES so the test takes about a minute
on 2 cores.

The generated requests run in a worker thread (schemathesis calls through ``requests``), while
the event loop of the test serves them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import hypothesis
import hypothesis.errors
import requests
import schemathesis
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance
from twilio.request_validator import RequestValidator

from backoffice.permissions import Role
from backoffice.settings import BackofficeSettings
from channels.app_im import sign_user
from channels.telegram import SECRET_HEADER
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings, RateLimitSettings
from media_ocr.pipeline import OcrWorkers
from nlu.understanding import UnderstandingClient
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS
from tests.telegram_standin import TOKEN as BOT_TOKEN
from tests.telegram_standin import BotApiStandIn

MAX_EXAMPLES = {"signed in": 18, "stranger": 4}
FUZZ_BUDGET_SECONDS = 150  # fuzzing alone takes ~45 s on 2 idle cores (~60 s the whole test); slack for busy runners
TELEGRAM_SECRET = "fuzz-telegram-secret"
APP_SECRET = "fuzz-app-secret"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "fuzz-twilio-token"
APP_USER = "fuzz-user"
# Solving a day's routes takes a worker process and seconds per call: covered by test_routes_api.
TOO_SLOW_TO_FUZZ = {("POST", "/api/routes/plan"), ("POST", "/api/routes/plans/{plan_id}/replan")}
ENDS_THE_FUZZERS_OWN_TOKEN = {("DELETE", "/api/backoffice/staff/{staff_id}/tokens")}
"""Signed in, it may hit the fuzzer's own account and sign the rest of the run out; strangers
still try it, and tests/test_backoffice_api.py tests it."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


def fuzz_settings(tmp_path: Path, base_url: str, admin_token: str) -> Settings:
    return (
        Settings(
            gateway=GatewaySettings(var_dir=tmp_path / "var"),
            backoffice=BackofficeSettings(admin_token=admin_token, sweep_seconds=0),
            outbox=OutboxSettings(max_attempts=1),
            limits=RateLimitSettings(sender_per_minute=0),
        )
        .with_channel("telegram", bot_token=BOT_TOKEN, webhook_secret=TELEGRAM_SECRET, api_base_url=base_url)
        .with_channel("app", secret=APP_SECRET)
        .with_channel(
            "sms",
            account_sid=TWILIO_SID,
            auth_token=TWILIO_TOKEN,
            from_number="+15005550006",
            api_base_url="http://127.0.0.1:9",
        )
    )


class Caller:
    """Sends one generated case as a signed-in client or as a stranger and checks the answer."""

    def __init__(self, base_url: str, staff_token: str, signed_in: bool) -> None:
        self.base_url = base_url
        self.staff_token = staff_token
        self.signed_in = signed_in
        self.twilio = RequestValidator(TWILIO_TOKEN)
        expires = str(int(time.time()) + 3600)
        self.app_query = {"user": APP_USER, "expires": expires, "token": sign_user(APP_SECRET, APP_USER, int(expires))}
        self.statuses: Counter[tuple[str, int]] = Counter()
        """(operation, status) → how many answers: proof that signed-in cases got past the checks."""

    def query_for(self, path: str) -> dict[str, str] | None:
        return self.app_query if self.signed_in and path.startswith("/webhooks/app/") else None

    def headers_for(self, case: schemathesis.Case) -> dict[str, str]:
        if not self.signed_in:
            return {}
        path = case.operation.path
        if path.startswith("/webhooks/telegram/"):
            return {SECRET_HEADER: TELEGRAM_SECRET}
        if path.startswith("/webhooks/twilio/"):
            return {"X-Twilio-Signature": self.twilio_signature(case)}
        return {"Authorization": f"Bearer {self.staff_token}"}

    def twilio_signature(self, case: schemathesis.Case) -> str:
        """Signed as Twilio signs: the URL and the form fields exactly as they go on the wire."""
        sent = case.as_transport_kwargs(base_url=self.base_url)
        fields = {k: sent[k] for k in ("method", "url", "headers", "params", "data", "json") if k in sent}
        prepared = requests.Request(**fields).prepare()
        body = prepared.body or ""
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        form = dict(parse_qsl(text, keep_blank_values=True))  # the gateway keeps a repeated field's last value
        return str(self.twilio.compute_signature(str(prepared.url), form))

    def run(self, case: schemathesis.Case) -> None:
        response = case.call(base_url=self.base_url, headers=self.headers_for(case), timeout=30)
        self.statuses[(f"{case.operation.method.upper()} {case.operation.path}", response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)


def fuzz(schema: Any, caller: Caller, examples: int) -> list[str]:
    """Every operation, positive and negative data; the failures, one line each."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (
            caller.signed_in
            and (operation.method.upper(), operation.path) in TOO_SLOW_TO_FUZZ | ENDS_THE_FUZZERS_OWN_TOKEN
        ):
            continue
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, query=caller.query_for(operation.path))

            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases on every run: a failure can be reproduced
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                caller.run(case)

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                pass  # no negative data exists for an operation without inputs (GET /health)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports a group of failures
                label = f"{operation.method.upper()} {operation.path} ({mode.value})"
                failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures


async def test_no_operation_fails_on_generated_input(
    store: ConversationStore, nlu: UnderstandingClient, tmp_path: Path, standin: BotApiStandIn
) -> None:
    admin_token = "fuzz-admin-token"
    settings = fuzz_settings(tmp_path, standin.base_url, admin_token)
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    gateway.ocr_workers = OcrWorkers("combined", use_threads=True)
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as http:
        await gateway.seed_orders(DEMO_ORDERS)
        assert gateway.backoffice is not None
        _, staff_token = await gateway.backoffice.staff.create(
            "fuzzer", name="Fuzzer", roles=list(Role), skill_groups=["general"], online=True
        )
        document = await (await http.get("/api/openapi.json")).json()
        served = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
        for expected in (
            ("POST", "/webhooks/rest/webhook"), ("POST", "/webhooks/telegram/webhook"),
            ("POST", "/webhooks/twilio/sms"), ("POST", "/webhooks/app/upload"), ("GET", "/health"),
            ("GET", "/api/agent/queue"), ("POST", "/api/ocr"), ("POST", "/api/routes/pickups"),
        ):  # fmt: skip
            assert expected in served, f"{expected} is missing from /api/openapi.json"
        # Twilio always names our own account; any other is refused before the message is read.
        sms_form = document["paths"]["/webhooks/twilio/sms"]["post"]["requestBody"]["content"]
        sms_form["application/x-www-form-urlencoded"]["schema"]["properties"]["AccountSid"] = {"const": TWILIO_SID}
        schema = schemathesis.openapi.from_dict(document)
        base_url = str(http.make_url("")).rstrip("/")

        started = time.monotonic()
        failures: list[str] = []
        callers = {who: Caller(base_url, staff_token, signed_in=who == "signed in") for who in MAX_EXAMPLES}
        for who, examples in MAX_EXAMPLES.items():
            failures += [f"[{who}] {f}" for f in await asyncio.to_thread(fuzz, schema, callers[who], examples)]
        elapsed = time.monotonic() - started
    print(f"fuzzed {sum(c.statuses.total() for c in callers.values())} requests in {elapsed:.0f} s")
    for who, caller in callers.items():
        print(who, sorted(caller.statuses.items()))

    assert not failures, f"{len(failures)} operations failed:\n" + "\n\n".join(failures)
    assert elapsed < FUZZ_BUDGET_SECONDS, f"fuzzing took {elapsed:.0f} s; lower MAX_EXAMPLES"
    # The signed-in pass really got in: each channel and API took some generated requests.
    accepted = {operation for (operation, status), _ in callers["signed in"].statuses.items() if status < 300}
    for operation in (
        "POST /webhooks/rest/webhook", "POST /webhooks/telegram/webhook", "POST /webhooks/twilio/sms",
        "POST /webhooks/app/upload", "GET /api/agent/queue", "GET /api/backoffice/me", "POST /api/routes/pickups",
    ):  # fmt: skip
        assert operation in accepted, f"no signed-in request to {operation} was accepted"
    stranger = callers["stranger"].statuses
    assert not [k for k in stranger if k[0].startswith(("GET /api/", "POST /api/")) and k[1] < 300]


async def test_json_no_parser_should_take_is_a_400_everywhere(client: TestClient[object, object]) -> None:
    """Security (low): deeply nested JSON, huge integers and NaN made 500s. One parser for every
    body (store/untrusted_json.py) refuses them with a 400 that names the problem."""
    bodies = [
        "[" * 5000 + "]" * 5000,
        '{"sender": "a", "message": "x", "metadata": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}",
        '{"sender": "a", "message": "x", "n": ' + "9" * 5000 + "}",
        '{"sender": "a", "message": NaN}',
        '{"sender": "a", "message": "x", "n": -Infinity}',
    ]
    for body in bodies:
        response = await client.post("/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"})
        assert response.status == 400, (body[:40], response.status)
        assert (await response.json())["error"]["code"] in ("invalid_json", "too_deep", "invalid_payload")


async def test_a_body_that_trickles_in_is_cut_off(client: TestClient[object, object], monkeypatch: Any) -> None:
    """Security (low): no timeout on slow request bodies let a client hold handlers open."""
    from gateway import app as gateway_app

    monkeypatch.setattr(gateway_app, "BODY_SECONDS", 0.5)

    async def trickle() -> Any:
        yield b'{"sender": "slow", '
        await asyncio.sleep(2.0)
        yield b'"message": "hi"}'

    started = time.monotonic()
    response = await client.post(
        "/webhooks/rest/webhook", data=trickle(), headers={"Content-Type": "application/json"}
    )  # fmt: skip
    assert response.status == 408 and time.monotonic() - started < 1.8
    assert (await response.json())["error"]["code"] == "body_timeout"
