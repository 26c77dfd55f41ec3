"""Settings of photo OCR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from configuration import setting
from media_ocr.engines import ENGINE_NAMES


@dataclass(frozen=True, slots=True)
class OcrSettings:
    """Reading photos customers send (return slips, waybills, invoices)."""

    title: ClassVar[str] = "Photo OCR"
    engine: str = setting("combined", env="OCR_ENGINE", help="OCR engine", choices=ENGINE_NAMES)
    workers: int = setting(1, env="OCR_WORKERS", help="OCR worker processes (each ~300 MB and a core while reading)",
                           minimum=1)  # fmt: skip
    threads: int = setting(1, env="OCR_THREADS", minimum=1, help="recogniser threads per worker")
    intake: bool = setting(
        True,
        env="OCR_INTAKE",
        help="read customers' photos on after-sales requests and tickets as they arrive (return slips are matched "
        "against their request); 0: only when asked",
    )
