"""Real gateway processes (``run.py serve``) for tests that kill, restart or run several."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.cluster import GatewayProcess
from tests.conftest import DEMO_ORDERS


def serve_process(env: dict[str, str], port: int, log: Path) -> GatewayProcess:
    """A real ``run.py serve`` with the demo orders; ``start()`` waits until it is healthy."""
    return GatewayProcess(0, port, env, ["--seed-orders", str(DEMO_ORDERS)], log)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out waiting")
