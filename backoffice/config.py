"""Backoffice configuration: queues and routing, SLA calendar and targets, automatic-decision
rules. Defaults ship as YAML in ``backoffice/config/``; admins replace them through the API and
the stored version (collection ``backoffice_config``) wins, read again within seconds by every
gateway process.

Validation names the field that is wrong (``targets.complaint.normal.first_response: …``), so a
bad edit is refused whole and nothing half-applies.
"""

from __future__ import annotations

import re
import time as _time
from datetime import date, time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backoffice.lifecycle import TicketType
from backoffice.priority import Priority
from backoffice.sla import WEEKDAYS, BusinessHours, Targets
from errors import Conflict, UserError

CONFIG_DIR = Path(__file__).resolve().parent / "config"
CACHE_SECONDS = 5.0
_HOURS = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class ConfigInvalid(UserError):
    """A configuration document that does not validate; ``problems`` are ``path: why`` lines."""

    code = "invalid_config"

    def __init__(self, kind: str, problems: list[str]) -> None:
        super().__init__(f"invalid {kind} configuration: " + "; ".join(problems), problems=problems)
        self.kind = kind
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- queues and routing ---------------------------------------------------------------------


class Routing(_Strict):
    by_category: dict[str, str] = Field(default_factory=dict)
    by_type: dict[TicketType, str] = Field(default_factory=dict)
    default_queue: str


class HistoryRules(_Strict):
    window_days: int = Field(90, ge=1, le=730)
    customer_claims: int = Field(3, ge=2)
    sku_customers: int = Field(3, ge=2)
    sku_window_days: int = Field(30, ge=1, le=730)


class TicketsConfig(_Strict):
    queues: dict[str, dict[str, str]]
    routing: Routing
    auto_assign: list[str] = Field(default_factory=list)
    history: HistoryRules = Field(default_factory=HistoryRules)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _queues_exist(self) -> TicketsConfig:
        known = set(self.queues)
        for where, name in [
            *((f"routing.by_category.{k}", v) for k, v in self.routing.by_category.items()),
            *((f"routing.by_type.{k.value}", v) for k, v in self.routing.by_type.items()),
            ("routing.default_queue", self.routing.default_queue),
            *((f"auto_assign[{i}]", v) for i, v in enumerate(self.auto_assign)),
        ]:
            if name not in known:
                raise ValueError(f"{where}: unknown queue {name!r} (queues: {', '.join(sorted(known))})")
        return self

    def queue_for(self, ticket_type: TicketType, category: str) -> str:
        return (
            self.routing.by_category.get(category)
            or self.routing.by_type.get(ticket_type)
            or self.routing.default_queue
        )

    def queue_label(self, queue: str, language: str = "zh") -> str:
        labels = self.queues.get(queue, {})
        return labels.get(language) or labels.get("zh") or queue


# -- SLA ------------------------------------------------------------------------------------


class ClockTargets(_Strict):
    first_response: int | None = Field(None, ge=1)
    next_response: int | None = Field(None, ge=1)
    resolution: int | None = Field(None, ge=1)


class CalendarConfig(_Strict):
    timezone: str = "Asia/Shanghai"
    days: dict[str, str]
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)

    @field_validator("days")
    @classmethod
    def _days(cls, value: dict[str, str]) -> dict[str, str]:
        for day, spans in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day}: not one of {', '.join(WEEKDAYS)}")
            for span in str(spans).split(","):
                span = span.strip()
                if span and not _HOURS.match(span):
                    raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM")
        if not any(str(v).strip() for v in value.values()):
            raise ValueError("no business hours on any day")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def calendar(self) -> BusinessHours:
        weekly: list[tuple[tuple[time, time], ...]] = []
        for day in WEEKDAYS:
            spans: list[tuple[time, time]] = []
            for span in str(self.days.get(day, "")).split(","):
                span = span.strip()
                if not span:
                    continue
                start, end = span.split("-")
                spans.append((_clock(start), _clock(end)))
            weekly.append(tuple(spans))
        return BusinessHours(self.timezone, tuple(weekly), frozenset(self.holidays), frozenset(self.workdays))


def _clock(value: str) -> time:
    hour, minute = (int(p) for p in value.split(":"))
    return time(0) if hour == 24 else time(hour, minute)


class Escalation(_Strict):
    raise_to: Priority = Priority.HIGH


class SlaConfig(_Strict):
    business_hours: CalendarConfig
    warn_at: float = Field(0.8, gt=0, lt=1)
    targets: dict[str, dict[Priority, ClockTargets]]
    escalation: Escalation = Field(default_factory=Escalation)
    auto_close_after_hours: float = Field(72, gt=0)

    @model_validator(mode="after")
    def _defaults_complete(self) -> SlaConfig:
        default = self.targets.get("default")
        if default is None:
            raise ValueError("targets.default is required")
        for level in Priority:
            if level not in default:
                raise ValueError(f"targets.default.{level.value} is required")
        for name in self.targets:
            if name != "default" and name not in {t.value for t in TicketType}:
                raise ValueError(f"targets.{name}: not a ticket type")
        return self

    def targets_for(self, ticket_type: TicketType, priority: Priority) -> Targets:
        base = self.targets["default"][priority]
        override = self.targets.get(ticket_type.value, {}).get(priority)
        merged = base.model_dump()
        if override is not None:
            merged.update({k: v for k, v in override.model_dump().items() if v is not None})
        return Targets(**merged)


