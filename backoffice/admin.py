"""Admin actions: configuration (queues, routing, SLAs, decision rules) and staff accounts
(roles, skill groups, capacity, tokens). Each is permission-checked and written to the audit log
with who did it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from backoffice.audit import AuditLog
from backoffice.config import KINDS, ConfigStore
from backoffice.ledger import canonical_json
from backoffice.permissions import Actor, Permission, Role
from backoffice.staff import StaffDirectory, StaffMember
from backoffice.ticket_record import new_entry_id


def _at() -> str:
    return datetime.now(UTC).isoformat()


class AdminActions:
    def __init__(self, config: ConfigStore, staff: StaffDirectory, audit: AuditLog) -> None:
        self.config = config
        self.staff = staff
        self.audit = audit

    async def read_config(self, actor: Actor, kind: str) -> tuple[dict[str, Any], int]:
        actor.require(Permission.CONFIGURE, "reading the configuration")
        _known(kind)
        return await self.config.current(kind)

    async def save_config(
        self, actor: Actor, kind: str, document: Any, *, expected_version: int | None = None
    ) -> tuple[dict[str, Any], int]:
        actor.require(Permission.CONFIGURE, "changing the configuration")
        _known(kind)
        version = await self.config.save(kind, document, actor=actor.name, expected_version=expected_version)
        saved, _ = await self.config.current(kind)
        await self.audit.record(
            entry_id=new_entry_id(),
            kind="config_changed",
            subject=f"config:{kind}",
            actor=actor.name,
            at=_at(),
            data={"version": version, "sha256": hashlib.sha256(canonical_json(saved)).hexdigest()},
        )
        return saved, version

    async def list_staff(self, actor: Actor) -> list[StaffMember]:
        if not (actor.has(Permission.MANAGE_USERS) or actor.has(Permission.ASSIGN)):
            actor.require(Permission.MANAGE_USERS, "listing staff")
        return await self.staff.all()

    async def create_staff(
        self,
        actor: Actor,
        staff_id: str,
        *,
        name: str,
        roles: list[Role],
        skill_groups: list[str],
        capacity: int,
    ) -> tuple[StaffMember, str]:
        actor.require(Permission.MANAGE_USERS, "creating staff accounts")
        await self._known_queues(skill_groups)
        member, token = await self.staff.create(
            staff_id, name=name, roles=roles, skill_groups=skill_groups, capacity=capacity
        )
        await self._audit_staff(actor, member, "created")
        return member, token

    async def update_staff(self, actor: Actor, staff_id: str, changes: dict[str, Any]) -> StaffMember:
        own_status = staff_id == actor.id and set(changes) <= {"online", "language"}
        if not own_status:
            actor.require(Permission.MANAGE_USERS, "changing staff accounts")
        if "skill_groups" in changes:
            await self._known_queues(changes["skill_groups"])
        member = await self.staff.update(staff_id, **changes)
        if not own_status:
            await self._audit_staff(actor, member, "changed", changed=sorted(changes))
        return member

    async def issue_token(self, actor: Actor, staff_id: str) -> str:
        actor.require(Permission.MANAGE_USERS, "issuing tokens")
        token = await self.staff.issue_token(staff_id)
        member = await self.staff.get(staff_id)
        assert member is not None
        await self._audit_staff(actor, member, "token_issued")
        return token

    async def revoke_tokens(self, actor: Actor, staff_id: str) -> int:
        """End every API token of the account (``KeyError`` if no such account)."""
        actor.require(Permission.MANAGE_USERS, "revoking tokens")
        ended = await self.staff.revoke_tokens(staff_id)
        member = await self.staff.get(staff_id)
        assert member is not None
        await self._audit_staff(actor, member, "tokens_revoked", count=ended)
        return ended

    async def set_password(self, actor: Actor, staff_id: str, password: str) -> None:
        """An admin sets someone's console password (``WeakPassword`` if weak, ``KeyError`` if no
        such account); the caller ends that member's sessions."""
        actor.require(Permission.MANAGE_USERS, "setting staff passwords")
        await self.staff.set_password(staff_id, password)
        member = await self.staff.get(staff_id)
        assert member is not None
        await self._audit_staff(actor, member, "password_set")

    async def change_own_password(self, actor: Actor, current: str, password: str) -> bool:
        """A member replaces their own password; False (nothing changed) if ``current`` is wrong."""
        if await self.staff.check_password(actor.id, current) is None:
            return False
        await self.staff.set_password(actor.id, password)
        member = await self.staff.get(actor.id)
        assert member is not None
        await self._audit_staff(actor, member, "password_changed")
        return True

    async def _known_queues(self, queues: list[str]) -> None:
        known = (await self.config.tickets()).queues
        unknown = [q for q in queues if q not in known]
        if unknown:
            raise ValueError(f"unknown queues {unknown} (queues: {', '.join(known)})")

    async def _audit_staff(self, actor: Actor, member: StaffMember, what: str, **extra: Any) -> None:
        await self.audit.record(
            entry_id=new_entry_id(),
            kind=f"staff_{what}",
            subject=f"staff:{member.id}",
            actor=actor.name,
            at=_at(),
            data={
                "roles": [r.value for r in member.roles],
                "skill_groups": member.skill_groups,
                "capacity": member.capacity,
                "disabled": member.disabled,
                **extra,
            },
        )


def _known(kind: str) -> None:
    if kind not in KINDS:
        raise KeyError(kind)
