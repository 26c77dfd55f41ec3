"""Merging two customers from a shell: `run.py customers merge`, explicit and audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest_asyncio

from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from tests.helpers import unique_sender
from tests.test_cli import clean_env, run_cli


@pytest_asyncio.fixture
async def two_customers(store: ConversationStore) -> AsyncIterator[tuple[str, str]]:
    """One person on Telegram and in the app; only the app knows the phone."""
    on_telegram = await store.resolve_customer("telegram", unique_sender(), {})
    await store.open_conversation(on_telegram, "telegram", "tg-sender")
    in_app = await store.resolve_customer("app", unique_sender(), {"phone": "13800138123"})
    await store.open_conversation(in_app, "app", "app-sender")
    yield on_telegram.id, in_app.id


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
