"""The backoffice as the gateway runs it: one object that wires the ticket desk, the staff
workflow, admin actions, staff accounts, alerts, surveys, the audit log, configuration and
the sweep over one conversation store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from backoffice.admin import AdminActions
from backoffice.audit import AuditLog
from backoffice.config import CONFIG_DIR, ConfigStore
from backoffice.notifications import CustomerNotifier, StaffAlerts
from backoffice.sla_monitor import SlaMonitor
from backoffice.staff import StaffDirectory
from backoffice.surveys import SurveyDesk
from backoffice.tickets import TicketDesk
from backoffice.workflow import TicketWorkflow
from shop import OrderLookup
from shop.aftersales import AfterSalesService
from store.mongo import ConversationStore

CONVERSATION_MESSAGES_READ = 30


class Backoffice:
    def __init__(
        self,
        store: ConversationStore,
        *,
        orders: OrderLookup | None = None,
        aftersales: AfterSalesService | None = None,
        audit: AuditLog | None = None,
        config_dir: Path = CONFIG_DIR,
        conversation_ocr: Callable[[str], Awaitable[list[str]]] | None = None,
        on_queued: Callable[[str], None] | None = None,
        relay: dict[str, str] | None = None,
        sweep_seconds: float = 60.0,
    ) -> None:
        db = store.db
        self.store = store
        self.config = ConfigStore(db, config_dir)
        self.audit = audit or AuditLog(db)
        self.staff = StaffDirectory(db)
        self.alerts = StaffAlerts(db)
        self.notifier = CustomerNotifier(store, on_queued, relay)
        self.surveys = SurveyDesk(db, self.notifier)
        self.desk = TicketDesk(
            db,
            config=self.config,
            orders=orders,
            aftersales=aftersales,
            audit=self.audit,
            staff=self.staff,
            alerts=self.alerts,
            notifier=self.notifier,
            surveys=self.surveys,
            conversation_words=self.conversation_words,
            conversation_ocr=conversation_ocr,
            conversations=store,
        )
        self.workflow = TicketWorkflow(self.desk)
        self.admin = AdminActions(self.config, self.staff, self.audit)
        self.monitor = SlaMonitor(self.desk, sweep_seconds)

    async def ensure_indexes(self) -> None:
        await self.desk.ensure_indexes()

    async def conversation_words(self, conversation_id: str) -> tuple[list[str], str]:
        """The intents the NLU read in a conversation and the customer's words, oldest first."""
        intents: list[str] = []
        texts: list[str] = []
        for message in await self.store.history(conversation_id, limit=CONVERSATION_MESSAGES_READ):
            if message.direction.value != "in":
                continue
            understood = message.understanding or {}
            if understood.get("intent"):
                intents.append(str(understood["intent"]))
            texts.append(str(understood.get("normalized_text") or message.text))
        return intents, " ".join(texts)[-2000:]