# -- automatic decisions --------------------------------------------------------------------


class RuleConditions(_Strict):
    types: list[TicketType] | None = None
    categories: list[str] | None = None
    reasons: list[str] | None = None
    amount_max: float | None = Field(None, ge=0)
    amount_min: float | None = Field(None, ge=0)
    days_since_delivery_max: int | None = Field(None, ge=0)
    customer_tiers: list[str] | None = None
    excluded_item_categories: list[str] | None = None
    max_claims_in_window: int | None = Field(None, ge=0)
    requires_evidence: bool | None = None
    without_flags: list[str] | None = None


class DecisionRule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    description: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    when: RuleConditions
    decide: Literal["approve", "reject"]


class RulesConfig(_Strict):
    rules: list[DecisionRule]

    @model_validator(mode="after")
    def _unique(self) -> RulesConfig:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise ValueError(f"rules[{i}].id: {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


# -- loading and storing --------------------------------------------------------------------

KINDS: dict[str, tuple[type[BaseModel], str]] = {
    "tickets": (TicketsConfig, "tickets.yml"),
    "sla": (SlaConfig, "sla.yml"),
    "rules": (RulesConfig, "decision_rules.yml"),
}


def validate(kind: str, document: Any) -> BaseModel:
    model, _ = KINDS[kind]
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = ".".join(str(p) for p in error["loc"]) or "(document)"
            problems.append(f"{path}: {error['msg']}")
        raise ConfigInvalid(kind, problems) from None


def load_default(kind: str, directory: Path = CONFIG_DIR) -> BaseModel:
    _, filename = KINDS[kind]
    path = directory / filename
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigInvalid(kind, [f"{path}: {exc}"]) from None
    return validate(kind, document)


class ConfigStore:
    """The configuration in force: the stored version if an admin saved one, else the default file."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]] | None, directory: Path = CONFIG_DIR) -> None:
        self.collection = db["backoffice_config"] if db is not None else None
        self.defaults = {kind: load_default(kind, directory) for kind in KINDS}
        self._cache: dict[str, tuple[float, BaseModel, int]] = {}

    async def _get(self, kind: str) -> tuple[BaseModel, int]:
        cached = self._cache.get(kind)
        if cached is not None and _time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1], cached[2]
        value, version = self.defaults[kind], 0
        if self.collection is not None:
            doc = await self.collection.find_one({"_id": kind})
            if doc is not None:
                value, version = validate(kind, doc["document"]), int(doc["version"])
        self._cache[kind] = (_time.monotonic(), value, version)
        return value, version

    async def tickets(self) -> TicketsConfig:
        value, _ = await self._get("tickets")
        assert isinstance(value, TicketsConfig)
        return value

    async def sla(self) -> SlaConfig:
        value, _ = await self._get("sla")
        assert isinstance(value, SlaConfig)
        return value

    async def rules(self) -> RulesConfig:
        value, _ = await self._get("rules")
        assert isinstance(value, RulesConfig)
        return value

    async def current(self, kind: str) -> tuple[dict[str, Any], int]:
        value, version = await self._get(kind)
        return value.model_dump(mode="json"), version

    async def save(self, kind: str, document: Any, *, actor: str, expected_version: int | None = None) -> int:
        """Validate and store a new version; returns it. ``expected_version`` guards against two
        admins overwriting each other (``ConfigConflict``)."""
        if self.collection is None:
            raise RuntimeError("no database to store configuration in")
        value = validate(kind, document)
        self._cache.pop(kind, None)
        doc = await self.collection.find_one({"_id": kind})
        stored_version = int(doc["version"]) if doc else 0
        if expected_version is not None and expected_version != stored_version:
            raise ConfigConflict(f"{kind} is at version {stored_version}, not {expected_version}")
        new_version = stored_version + 1
        body = {"document": value.model_dump(mode="json"), "version": new_version, "updated_by": actor}
        if doc is None:
            try:
                await self.collection.insert_one({"_id": kind, **body})
            except DuplicateKeyError:
                raise ConfigConflict(f"{kind} was changed meanwhile") from None
        else:
            result = await self.collection.update_one({"_id": kind, "version": stored_version}, {"$set": body})
            if result.matched_count != 1:
                raise ConfigConflict(f"{kind} was changed meanwhile")
        return new_version


class ConfigConflict(Conflict):
    """Someone saved the configuration since it was read."""
