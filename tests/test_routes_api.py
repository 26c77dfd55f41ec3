"""The route-planning HTTP API and console page, on a gateway served in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from backoffice.routing.demo import demo_pickups
from gateway import GatewayBuilder, Settings, build_app
from nlu import OfflineNlu
from store.mongo import ConversationStore

DAY = "2026-11-25"
STAFF_TOKEN = "routes-test-admin-token"


@pytest_asyncio.fixture
async def http(settings: Settings, store: ConversationStore) -> AsyncIterator[TestClient[object, object]]:
    """No NLU needed here: the planning API does not talk to Rasa."""
    settings = settings.with_changes(backoffice__admin_token=STAFF_TOKEN)
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("not needed")).build()
    headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    async with TestClient(TestServer(build_app(gateway)), headers=headers) as client:
        yield client


async def test_pickups_plan_image_actuals_and_carbon_over_http(http: TestClient[object, object]) -> None:
    response = await http.get("/api/routes/plans/latest")
    assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"

    requests = [r.model_dump(mode="json") for r in demo_pickups(DAY, 10)]
    response = await http.post("/api/routes/pickups", json=requests[0])
    assert response.status == 201 and (await response.json())["status"] == "requested"
    response = await http.post("/api/routes/pickups", json=requests[0])
    assert response.status == 200, "the same request id again is stored once"
    for request in requests[1:]:
        assert (await http.post("/api/routes/pickups", json=request)).status == 201

    response = await http.post("/api/routes/plan", json={"date": DAY, "time_limit": 1})
    assert response.status == 201, await response.text()
    plan = await response.json()
    assert plan["date"] == DAY and plan["feasibility"]["feasible"]
    assert plan["totals"]["stops"] + plan["totals"]["unserved"] == 10
    for route in plan["routes"]:
        assert {"distance_km", "max_load", "duration_min", "co2_kg", "depart", "return"} <= set(route)

    latest = await (await http.get("/api/routes/plans/latest", params={"date": DAY})).json()
    assert latest["_id"] == plan["_id"]
    image = await http.get(f"/api/routes/plans/{plan['_id']}.png")
    assert image.status == 200 and image.content_type == "image/png"
    assert (await image.read())[:8] == b"\x89PNG\r\n\x1a\n"
    page = await (await http.get("/console/routes")).text()
    assert f"/api/routes/plans/{plan['_id']}.png" in page and plan["routes"][0]["vehicle_id"] in page

    # Planning the day again replaces the plan: only the new one's CO2 counts as planned.
    response = await http.post("/api/routes/plan", json={"date": DAY, "time_limit": 0.5, "backend": "ortools"})
    assert response.status == 201
    first, plan = plan, await response.json()
    assert (await (await http.get(f"/api/routes/plans/{first['_id']}")).json())["status"] == "superseded"

    vehicle = plan["routes"][0]["vehicle_id"]
    response = await http.post(
        f"/api/routes/plans/{plan['_id']}/actuals", json={"vehicle_id": vehicle, "distance_km": 80}
    )
    assert response.status == 201
    actual = await response.json()
    carbon = await (await http.get("/api/routes/carbon", params={"date": DAY})).json()
    row = next(v for v in carbon["vehicles"] if v["transport_id"] == vehicle)
    assert row["planned_co2_kg"] == plan["routes"][0]["co2_kg"]
    assert row["actual_co2_kg"] == actual["co2_kg"]
    assert carbon["ledger"]["ok"] and carbon["plan_id"] == plan["_id"]
    assert carbon["planned_co2_kg"] == pytest.approx(plan["totals"]["co2_kg"], abs=0.01)


async def test_bad_requests_get_json_errors(http: TestClient[object, object]) -> None:
    response = await http.post("/api/routes/plan", json={"date": "tomorrow"})
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_payload"
    response = await http.post("/api/routes/plan", json={"time_limit": 1000})
    assert response.status == 400
    response = await http.post("/api/routes/plan", json={"date": "2030-01-01", "time_limit": 1})
    assert response.status == 409 and "no open pick-ups" in (await response.json())["error"]["message"]
    response = await http.get("/api/routes/plans/nope")
    assert response.status == 404
    response = await http.post("/api/routes/pickups", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_json"


async def test_route_planning_is_for_dispatchers_and_admins(http: TestClient[object, object]) -> None:
    for path in ("/api/routes/plans/latest", "/api/routes/carbon"):
        assert (await http.get(path, headers={"Authorization": ""})).status == 401
    assert (await http.post("/api/routes/pickups", json={}, headers={"Authorization": "Bearer wrong"})).status == 401
    page = await http.get("/console/routes", headers={"Authorization": ""}, allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/console/login")
