"""Shared test fixtures: the real embedded MongoDB server and the real Rasa server, once per session.

Each test gets its own database on the shared MongoDB server and its own gateway instance,
served in-process by aiohttp's test server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway import Gateway, GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu import NluProject, RasaNluClient
from nlu.server import EmbeddedRasaServer
from nlu.understanding import UnderstandingClient
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from tests.helpers import CUSTOMER_TOKEN_SECRET
from tests.telegram_standin import BotApiStandIn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_ORDERS = REPO_ROOT / "shop" / "demo_orders.json"
AUDIO = REPO_ROOT / "tests" / "data" / "audio"
"""Phone audio for the IVR tests (Mandarin, English, Korean; see its README), kept with the tests."""


@pytest_asyncio.fixture(scope="session")
async def mongo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedMongo]:
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo"))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def own_mongo(tmp_path: Path) -> AsyncIterator[EmbeddedMongo]:
    """A store of the test's own, with its files on disk, that the test may stop and start
    (the session's ``mongo`` is shared and must stay up)."""
    server = EmbeddedMongo(tmp_path / "mongo")
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session")
async def rasa(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedRasaServer]:
    """The real Rasa server; the model is trained once and cached under models/."""
    var_dir = tmp_path_factory.mktemp("rasa-var")
    project = NluProject(var_dir=var_dir)
    server = EmbeddedRasaServer(project, project.train(quiet=True))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def nlu(rasa: EmbeddedRasaServer) -> AsyncIterator[UnderstandingClient]:
    """The gateway's NLU as production builds it: normaliser and entity rules over the real Rasa server."""
    client = UnderstandingClient(RasaNluClient(rasa.url, rasa.token, timeout=30))
    yield client
    await client.close()


@pytest_asyncio.fixture
async def store(mongo: EmbeddedMongo) -> AsyncIterator[ConversationStore]:
    store = ConversationStore.from_uri(mongo.uri, database=f"test_{uuid.uuid4().hex[:12]}")
    await store.ensure_indexes()
    yield store
    await store.client.drop_database(store.db.name)
    await store.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(gateway=GatewaySettings(var_dir=tmp_path / "var")).with_channel(
        "rest", customer_token_secret=CUSTOMER_TOKEN_SECRET
    )


@pytest_asyncio.fixture
async def gateway(settings: Settings, store: ConversationStore, nlu: UnderstandingClient) -> Gateway:
    return GatewayBuilder(settings).store(store).nlu(nlu).build()


@pytest_asyncio.fixture
async def client(gateway: Gateway) -> AsyncIterator[TestClient[object, object]]:
    """An HTTP client for an in-process gateway with the demo orders loaded."""
    async with TestClient(TestServer(build_app(gateway))) as http:
        await gateway.seed_orders(DEMO_ORDERS)
        yield http


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[BotApiStandIn]:
    """Telegram's Bot API stand-in on a loopback port (the SMS tests have their own Twilio one)."""
    server = BotApiStandIn()
    await server.start()
    yield server
    await server.stop()
