"""The after-sales rules (return windows, excluded categories, automatic limits), from a YAML file.

Owns reading and validating ``aftersales_policy.yml``; knows nothing of dialogue or channels.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from errors import UserError
from shop.models import OrderItem

EVIDENCE_REASONS_DEFAULT = ("破损", "质量问题", "发错货", "描述不符", "过期变质")


class PolicyError(UserError):
    """The policy file cannot be used; the message names the file and the field."""

    code = "invalid_policy"


class AfterSalesPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    return_window_days: int = Field(default=7, ge=0, le=90)
    exchange_window_days: int = Field(default=15, ge=0, le=180)
    excluded_categories: dict[str, dict[str, str]] = Field(default_factory=dict)
    evidence_reasons: tuple[str, ...] = EVIDENCE_REASONS_DEFAULT
    auto_resend_max_amount: float = Field(default=50, ge=0)
    late_delivery_compensation: float = Field(default=5, ge=0)
    late_delivery_after_days: int = Field(default=5, ge=1)
    review_hours: int = Field(default=24, ge=1)
    refund_days: str = "1-3"
    """Working days from the payment centre accepting a refund to the money arriving."""
    ship_within_hours: int = Field(default=24, ge=1)
    """An order in stock leaves the warehouse within this long of payment."""
    transit_days: str = "2-4"
    """Days a parcel usually travels (the knowledge base's delivery_time answer gives the regions)."""
    resend_ship_days: str = "1-2"
    """Days after approval within which a resend leaves the warehouse."""
    pickup_slots: tuple[str, ...] = ("09:00-12:00", "12:00-14:00", "14:00-18:00", "18:00-21:00")
    urges_before_handoff: int = Field(default=2, ge=1)

    @classmethod
    def load(cls, path: Path | None = None) -> AfterSalesPolicy:
        """The given file, or the one shipped in the ``shop`` package."""
        try:
            if path is None:
                text = resources.files("shop").joinpath("aftersales_policy.yml").read_text(encoding="utf-8")
                where = "shop/aftersales_policy.yml"
            else:
                text = path.read_text(encoding="utf-8")
                where = str(path)
        except OSError as exc:
            raise PolicyError(f"{path}: {exc.strerror}") from exc
        try:
            raw: Any = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise PolicyError(f"{where}: invalid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: expected a mapping of settings")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PolicyError(f"{where}: {problems}") from exc

    def exclusion(self, item: OrderItem) -> str | None:
        """The excluded category this item falls in, or None when it may be returned without review."""
        category = item.category
        if category is None or category not in self.excluded_categories:
            return None
        if category == "hygiene" and not item.opened:
            return None
        return category

    def exclusion_label(self, category: str, language: str) -> str:
        labels = self.excluded_categories.get(category, {})
        return labels.get(language) or labels.get("zh") or category

    def needs_evidence(self, reason: str | None) -> bool:
        return reason in self.evidence_reasons
