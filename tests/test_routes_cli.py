"""``run.py routes seed-demo | plan | replan | carbon`` against the store, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from tests.test_cli import clean_env, run_cli

DAY = "2026-11-26"


async def test_seed_plan_replan_and_carbon_from_the_command_line(
    mongo: EmbeddedMongo, store: ConversationStore, tmp_path: Path
) -> None:
    env = clean_env(MONGODB_URI=mongo.uri, MONGODB_DATABASE=store.db.name, GATEWAY_VAR_DIR=str(tmp_path / "var"))
    code, out, err = await run_cli("routes", "seed-demo", "--date", DAY, "--count", "12", env=env)
    assert code == 0, err
    assert "12 demo pick-ups added" in out

    code, out, err = await run_cli("routes", "plan", "--date", DAY, "--time-limit", "0.5", "--json", env=env)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["totals"]["stops"] == 12 and plan["feasibility"]["feasible"]
    assert "planning:" in err and "best" in err, "progress on stderr"
    assert (tmp_path / "var" / "routes" / f"plan-{plan['_id']}.png").exists()
    assert json.loads((tmp_path / "var" / "routes" / f"plan-{plan['_id']}.json").read_text())["_id"] == plan["_id"]
    assert await store.db["pickups"].count_documents({"date": DAY, "status": "planned"}) == 12

    vehicle = plan["routes"][0]["vehicle_id"]
    code, out, err = await run_cli(
        "routes", "replan", "--plan", plan["_id"], "--now", "08:00", "--delay", f"{vehicle}=45", "--time-limit", "0.5",
        env=env,
    )  # fmt: skip
    assert code == 0, err
    assert "revision 2" in out

    code, out, err = await run_cli("routes", "carbon", "--date", DAY, env=env)
    assert code == 0, err
    report = json.loads(out)
    assert report["ledger"]["ok"] and report["planned_co2_kg"] > 0

    code, out, err = await run_cli("routes", "plan", "--date", "2031-01-01", "--time-limit", "1", env=env)
    assert code == 2 and err.strip().endswith("error: no open pick-ups for 2031-01-01")
    code, _, err = await run_cli("routes", "replan", "--now", "25:00", env=env)
    assert code == 2 and "expected HH:MM" in err
