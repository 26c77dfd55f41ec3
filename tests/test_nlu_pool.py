"""Several Rasa servers behind the NLU client: round-robin, a failed server taken out of the
rotation, probed after its cool-down and put back once it answers again. Real Rasa servers."""

from __future__ import annotations

import asyncio

from nlu import NluUnavailable, RasaNluClient
from nlu.server import EmbeddedRasaServer
from supervisor import free_port

ORDER_QUERY = "帮我查一下订单202611150001到哪了"


async def test_requests_go_round_the_live_servers_and_skip_a_dead_one(rasa: EmbeddedRasaServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client = RasaNluClient([dead, rasa.url], rasa.token, timeout=10, cooldown=60)
    try:
        results = [await client.parse(ORDER_QUERY) for _ in range(6)]
        assert {r.intent_name for r in results} == {"order_status"}
        # The refusal took the dead server out at once: later requests did not knock on it again.
        assert client.servers() == {dead: False, rasa.url: True}
    finally:
        await client.close()


async def test_all_servers_down_is_an_outage_not_a_hang() -> None:
    client = RasaNluClient(
        [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"], "t", timeout=2, cooldown=60
    )
    try:
        for _ in range(2):  # the second request fails fast: both are out of the rotation
            try:
                await client.parse("退款")
            except NluUnavailable as exc:
                assert "Rasa" in str(exc) or "127.0.0.1" in str(exc)
            else:
                raise AssertionError("parse succeeded with no server up")
        assert not any(client.servers().values())
    finally:
        await client.close()


async def test_a_stopped_server_rejoins_after_it_restarts(rasa: EmbeddedRasaServer) -> None:
    """A second real server on a fixed port: stopped, the first serves every request; started
    again on the same port, it is probed after the cool-down and gets requests again."""
    second = EmbeddedRasaServer(rasa.project, rasa.model, token=rasa.token, name="rasa-second")
    await second.start()
    client = RasaNluClient([second.url, rasa.url], rasa.token, timeout=10, cooldown=0.5)
    try:
        assert (await client.parse(ORDER_QUERY)).intent_name == "order_status"
        assert all(client.servers().values())

        await second.stop()
        for _ in range(4):
            assert (await client.parse(ORDER_QUERY)).intent_name == "order_status"
        assert client.servers() == {second.url: False, rasa.url: True}

        restarted = EmbeddedRasaServer(rasa.project, rasa.model, port=second.port, token=rasa.token, name="rasa-second")
        await restarted.start()
        try:
            await asyncio.sleep(0.6)  # past the cool-down: the next request probes it
            for _ in range(2):
                assert (await client.parse(ORDER_QUERY)).intent_name == "order_status"
            assert client.servers() == {second.url: True, rasa.url: True}
        finally:
            await restarted.stop()
    finally:
        await client.close()
        await second.stop()
