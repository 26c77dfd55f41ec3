"""The customer admin API: look-up and the explicit, audited merge, over HTTP."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from gateway import Gateway, Settings
from store import ConversationStore
from store.embedded import EmbeddedMongo
from tests.helpers import unique_sender
from tests.test_cli import clean_env, run_cli

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MERGE = "/api/customers/merge"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", admin_api_token=TOKEN)


@pytest_asyncio.fixture
async def two_customers(store: ConversationStore) -> AsyncIterator[tuple[str, str]]:
    """One person on Telegram and in the app; only the app knows the phone."""
    on_telegram = await store.resolve_customer("telegram", unique_sender(), {})
    await store.open_conversation(on_telegram, "telegram", "tg-sender")
    in_app = await store.resolve_customer("app", unique_sender(), {"phone": "13800138123"})
    await store.open_conversation(in_app, "app", "app-sender")
    yield on_telegram.id, in_app.id


async def test_merge_folds_one_customer_into_the_other_and_is_audited(
    client: TestClient[object, object], store: ConversationStore, two_customers: tuple[str, str]
) -> None:
    source, target = two_customers
    body = {"source_id": source, "target_id": target, "reason": "客户电话确认是同一人", "actor": "ops-li"}
    response = await client.post(MERGE, json=body, headers=AUTH)
    assert response.status == 200, await response.text()
    assert "telegram" in (await response.json())["customer"]["identities"]

    looked_up = await client.get(f"/api/customers/{target}", headers=AUTH)
    assert looked_up.status == 200
    found = await looked_up.json()
    assert found["identities"]["phone"] == "13800138123"
    assert {c["channel"] for c in found["conversations"]} == {"telegram", "app"}
    (event,) = [e async for e in store.events.find({"name": "customers_merged", "data.source": source})]
    assert event["data"]["actor"] == "admin:ops-li" and event["data"]["reason"] == "客户电话确认是同一人"

    again = await client.post(MERGE, json=body, headers=AUTH)
    assert again.status in (200, 409), "a repeated merge never merges twice"
    assert await store.events.count_documents({"name": "customers_merged", "data.source": source}) == 1


async def test_merge_refusals_have_clear_statuses(
    client: TestClient[object, object], store: ConversationStore, two_customers: tuple[str, str]
) -> None:
    source, target = two_customers
    body = {"source_id": source, "target_id": target, "reason": "同一人", "actor": "ops-li"}

    assert (await client.post(MERGE, json=body)).status == 401
    wrong = await client.post(MERGE, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401 and (await wrong.json())["error"] == "unauthorized"
    assert (await client.get(f"/api/customers/{target}", headers={"Authorization": "Bearer nope"})).status == 401

    malformed = await client.post(MERGE, data=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert malformed.status == 400 and (await malformed.json())["error"] == "invalid_json"
    no_actor = await client.post(MERGE, json={k: v for k, v in body.items() if k != "actor"}, headers=AUTH)
    assert no_actor.status == 400 and (await no_actor.json())["field"] == "actor"

    unknown = await client.post(MERGE, json={**body, "source_id": "nobody"}, headers=AUTH)
    assert unknown.status == 404
    assert (await client.get("/api/customers/nobody", headers=AUTH)).status == 404

    itself = await client.post(MERGE, json={**body, "source_id": target}, headers=AUTH)
    assert itself.status == 409 and "itself" in (await itself.json())["detail"]

    await store.customers.update_one({"_id": source}, {"$set": {"identities.phone": "13900139000"}})
    conflict = await client.post(MERGE, json=body, headers=AUTH)
    assert conflict.status == 409 and "phone" in (await conflict.json())["detail"]
    assert await store.events.count_documents({"name": "customers_merged", "data.source": source}) == 0


async def test_without_a_token_the_admin_api_is_off(client: TestClient[object, object], gateway: Gateway) -> None:
    gateway.settings = dataclasses.replace(gateway.settings, admin_api_token=None)
    response = await client.get("/api/customers/anyone", headers=AUTH)
    assert response.status == 503
    assert "ADMIN_API_TOKEN" in (await response.json())["detail"]


async def test_the_cli_merges_and_refuses_with_exit_2(
    mongo: EmbeddedMongo, store: ConversationStore, two_customers: tuple[str, str]
) -> None:
    source, target = two_customers
    env = clean_env(MONGODB_URI=mongo.uri, MONGODB_DATABASE=store.db.name)
    merge = ("customers", "merge")
    code, out, err = await run_cli(*merge, target, target, "--reason", "r", "--actor", "ops", env=env)
    assert code == 2 and err.startswith("error: ") and "itself" in err
    code, out, err = await run_cli(*merge, source, target, "--reason", "电话确认", "--actor", "ops-li", env=env)
    assert code == 0, err
    assert json.loads(out)["customer"]["id"] == target
    (event,) = [e async for e in store.events.find({"name": "customers_merged"})]
    assert event["data"]["actor"] == "cli:ops-li" and event["data"]["reason"] == "电话确认"
