"""Demo staff for ``make run``: an admin, a dispatcher, a reviewer per queue, two front-line
agents and a quality reviewer, online, with API tokens and console passwords made once per
installation and kept in ``var/demo-staff.json`` (readable by its owner only). Never used unless
``serve --demo-staff`` asks for it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backoffice.permissions import Role
from backoffice.staff import StaffDirectory, StaffMember, new_token

DEMO_STAFF: tuple[dict[str, Any], ...] = (
    {"id": "admin", "name": "系统管理员", "roles": [Role.ADMIN]},
    {"id": "dispatch", "name": "调度 周敏", "roles": [Role.DISPATCHER]},
    {"id": "li.logistics", "name": "物流组 李娜", "roles": [Role.REVIEWER], "skill_groups": ["logistics"]},
    {"id": "wang.product", "name": "商品组 王强", "roles": [Role.REVIEWER], "skill_groups": ["product"]},
    {"id": "zhao.finance", "name": "财务组 赵磊", "roles": [Role.REVIEWER], "skill_groups": ["finance", "general"]},
    {"id": "chen.complaints", "name": "投诉组 陈静", "roles": [Role.REVIEWER], "skill_groups": ["complaints"]},
    {"id": "liu.cs", "name": "一线客服 刘洋", "roles": [Role.CUSTOMER_SERVICE]},
    {"id": "he.cs", "name": "一线客服 何芳", "roles": [Role.CUSTOMER_SERVICE]},
    {"id": "sun.qa", "name": "质检 孙悦", "roles": [Role.QUALITY]},
)


@dataclass(frozen=True, slots=True)
class DemoAccount:
    member: StaffMember
    token: str
    password: str


def _new_password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


def _credentials(path: Path) -> dict[str, dict[str, str]]:
    """``{staff_id: {"token", "password"}}``, kept across runs; missing entries are added."""
    stored: dict[str, Any] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    credentials = {}
    for member in DEMO_STAFF:
        entry = stored.get(member["id"])
        if isinstance(entry, str):  # the earlier format: the token alone
            entry = {"token": entry}
        entry = dict(entry) if isinstance(entry, dict) else {}
        entry.setdefault("token", new_token())
        entry.setdefault("password", _new_password())
        credentials[member["id"]] = {"token": str(entry["token"]), "password": str(entry["password"])}
    if credentials != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(credentials, out, indent=2)
    return credentials


async def ensure_demo_staff(staff: StaffDirectory, var_dir: Path) -> list[DemoAccount]:
    credentials = _credentials(var_dir / "demo-staff.json")
    out = []
    for member in DEMO_STAFF:
        fields = {k: v for k, v in member.items() if k != "id"}
        given = credentials[member["id"]]
        account = await staff.ensure(member["id"], given["token"], online=True, **fields)
        if await staff.check_password(member["id"], given["password"]) is None:
            await staff.set_password(member["id"], given["password"])
        out.append(DemoAccount(account, given["token"], given["password"]))
    return out
