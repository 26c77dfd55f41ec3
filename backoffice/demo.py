"""Demo staff for ``make run``: an admin, a dispatcher, a reviewer per queue and a front-line
agent, online, with tokens made once per installation and kept in ``var/demo-staff.json``
(readable by its owner only). Never used unless ``serve --demo-staff`` asks for it.
"""

from __future__ import annotations

import json
import os
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
)


def _tokens(path: Path) -> dict[str, str]:
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if all(member["id"] in stored for member in DEMO_STAFF):
            return {str(k): str(v) for k, v in stored.items()}
    tokens = {member["id"]: new_token() for member in DEMO_STAFF}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(tokens, out, indent=2)
    return tokens


async def ensure_demo_staff(staff: StaffDirectory, var_dir: Path) -> list[tuple[StaffMember, str]]:
    tokens = _tokens(var_dir / "demo-staff.json")
    out = []
    for member in DEMO_STAFF:
        fields = {k: v for k, v in member.items() if k != "id"}
        account = await staff.ensure(member["id"], tokens[member["id"]], online=True, **fields)
        out.append((account, tokens[member["id"]]))
    return out
