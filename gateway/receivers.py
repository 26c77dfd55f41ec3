"""Receiving that one gateway process at a time must do: Telegram's getUpdates, an IMAP mailbox.

For each channel whose :meth:`~channels.base.InputChannel.receives_exclusively` is true, the
process holding the store lease ``receive:<channel>`` runs the channel's exclusive part; the
others wait and take over when the holder stops (it hands the lease back) or dies (the lease
runs out). Knows channels only through ``InputChannel`` and the store only through ``Leases``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from channels.base import InboundHandler, InputChannel
from store.leases import HeldLease, Leases

log = logging.getLogger(__name__)


class ExclusiveReceivers:
    def __init__(
        self,
        leases: Leases,
        channels: list[InputChannel],
        handler_for: Callable[[InputChannel], InboundHandler],
        *,
        lease_seconds: float = 15.0,
    ) -> None:
        self.channels = [channel for channel in channels if channel.receives_exclusively()]
        self.handler_for = handler_for
        self.lease_seconds = lease_seconds
        self._leases = {c.name: HeldLease(leases, f"receive:{c.name}", lease_seconds) for c in self.channels}
        self._running: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def running(self) -> set[str]:
        """The channels whose exclusive part runs in this process now."""
        return set(self._running)

    async def start(self) -> None:
        for channel in self.channels:
            await self._step(channel)  # at once, so a lone process receives from its first second
            self._tasks.append(asyncio.create_task(self._keep(channel), name=f"receive-{channel.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for channel in self.channels:
            await self._stop_channel(channel)
            with contextlib.suppress(Exception):  # the store is down: the lease runs out instead
                await self._leases[channel.name].release()

    async def _keep(self, channel: InputChannel) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self._step(channel)

    async def _step(self, channel: InputChannel) -> None:
        try:
            holding = await self._leases[channel.name].check()
        except Exception as exc:  # cannot tell: stop, so two processes never receive at once
            log.warning("checking the %s receiving lease failed: %s", channel.name, exc)
            holding = False
        if holding and channel.name not in self._running:
            log.info("this process now receives %s (exclusive)", channel.name)
            await channel.start_exclusive(self.handler_for(channel))
            self._running.add(channel.name)
        elif not holding and channel.name in self._running:
            log.info("another process receives %s now", channel.name)
            await self._stop_channel(channel)

    async def _stop_channel(self, channel: InputChannel) -> None:
        if channel.name in self._running:
            self._running.discard(channel.name)
            try:
                await channel.stop_exclusive()
            except Exception:
                log.exception("stopping the %s channel's exclusive receiving failed", channel.name)
