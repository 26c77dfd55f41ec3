"""Throughput and latency of the NLU server and of full gateway turns, on loopback.

Prints, in one run:
  1. bare Rasa ``POST /model/parse`` throughput (1 and 16 concurrent callers);
  2. the gateway's full-turn throughput and p50/p95 latency through the REST channel
     (store → NLU → dialogue → outbox) at 1 and 16 concurrent senders;
  3. hostile 4,000-character messages (runs of the characters that made a pattern backtrack for
     minutes): each one's turn time, and the slowest ``/health`` answer while they were read
     (targets: 200 ms and 50 ms).

The gateway runs as its own process (``run.py serve``) against the embedded MongoDB server
and Rasa server this script starts, so the load generator does not share its event loop.
Bounded: a fixed number of requests per measurement, and a time limit per measurement.

    .venv/bin/python bench/throughput.py [--turns 400] [--parses 600]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rest_sessions import RestSessions
from nlu import NluProject
from nlu.server import EmbeddedRasaServer
from store.embedded import EmbeddedMongo
from supervisor import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_SECONDS = 120
TEXTS = [
    "你好",
    "帮我查一下订单202611150001到哪了",
    "我的快递怎么还没到",
    "202611190006",
    "where is my order 202611180002",
    "我想转人工",
    "今天天气怎么样",
    "好的",
]


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies from /proc/stat: on a shared VM, steal explains slow runs."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def progress(done: int, total: int, label: str) -> None:
    if done % max(1, total // 20) == 0 or done == total:
        print(f"\r  {label}: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


async def measure(label: str, total: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    latencies: list[float] = []
    counter = itertools.count()
    errors = 0
    deadline = time.monotonic() + TIME_LIMIT_SECONDS

    async def worker() -> None:
        nonlocal errors
        while (i := next(counter)) < total and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                await call(i)
            except Exception as exc:  # counted and reported, the run goes on
                errors += 1
                if errors <= 3:
                    print(f"\n  error: {exc!r}", file=sys.stderr)
            latencies.append(time.perf_counter() - started)
            progress(len(latencies), total, label)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "rps": len(ordered) / elapsed,
        "p50": statistics.median(ordered) * 1000,
        "p95": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        "errors": errors,
    }


async def bench_rasa(rasa: EmbeddedRasaServer, total: int) -> list[tuple[str, dict[str, float]]]:
    rows = []
    async with aiohttp.ClientSession() as http:
        url = f"{rasa.url}/model/parse?token={rasa.token}"

        async def parse(i: int) -> None:
            async with http.post(url, json={"text": TEXTS[i % len(TEXTS)]}) as response:
                response.raise_for_status()
                await response.read()

        await measure("rasa warm-up", 20, 1, parse)
        for concurrency in (1, 16):
            rows.append(
                (
                    f"Rasa /model/parse, {concurrency:>2} callers",
                    await measure(f"rasa c={concurrency}", total, concurrency, parse),
                )
            )
    return rows


async def bench_gateway(base: str, total: int) -> list[tuple[str, dict[str, float]]]:
    rows = []
    async with aiohttp.ClientSession() as http:
        for concurrency in (1, 16):
            run = os.urandom(3).hex()
            sessions = RestSessions()

            def sender_of(i: int, concurrency: int = concurrency, run: str = run) -> str:
                # Each sender is a customer; a new customer every 8 turns keeps hand-offs from
                # silencing the bot for the rest of the run.
                return f"bench-{run}-{i % concurrency}-{i // (concurrency * len(TEXTS))}"

            # A client opens its session with its first message and waits for the answer before
            # the next: the senders' sessions are opened here, not timed.
            for sender in dict.fromkeys(sender_of(i) for i in range(total)):
                async with http.post(
                    f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": "你好"}
                ) as response:
                    response.raise_for_status()
                    sessions.keep(sender, response.headers)

            async def turn(i: int, sessions: RestSessions = sessions, sender_of: Any = sender_of) -> None:
                sender = sender_of(i)
                body = {"sender": sender, "message": TEXTS[i % len(TEXTS)], "message_id": f"{i}"}
                async with http.post(
                    f"{base}/webhooks/rest/webhook", json=body, headers=sessions.headers(sender)
                ) as response:
                    response.raise_for_status()
                    await response.read()

            rows.append(
                (
                    f"Gateway full turn, {concurrency:>2} senders",
                    await measure(f"gateway c={concurrency}", total, concurrency, turn),
                )
            )
    return rows


HOSTILE = {
    "市 × 4000": "市" * 4000,
    "市区路 × 1333": "市区路" * 1333,
    "去 × 4000": "去" * 4000,
    "1 × 4000": "1" * 4000,
    "<div × 1000": "<div" * 1000,
    "newlines × 3999": "\n" * 3999 + "x",
}


async def bench_hostile(base: str) -> list[tuple[str, float, float]]:
    """(label, turn ms, slowest /health ms during the turn) per hostile message."""
    rows = []
    async with aiohttp.ClientSession() as http:
        for label, text in HOSTILE.items():
            done = asyncio.Event()
            slowest = 0.0

            async def watch(done: asyncio.Event = done) -> None:
                nonlocal slowest
                while not done.is_set():
                    started = time.perf_counter()
                    async with http.get(f"{base}/health") as response:
                        await response.read()
                    slowest = max(slowest, time.perf_counter() - started)
                    await asyncio.sleep(0.005)

            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0.02)
            started = time.perf_counter()
            body = {"sender": f"hostile-{os.urandom(4).hex()}", "message": text}
            async with http.post(f"{base}/webhooks/rest/webhook", json=body) as response:
                await response.read()
            took = time.perf_counter() - started
            done.set()
            await watcher
            rows.append((label, took * 1000, slowest * 1000))
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=400, help="gateway turns per measurement")
    parser.add_argument("--parses", type=int, default=600, help="Rasa parses per measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        var = Path(tmp)
        project = NluProject(var_dir=var)
        print("starting MongoDB (nx-27017) and Rasa servers …", file=sys.stderr)
        mongo = EmbeddedMongo(var / "mongo")
        rasa = EmbeddedRasaServer(project, project.train())
        await asyncio.gather(mongo.start(), rasa.start())
        port = free_port()
        env = dict(
            os.environ,
            MONGODB_URI=mongo.uri,
            RASA_URL=rasa.url,
            RASA_TOKEN=rasa.token,
            GATEWAY_VAR_DIR=str(var / "gateway"),
        )
        gateway = await asyncio.create_subprocess_exec(
            sys.executable,
            str(REPO_ROOT / "run.py"),
            "serve",
            "--port",
            str(port),
            "--seed-orders",
            str(REPO_ROOT / "shop" / "demo_orders.json"),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(base)
            steal_before, total_before = cpu_times()
            rows = await bench_rasa(rasa, args.parses)
            rows += await bench_gateway(base, args.turns)
            stages = await turn_stages(base)  # before the hostile messages, whose turns are not typical
            hostile = await bench_hostile(base)
            steal_after, total_after = cpu_times()
        finally:
            gateway.terminate()
            await gateway.wait()
            await rasa.stop()
            await mongo.stop()

    print(f"\n{'measurement':<34} {'n':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
    for label, r in rows:
        print(f"{label:<34} {r['n']:>5.0f} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['errors']:>7.0f}")
    print(f"\n{'where a gateway turn goes (all turns above)':<44} {'p50 ms':>8} {'p95 ms':>8}")
    for name, (p50, p95) in stages.items():
        print(f"{name:<44} {p50:>8.1f} {p95:>8.1f}")
    print(f"\n{'hostile message (REST turn)':<34} {'turn ms':>8} {'slowest /health ms':>19}")
    for label, turn_ms, health_ms in hostile:
        print(f"{label:<34} {turn_ms:>8.1f} {health_ms:>19.1f}")
    steal = 100 * (steal_after - steal_before) / max(1, total_after - total_before)
    print(
        f"\n{os.cpu_count()} CPUs (CPU steal during the run: {steal:.1f} %); embedded nx-27017 store; "
        "one Rasa server; one gateway process."
    )


async def turn_stages(base: str) -> dict[str, tuple[float, float]]:
    """The gateway's own stage timings and store round trips per turn (``GET /metrics``)."""
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
        text = await response.text()
    quantiles: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("aftersales_turn_stage_seconds{"):
            labels, value = line[len("aftersales_turn_stage_seconds{") :].split("} ")
            fields = dict(part.split("=") for part in labels.split(","))
            stage = fields["stage"].strip('"')
            quantiles.setdefault(f"stage {stage}", {})[fields["quantile"].strip('"')] = float(value) * 1000
        elif line.startswith("aftersales_turn_store_round_trips{"):
            labels, value = line[len("aftersales_turn_store_round_trips{") :].split("} ")
            quantile = labels.split("=")[1].strip('"')
            quantiles.setdefault("store round trips (p50, max)", {})[quantile] = float(value)
    return {
        name: (values.get("0.5", 0.0), values.get("0.95", values.get("1.0", 0.0))) for name, values in quantiles.items()
    }


async def wait_healthy(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("gateway did not become healthy")


if __name__ == "__main__":
    asyncio.run(main())
