"""``run.py``: the one entry point, driven as a user would from a shell."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import aiohttp

from nlu.server import EmbeddedRasaServer
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from supervisor import free_port
from tests.conftest import DEMO_ORDERS, REPO_ROOT

RUN = [sys.executable, str(REPO_ROOT / "run.py")]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "RASA_URL", "RASA_TOKEN")}
    env.update(extra)
    return env


async def run_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *RUN,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or clean_env(),
        cwd=REPO_ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 300)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_help_lists_the_subcommands() -> None:
    code, out, _ = await run_cli("--help")
    assert code == 0
    for command in ("serve", "nlu", "seed", "--host", "--port"):
        assert command in out


async def test_nlu_parse_writes_one_rasa_parse_object_per_line(rasa: EmbeddedRasaServer) -> None:
    lines = "你好\n\n幫我查下訂單 二零二六幺幺幺五洞洞洞幺 到咗边度\nI want to talk to a human\n"
    code, out, err = await run_cli("nlu", "parse", stdin=lines, env=clean_env(RASA_URL=rasa.url, RASA_TOKEN=rasa.token))
    assert code == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in results] == [
        "你好",
        "幫我查下訂單 二零二六幺幺幺五洞洞洞幺 到咗边度",
        "I want to talk to a human",
    ]
    for result in results:
        assert {"text", "intent", "entities", "intent_ranking", "normalized_text", "language"} <= set(result)
        assert {"name", "confidence"} <= set(result["intent"])
    assert [r["intent"]["name"] for r in results] == ["greet", "order_status", "human_handoff"]
    assert [r["language"] for r in results] == ["zh", "zh", "en"]
    assert results[1]["normalized_text"] == "帮我查下订单 202611150001 到了哪里"
    assert results[1]["traditional"] is True and results[1]["varieties"] == ["cantonese"]
    assert [(e["entity"], e["value"]) for e in results[1]["entities"]] == [("order_id", "202611150001")]


async def test_nlu_eval_prints_metrics_and_writes_a_confusion_matrix(rasa: EmbeddedRasaServer, tmp_path: Path) -> None:
    test_file = tmp_path / "small.yml"
    test_file.write_text(
        "# reference_date: 2026-11-20\n"
        'version: "3.1"\n'
        "nlu:\n"
        "- intent: order_status\n"
        "  examples:\n"
        "  - text: |\n"
        '      我嘅訂單[二零二六幺幺幺五洞洞洞幺]{"entity": "order_id", "value": "202611150001"}到咗边度\n'
        "    metadata:\n"
        "      dialect: cantonese\n"
        "- intent: change_delivery_time\n"
        "  examples:\n"
        "  - text: |\n"
        '      改到[听日]{"entity": "date", "value": "2026-11-21"}送\n'
        "    metadata:\n"
        "      dialect: cantonese\n"
        "- intent: out_of_scope\n"
        "  examples: |\n"
        "    - 今天天气怎么样\n",
        encoding="utf-8",
    )
    png, report = tmp_path / "confusion.png", tmp_path / "report.json"
    env = clean_env(RASA_URL=rasa.url, RASA_TOKEN=rasa.token)
    code, out, err = await run_cli("nlu", "eval", str(test_file), "--png", str(png), "--json", str(report), env=env)
    assert code == 0, err
    for heading in ("intent accuracy", "macro F1", "out-of-scope rejected", "variety tag", "entity", "threshold"):
        assert heading in out
    assert "against 2026-11-20" in out
    assert png.read_bytes().startswith(b"\x89PNG")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["examples"] == 3
    assert set(data["per_tag"]) == {"cantonese", "untagged"}
    assert set(data["entities"]) == {"order_id", "date"}


async def test_nlu_eval_rejects_a_bad_file_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: greet\n  examples: |\n    hello without a dash\n", encoding="utf-8")
    code, _, err = await run_cli("nlu", "eval", str(bad), env=clean_env(RASA_URL="http://127.0.0.1:9", RASA_TOKEN="x"))
    assert code == 2
    assert "error:" in err and "without '- '" in err


async def test_nlu_parse_fails_clearly_without_a_server() -> None:
    env = clean_env(RASA_URL=f"http://127.0.0.1:{free_port()}", RASA_TOKEN="x")
    code, _, err = await run_cli("nlu", "parse", stdin="你好\n", env=env)
    assert code == 1
    assert "error:" in err and "/model/parse" in err


async def test_seed_upserts_orders_and_rejects_bad_files(
    mongo: EmbeddedMongo, store: ConversationStore, tmp_path: Path
) -> None:
    env = clean_env(MONGODB_URI=mongo.uri, MONGODB_DATABASE=store.db.name)
    for _ in range(2):  # idempotent
        code, out, err = await run_cli("seed", "--orders", str(DEMO_ORDERS), env=env)
        assert code == 0, err
        assert "seeded 11 orders" in out
    assert await store.db["orders"].count_documents({}) == 11

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"orders": [{"order_id": "12345678901", "status": "lost", "customer": {"name": "x"}}]}),
        encoding="utf-8",
    )
    code, _, err = await run_cli("seed", "--orders", str(bad), env=env)
    assert code == 2
    assert "orders[0].status" in err and "orders[0].items" in err
    missing = tmp_path / "missing.json"
    code, _, err = await run_cli("seed", "--orders", str(missing), env=env)
    assert code == 2 and "no such file" in err
    assert await store.db["orders"].count_documents({}) == 11, "nothing written from a bad file"


async def test_serve_on_embedded_defaults_end_to_end(tmp_path: Path, rasa: EmbeddedRasaServer) -> None:
    """``serve`` with no MONGODB_URI or RASA_URL starts, answers, stops its children, keeps data."""
    del rasa  # only to make sure the model is trained (cached) before the clock starts
    port = free_port()
    var_dir = tmp_path / "var"
    process = await asyncio.create_subprocess_exec(
        *RUN,
        "serve",
        "--port",
        str(port),
        "--seed-orders",
        str(DEMO_ORDERS),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=clean_env(GATEWAY_VAR_DIR=str(var_dir)),
        cwd=REPO_ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    sender = f"cli-{uuid.uuid4().hex[:8]}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 180
            while True:
                assert process.returncode is None, "serve exited early"
                try:
                    async with http.get(f"{base}/health") as response:
                        if response.status == 200:
                            assert await response.json() == {"status": "ok", "store": True, "nlu": True}
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "gateway not healthy in time"
                await asyncio.sleep(0.5)
            body = {"sender": sender, "message": "查一下订单202611150001"}
            async with http.post(f"{base}/webhooks/rest/webhook", json=body) as response:
                replies = await response.json()
            assert "已发货" in replies[0]["text"]
        assert process.stdout is not None
        banner = (await process.stdout.read(4096)).decode()
        assert f"{base}/health" in banner and f"{base}/webhooks/rest/webhook" in banner
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0

    # Its Rasa server and MongoDB server are gone with it...
    await asyncio.sleep(0.5)
    leftover = [line for line in _processes() if str(var_dir) in line]
    assert leftover == [], leftover
    # ...and the conversation is on disk for the next start.
    restarted = EmbeddedMongo(var_dir / "mongo")
    await restarted.start()
    store = ConversationStore.from_uri(restarted.uri)
    try:
        assert await store.messages.count_documents({"channel_message_id": {"$regex": f"^{sender}:"}}) == 1
    finally:
        await store.close()
        await restarted.stop()


def _processes() -> list[str]:
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return lines
