"""Settings of the store: the database and the media files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from configuration import setting


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The conversation store: a real MongoDB, or the embedded nx-27017 under the var directory."""

    title: ClassVar[str] = "Store"
    mongodb_uri: str | None = setting(
        None,
        env="MONGODB_URI",
        help="a real MongoDB (replica set or sharded cluster); unset: start nx-27017 under `var/mongo`",
        secret=True,
    )
    database: str = setting("aftersales", env="MONGODB_DATABASE", help="database name")


@dataclass(frozen=True, slots=True)
class MediaSettings:
    """Customers' photos and files, kept by content hash."""

    title: ClassVar[str] = "Media"
    media_dir: Path | None = setting(
        None, env="MEDIA_DIR", help="where attachments are kept (shared by every gateway process)",
        default_text="var/media",
    )  # fmt: skip
    max_bytes: int = setting(10 * 1024 * 1024, env="MEDIA_MAX_BYTES", help="largest accepted attachment", minimum=1)
    quota_bytes: int | None = setting(
        None,
        env="MEDIA_QUOTA_BYTES",
        help="the most bytes the media store keeps; past it, or on a full disk, attachments are refused as "
        "`storage_full` (the message is kept)",
        default_text="no quota (only the disk limits it)",
    )
