"""``run.py audit verify`` and ``run.py backoffice …``: check the audit log, manage staff
accounts, run the sweep once.

The composition root hands in how to open the backoffice, so this module does not know how the
store is started.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict
from typing import Any

from backoffice.passwords import WeakPassword
from backoffice.permissions import Role
from backoffice.service import Backoffice
from backoffice.staff import StaffExists

OpenBackoffice = Callable[[], AbstractAsyncContextManager[Backoffice]]
PasswordSet = Callable[[Backoffice, str], Awaitable[int]]
"""Ends the member's signed-in sessions after a password change (the console's, which the
backoffice does not know); returns how many ended."""


def add_backoffice_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="check the hash-chained audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="AUDIT_COMMAND", required=True)
    verify = audit_commands.add_parser(
        "verify", help="recompute the chain and compare it with tickets and requests; exit 1 on any problem"
    )
    verify.add_argument("--head", help="a head hash published earlier (detects entries cut from the end)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")

    backoffice = commands.add_parser("backoffice", help="staff accounts and the ticket sweep")
    sub = backoffice.add_subparsers(dest="backoffice_command", metavar="BACKOFFICE_COMMAND", required=True)
    add = sub.add_parser("staff-add", help="create a staff account and print its token (shown once)")
    add.add_argument("staff_id")
    add.add_argument("--name", required=True)
    add.add_argument("--role", action="append", required=True, choices=[r.value for r in Role], dest="roles")
    add.add_argument("--skill", action="append", default=[], dest="skills", help="a queue (skill group)")
    add.add_argument("--capacity", type=int, default=10, help="open tickets held at once")
    sub.add_parser("staff-list", help="list staff accounts")
    token = sub.add_parser("staff-token", help="issue another token for an account")
    token.add_argument("staff_id")
    password = sub.add_parser(
        "staff-password", help="set an account's console password (read from stdin, not the command line)"
    )
    password.add_argument("staff_id")
    sub.add_parser("sweep", help="run the SLA / assignment / auto-close sweep once and print what it did")


async def run_backoffice_command(
    args: argparse.Namespace, open_backoffice: OpenBackoffice, on_password_set: PasswordSet | None = None
) -> int:
    async with open_backoffice() as backoffice:
        if args.command == "audit":
            report = await backoffice.audit.verify(expected_head=args.head)
            if args.json:
                print(json.dumps(report.as_dict(), ensure_ascii=False))
            else:
                state = "OK" if report.ok else "PROBLEMS FOUND"
                print(
                    f"audit log: {report.entries} entries, head {report.head}; checked {report.checked_tickets} "
                    f"tickets and {report.checked_requests} requests: {state}"
                )
                for problem in report.problems:
                    print(f"  - {problem}")
            return 0 if report.ok else 1
        command = args.backoffice_command
        if command == "staff-add":
            unknown = [s for s in args.skills if s not in (await backoffice.config.tickets()).queues]
            if unknown:
                print(f"error: unknown queues {unknown}", file=sys.stderr)
                return 2
            try:
                member, token = await backoffice.staff.create(
                    args.staff_id, name=args.name, roles=[Role(r) for r in args.roles], skill_groups=args.skills,
                    capacity=args.capacity,
                )  # fmt: skip
            except StaffExists as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(json.dumps({"staff": member.model_dump(mode="json"), "token": token}, ensure_ascii=False))
            return 0
        if command == "staff-list":
            for member in await backoffice.staff.all():
                roles = ",".join(r.value for r in member.roles)
                print(f"{member.id:20} {roles:28} {','.join(member.skill_groups):24} online={member.online}")
            return 0
        if command == "staff-token":
            try:
                print(await backoffice.staff.issue_token(args.staff_id))
            except KeyError:
                print(f"error: no staff member {args.staff_id}", file=sys.stderr)
                return 2
            return 0
        if command == "staff-password":
            # stdin, so the password is in neither the shell history nor the process list
            given = getpass.getpass("new password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
            try:
                await backoffice.staff.set_password(args.staff_id, given)
            except WeakPassword as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            except KeyError:
                print(f"error: no staff member {args.staff_id}", file=sys.stderr)
                return 2
            ended = await on_password_set(backoffice, args.staff_id) if on_password_set else 0
            print(f"password set for {args.staff_id}; {ended} signed-in sessions ended")
            return 0
        swept = await backoffice.monitor.sweep()
        print(json.dumps(asdict(swept), ensure_ascii=False))
        return 0
