"""The agents' API under staff sign-in: who may work on conversations, transfer to a colleague
and to a skill group, notes that never reach the customer, staff-only photos, and the service
token for integrations."""

from __future__ import annotations

import io

from aiohttp import ClientSession
from PIL import Image

from backoffice.permissions import Role
from gateway import Gateway
from store import ConversationState, InboundMessage
from tests.console_support import make_staff, served, signed_in_client


async def waiting_conversation(gateway: Gateway, sender: str = "u1") -> str:
    store = gateway.store
    assert store is not None
    receipt = await store.accept_inbound(
        InboundMessage(channel="rest", sender_id=sender, channel_message_id=f"{sender}-1", text="转人工")
    )
    await store.hand_to_queue(receipt.conversation.id, "customer_asked")
    return receipt.conversation.id


async def test_only_staff_who_handle_conversations_may_take_them(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "wang.product", Role.REVIEWER, skill_groups=["product"])
        await make_staff(gateway, "sun.qa", Role.QUALITY)
        conversation_id = await waiting_conversation(gateway)
        for staff_id in ("wang.product", "sun.qa"):
            async with signed_in_client(site, staff_id) as console:
                queue = await console.http.get("/api/agent/queue")
                assert queue.status == 403, staff_id
                claim = await console.http.post(
                    f"/api/agent/conversations/{conversation_id}/claim", json={}, headers=console.headers()
                )
                assert claim.status == 403
        async with signed_in_client(site, "wang.product") as console:
            no_csrf = await console.http.post(f"/api/agent/conversations/{conversation_id}/claim", json={})
            assert no_csrf.status == 403 and (await no_csrf.json())["error"]["code"] == "csrf_failed"


async def test_transfer_to_a_colleague_then_to_a_skill_group(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "liu.cs", Role.CUSTOMER_SERVICE)
        await make_staff(gateway, "he.cs", Role.CUSTOMER_SERVICE)
        await make_staff(gateway, "wang.product", Role.REVIEWER, skill_groups=["product"])
        conversation_id = await waiting_conversation(gateway)
        path = f"/api/agent/conversations/{conversation_id}"
        store = gateway.store
        assert store is not None
        async with signed_in_client(site, "liu.cs") as liu, signed_in_client(site, "he.cs") as he:
            assert (await liu.http.post(f"{path}/claim", json={}, headers=liu.headers())).status == 200
            taken = await he.http.post(f"{path}/claim", json={}, headers=he.headers())
            assert taken.status == 409
            not_owner = await he.http.post(f"{path}/transfer", json={"queue": "product"}, headers=he.headers())
            assert not_owner.status == 409
            reviewer = await liu.http.post(f"{path}/transfer", json={"to_agent": "wang.product"}, headers=liu.headers())
            assert reviewer.status == 400  # a reviewer does not take conversations
            both = await liu.http.post(
                f"{path}/transfer", json={"to_agent": "he.cs", "queue": "product"}, headers=liu.headers()
            )
            assert both.status == 400
            moved = await liu.http.post(
                f"{path}/transfer", json={"to_agent": "he.cs", "reason": "下班交接"}, headers=liu.headers()
            )
            assert moved.status == 200
            assert (await moved.json())["conversation"]["agent_id"] == "he.cs"
            he_queue = await (await he.http.get("/api/agent/queue")).json()
            assert [c["id"] for c in he_queue["mine"]] == [conversation_id]

            unknown = await he.http.post(f"{path}/transfer", json={"queue": "nowhere"}, headers=he.headers())
            assert unknown.status == 400
            queued = await he.http.post(f"{path}/transfer", json={"queue": "product"}, headers=he.headers())
            assert queued.status == 200
            doc = await store.conversations.find_one({"_id": conversation_id})
            assert doc is not None
            assert doc["state"] == ConversationState.WAITING_AGENT and doc["queue"] == "product"
            assert "agent_id" not in doc
            waiting = await (await liu.http.get("/api/agent/queue")).json()
            assert [(c["id"], c["queue"]) for c in waiting["waiting"]] == [(conversation_id, "product")]
            transfers = await store.events.count_documents({"name": "agent_transferred"})
            assert transfers == 2


async def test_notes_stay_internal_and_photos_are_for_staff_only(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "liu.cs", Role.CUSTOMER_SERVICE)
        store = gateway.store
        assert store is not None
        image = io.BytesIO()
        Image.new("RGB", (40, 30), "red").save(image, format="PNG")
        attachment = await gateway.media.save(image.getvalue(), "image/png", "damage.png")
        receipt = await store.accept_inbound(
            InboundMessage(
                channel="rest", sender_id="u2", channel_message_id="u2-1", text="破了", attachments=[attachment]
            )
        )
        conversation_id = receipt.conversation.id
        await store.hand_to_queue(conversation_id, "customer_asked")
        async with signed_in_client(site, "liu.cs") as liu:
            path = f"/api/agent/conversations/{conversation_id}"
            await liu.http.post(f"{path}/claim", json={}, headers=liu.headers())
            note = await liu.http.post(f"{path}/notes", json={"text": "疑似运输破损"}, headers=liu.headers())
            assert note.status == 201
            workspace = await (await liu.http.get(f"{path}/workspace")).json()
            assert [n["text"] for n in workspace["notes"]] == ["疑似运输破损"]
            (photo,) = workspace["messages"][0]["attachments"]
            assert photo["inline"] is True
            served_photo = await liu.http.get(photo["url"])
            assert served_photo.status == 200 and served_photo.content_type == "image/png"
            assert await served_photo.read() == image.getvalue()
            outbound = await store.messages.count_documents({"conversation_id": conversation_id, "direction": "out"})
            assert outbound == 0  # the note went nowhere near the customer
        async with ClientSession(site.base) as stranger:
            assert (await stranger.get(photo["url"])).status == 401


async def test_the_service_token_still_names_the_agent_in_the_body(gateway: Gateway) -> None:
    async with served(gateway) as site:
        conversation_id = await waiting_conversation(gateway)
        async with ClientSession(site.base) as http:
            # No AGENT_API_TOKEN configured: a bearer token must be a staff token.
            refused = await http.post(
                f"/api/agent/conversations/{conversation_id}/claim", json={"agent": "x"},
                headers={"Authorization": "Bearer guess"},
            )  # fmt: skip
            assert refused.status == 401
