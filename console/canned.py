"""Canned replies for agents: a short list in zh and en with the customer's name and order
filled in (``console/canned_replies.yml``, or the file ``CANNED_REPLIES`` names)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from errors import UserError

DEFAULT_PATH = Path(__file__).with_name("canned_replies.yml")


class CannedRepliesInvalid(UserError):
    """A canned-replies file that cannot be used; the message says where and why."""

    code = "invalid_canned_replies"


@dataclass(frozen=True, slots=True)
class CannedReply:
    id: str
    texts: dict[str, str]

    def render(self, language: str, *, name: str | None = None, order_id: str | None = None) -> str:
        text = self.texts.get(language) or self.texts["zh"]
        if language == "en":
            who = f" {name}" if name else ""
            order = f"order {order_id}" if order_id else "your order"
        else:
            who = f" {name}" if name else ""
            order = f"订单 {order_id}" if order_id else "您的订单"
        return text.format(name=who, order_id=order)


class CannedReplies:
    def __init__(self, replies: list[CannedReply]) -> None:
        self.replies = replies

    @classmethod
    def load(cls, path: Path | None = None) -> CannedReplies:
        path = path or DEFAULT_PATH
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, list):
            raise CannedRepliesInvalid(f"{path}: expected a list of replies")
        replies = []
        for n, entry in enumerate(raw, start=1):
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("id"), str)
                or not isinstance(entry.get("zh"), str)
            ):
                raise CannedRepliesInvalid(f"{path}: reply {n} needs an id and a zh text")
            texts = {k: str(v) for k, v in entry.items() if k in ("zh", "en")}
            try:
                CannedReply(entry["id"], texts).render("zh")
                CannedReply(entry["id"], texts).render("en")
            except (KeyError, IndexError) as exc:
                raise CannedRepliesInvalid(f"{path}: reply {entry['id']} has an unknown placeholder {exc}") from None
            replies.append(CannedReply(entry["id"], texts))
        return cls(replies)

    def rendered(self, language: str, *, name: str | None = None, order_id: str | None = None) -> list[dict[str, str]]:
        return [{"id": r.id, "text": r.render(language, name=name, order_id=order_id)} for r in self.replies]
