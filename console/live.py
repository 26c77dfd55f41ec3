"""The console's live feed: changes to messages, conversations, tickets, notes and presence,
read from MongoDB change streams so that every gateway process sees every change, whichever
process wrote it. Each process fans the changes out to its own websocket subscribers.

Streams that fail (store restart) are reopened by :func:`store.changes.follow_changes`.
Subscribers with a full queue lose the oldest changes rather
than slow everyone down: pages reload their lists on reconnect, so nothing stays wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from store.changes import follow_changes

log = logging.getLogger(__name__)

WATCHED = ("messages", "conversations", "tickets", "conversation_notes", "console_presence")
QUEUE_SIZE = 1000

_MESSAGE_FIELDS = (
    "conversation_id", "customer_id", "channel", "direction", "text", "author", "attachments", "created_at",
    "delivered", "read", "failed",
)  # fmt: skip
_CONVERSATION_FIELDS = (
    "customer_id", "channel", "state", "agent_id", "queue", "handoff_reason", "handed_off_at", "queue_ticket",
    "updated_at",
)  # fmt: skip
_TICKET_FIELDS = ("status", "queue", "assignee", "priority", "customer_id", "submitted_by", "version")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def change_event(collection: str, change: Mapping[str, Any]) -> dict[str, Any] | None:
    """One change-stream document as a console event, or None if it is of no interest."""
    operation = change.get("operationType")
    key = (change.get("documentKey") or {}).get("_id")
    doc = change.get("fullDocument") or {}
    if collection == "console_presence":
        conversation_id = doc.get("conversation_id") or (str(key).split("|", 1)[0] if key else None)
        return {"type": "presence", "conversation_id": conversation_id} if conversation_id else None
    if operation not in ("insert", "update", "replace") or not doc:
        return None
    if collection == "messages":
        return {"type": "message", "id": str(key), **{k: _plain(doc.get(k)) for k in _MESSAGE_FIELDS},
                "new": operation == "insert"}  # fmt: skip
    if collection == "conversations":
        return {"type": "conversation", "id": str(key), **{k: _plain(doc.get(k)) for k in _CONVERSATION_FIELDS}}
    if collection == "tickets":
        # The ticket's own type goes under ticket_type: as "type" it overwrote the event's kind.
        return {"type": "ticket", "id": str(key), "ticket_type": _plain(doc.get("type")),
                **{k: _plain(doc.get(k)) for k in _TICKET_FIELDS}}  # fmt: skip
    if collection == "conversation_notes" and operation == "insert":
        return {"type": "note", "id": str(key), "conversation_id": doc.get("conversation_id"),
                "author": doc.get("author"), "author_name": doc.get("author_name"), "text": doc.get("text"),
                "created_at": _plain(doc.get("created_at"))}  # fmt: skip
    return None


class LiveFeed:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: dict[str, asyncio.Event] = {name: asyncio.Event() for name in WATCHED}

    async def start(self) -> None:
        if any(task.done() for task in self._tasks):
            self._tasks = []
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._watch(name), name=f"live-{name}") for name in WATCHED]
        # Changes are seen from the moment each stream is open: wait for that, briefly.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self._ready.values())), timeout=5)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue of every change from now on; the streams open with the first subscriber."""
        await self.start()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    async def _watch(self, name: str) -> None:
        async def on_change(change: Mapping[str, Any]) -> None:
            event = change_event(name, change)
            if event is not None:
                self.publish(event)

        await follow_changes(self.db, name, on_change, opened=self._ready[name])
