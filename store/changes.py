"""Following a collection's changes through a MongoDB change stream, across store restarts.

Every gateway process follows the same streams, so a change written by any process reaches
all of them (the console's live feed, app IM delivery, waking the outbox). A stream that fails
(store restart, network) is reopened after a pause, resuming after the last change seen while
the server still has it, else from now. Must not know what the changes mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
IDLE_SECONDS = 0.05
"""Pause after a getMore that found nothing. MongoDB itself waits up to ``max_await_time_ms``
for a change before answering; nx-27017 answers at once, and pymongo's iterator would then ask
again in a tight loop (one stream per process kept that single-threaded server 100 % busy)."""
MAX_AWAIT_MS = 1000

ChangeHandler = Callable[[Mapping[str, Any]], Awaitable[None]]


def decoded(value: Any) -> Any:
    """A change's document with extended-JSON dates (``{"$date": ...}``, which nx-27017 puts in
    change events) turned into aware datetimes, as a find would return them."""
    if isinstance(value, Mapping):
        if set(value) == {"$date"}:
            raw = value["$date"]
            if isinstance(raw, int | float):
                return datetime.fromtimestamp(raw / 1000, UTC)
            if isinstance(raw, str):
                with contextlib.suppress(ValueError):
                    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            return raw
        return {k: decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decoded(v) for v in value]
    return value


async def follow_changes(
    db: AsyncDatabase[dict[str, Any]],
    collection: str,
    on_change: ChangeHandler,
    *,
    opened: asyncio.Event | None = None,
    on_reopen: Callable[[], Awaitable[None]] | None = None,
    full_document: str = "updateLookup",
    pipeline: list[dict[str, Any]] | None = None,
) -> None:
    """Call ``on_change`` for each change of ``collection`` until cancelled.

    ``pipeline`` filters on the server (e.g. inserts only). ``opened`` is set once the stream is
    open (changes from then on are seen) and after each failure; ``on_reopen`` runs after a
    stream was reopened, for callers that must look for what they may have missed. A handler's
    own failure is logged and does not stop the stream.
    """
    resume_after: Any = None
    interrupted = False
    while True:
        try:
            options: dict[str, Any] = {"full_document": full_document}
            if resume_after is not None:
                options["resume_after"] = resume_after
            async with await db[collection].watch(pipeline, max_await_time_ms=MAX_AWAIT_MS, **options) as stream:
                if opened is not None:
                    opened.set()
                if interrupted and on_reopen is not None:
                    interrupted = False
                    await on_reopen()
                while stream.alive:
                    change = await stream.try_next()
                    if change is None:
                        await asyncio.sleep(IDLE_SECONDS)
                        continue
                    resume_after = change.get("_id")
                    if change.get("fullDocument"):
                        change = {**change, "fullDocument": decoded(change["fullDocument"])}
                    try:
                        await on_change(change)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("handling a change of %s failed", collection)
        except asyncio.CancelledError:
            raise
        except PyMongoError as exc:
            if resume_after is not None and "resume" in str(exc).lower():
                resume_after = None  # the server no longer has that point: start from now
            log.warning("change stream on %s interrupted (%s); reopening", collection, exc)
            interrupted = True
            if opened is not None:
                opened.set()
            await asyncio.sleep(RETRY_SECONDS)
