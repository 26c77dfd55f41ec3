"""Fault: the media store is full. Through a real gateway (app IM and Telegram against the Bot API
stand-in), once by the configured quota (``MEDIA_QUOTA_BYTES``) and once by a disk that is
really full (a 64 KiB tmpfs mounted over the media root, so the write fails with ENOSPC).

The app's upload is refused with 507 ``storage_full`` and the customer's text still goes
through; a Telegram photo is dropped, its caption stored and answered, and the customer told
the photo could not be kept, once. No temporary file is left behind, nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from backoffice.settings import BackofficeSettings
from channels.app_im import UPLOAD_PATH, WS_PATH
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from store.media import MediaRejected, MediaStore
from store.mongo import ConversationStore
from store.settings import MediaSettings
from tests.faults_support import (
    app_query,
    assert_every_inbound_answered,
    assert_stored_once,
    assert_telegram_sent_once_in_order,
    next_frame,
)
from tests.helpers import wait_for
from tests.telegram_standin import TOKEN, BotApiStandIn, private_update

APP_SECRET = "media-full-app-secret"
TELEGRAM_SECRET = "media-full-telegram-secret"
CHAT = 660021
TMPFS_BYTES = 64 * 1024


def jpeg(size: int, seed: int) -> bytes:
    """A JPEG-signed blob of ``size`` bytes, different per ``seed`` (so not deduplicated)."""
    head = b"\xff\xd8\xff\xe0" + seed.to_bytes(4, "big")
    return head + bytes((seed + i) % 251 for i in range(size - len(head)))


def stored_files(root: Path) -> list[str]:
    return [path.name for path in root.rglob("*") if path.is_file()]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A media root on a 64 KiB tmpfs: writes past it fail with ENOSPC, as on a full disk."""
    root = tmp_path / "var" / "media"
    root.mkdir(parents=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) here to make a small file system")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES // 1024}k", "tmpfs", str(root)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)


async def test_a_full_disk_is_refused_as_storage_full_and_leaves_no_temp_file(full_disk: Path) -> None:
    media = MediaStore(full_disk, max_bytes=1024 * 1024)  # no quota: only the disk says no
    small = await media.save(jpeg(2000, 1), "image/jpeg")
    with pytest.raises(MediaRejected) as refused:
        await media.save(jpeg(TMPFS_BYTES * 2, 2), "image/jpeg")
    assert refused.value.reason == "storage_full"
    assert stored_files(full_disk) == [small.media_id]
    assert shutil.disk_usage(full_disk).used < TMPFS_BYTES // 2, "the half-written file was removed"


async def test_the_quota_is_counted_across_the_root_and_kept_up_to_date(tmp_path: Path) -> None:
    root = tmp_path / "media"
    before = MediaStore(root, quota_bytes=5000)
    await before.save(jpeg(3000, 1), "image/jpeg")
    restarted = MediaStore(root, quota_bytes=5000)  # another process, or after a restart: it scans
    assert restarted.used_bytes() == 3000
    await restarted.save(jpeg(3000, 1), "image/jpeg")  # the same bytes again take no room
    with pytest.raises(MediaRejected) as refused:
        await restarted.save(jpeg(2500, 2), "image/jpeg")
    assert refused.value.reason == "storage_full" and restarted.used_bytes() == 3000
    await restarted.save(jpeg(2000, 3), "image/jpeg")
    assert restarted.used_bytes() == 5000


@pytest.mark.parametrize("full_by", ["quota", "disk"])
async def test_a_full_media_store_refuses_photos_but_keeps_every_message(
    full_by: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    store: ConversationStore,
    nlu: NluClient,
    standin: BotApiStandIn,
) -> None:
    if full_by == "disk":
        request.getfixturevalue("full_disk")
        quota, big = None, TMPFS_BYTES * 2
    else:
        quota, big = 4000, 3000
    settings = (
        Settings(
            gateway=GatewaySettings(var_dir=tmp_path / "var"),
            media=MediaSettings(max_bytes=512 * 1024, quota_bytes=quota),
            outbox=OutboxSettings(poll_interval=0.05, base_delay=0.05),
            backoffice=BackofficeSettings(sweep_seconds=0),
        )
        .with_channel("app", secret=APP_SECRET)
        .with_channel("telegram", bot_token=TOKEN, webhook_secret=TELEGRAM_SECRET, api_base_url=standin.base_url)
    )
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    user = f"app-{full_by}"
    async with TestClient(TestServer(build_app(gateway))) as http:
        query = app_query(APP_SECRET, user)
        upload = f"{UPLOAD_PATH}?{query}"
        small = await http.post(upload, data=jpeg(1500, 7), headers={"Content-Type": "image/jpeg"})
        assert small.status == 200, await small.text()
        kept = (await small.json())["media_id"]
        refused = await http.post(upload, data=jpeg(big, 8), headers={"Content-Type": "image/jpeg"})
        assert refused.status == 507
        assert (await refused.json())["error"]["code"] == "storage_full"

        async with http.ws_connect(f"{WS_PATH}?{query}") as socket:
            # The app shows the refusal; the customer sends the text, with the photo that was kept.
            await socket.send_json({"type": "message", "client_id": "m1", "text": "包装破损", "attachments": [
                {"media_id": kept}]})  # fmt: skip
            assert (await next_frame(socket, "ack"))["client_id"] == "m1"
            await socket.send_json({"type": "message", "client_id": "m2", "text": "第二张照片传不上去"})
            assert (await next_frame(socket, "ack"))["client_id"] == "m2"

        standin.add_file("too-much", jpeg(big, 9))
        photo = [{"file_id": "too-much", "file_unique_id": "tm", "width": 4000, "height": 3000}]
        update = private_update(8101, CHAT, photo=photo, caption="查一下订单202611150001，收到的东西坏了")
        for _ in range(2):  # Telegram retried the update: still one message, one notice
            response = await http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: TELEGRAM_SECRET})
            assert response.status == 200, await response.text()

        async def telegram_answered() -> bool:
            await asyncio.sleep(0.02)
            return await store.count_messages(channel="telegram", direction="out", delivered=False) == 0 and any(
                "照片暂时无法保存" in s["text"] for s in standin.sent
            )

        await wait_for(telegram_answered, 15)

    stored = await store.messages.find_one({"channel": "telegram", "direction": "in"})
    assert stored is not None and stored["text"].startswith("查一下订单202611150001") and stored["attachments"] == []
    assert stored["metadata"]["rejected_attachments"][0]["reason"] == "storage_full"
    assert sum("照片暂时无法保存" in s["text"] for s in standin.sent) == 1
    with_photo = await store.messages.find_one({"channel": "app", "channel_message_id": f"{user}:m1"})
    assert with_photo is not None and [a["media_id"] for a in with_photo["attachments"]] == [kept]

    await assert_stored_once(store, "app", [f"{user}:m1", f"{user}:m2"])
    await assert_stored_once(store, "telegram", ["8101"])
    await assert_every_inbound_answered(store, "app")
    await assert_every_inbound_answered(store, "telegram")
    await assert_telegram_sent_once_in_order(store, standin)
    assert list(settings.media_root.rglob(".incoming-*")) == [], "no temporary file left behind"
