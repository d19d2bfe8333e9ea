"""What the bot answers: `/start <code>` links a chat; `/stock`, `/low`, `/sync`, `/report`, `/help`.

Handling an update is split in two so a repeat does no harm: the first transaction claims the update
(``processed_at``), does the work and stores the reply; sending the reply is marked separately, so a job
that dies after the work re-sends the stored reply instead of doing the work again.
"""

from __future__ import annotations

import uuid
from html import escape
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.engine import set_tenant
from app.domain.accounts.services import TenantSelfRepository
from app.domain.alerts.services import AlertRepository, tenant_low_units
from app.domain.catalog.services import CatalogRepository
from app.domain.reports.services import ReportRepository
from app.domain.telegram.reports import document_reply
from app.domain.telegram.repositories import ChannelRepository, chat_links, claim_link_code
from app.domain.telegram.services import hash_code, trigger_manual_syncs
from app.integrations.telegram.schemas import Message, Update
from app.lib.clock import utcnow

LOW_ROWS = 30

HELP = (
    "<b>Stock Tracker</b> — stock alerts for Wildberries and Ozon.\n"
    "/stock — totals, out-of-stock and low-stock counts\n"
    "/low — products that are low or out right now\n"
    "/sync — sync every connection now\n"
    "/report — the stock report as an Excel file\n"
    "/help — this message"
)
NOT_LINKED = (
    "This chat is not linked to an organization yet. In Stock Tracker, create a Telegram link "
    "(<code>POST /api/v1/notification-channels/telegram</code>) and open the link it gives you."
)


def reply_text(text: str) -> dict[str, Any]:
    return {"method": "sendMessage", "text": text}


def message_of(update: Update) -> Message | None:
    return update.message or update.channel_post


def parse_command(text: str) -> tuple[str, str] | None:
    """``/stock@MyBot args`` → ("stock", "args"); None for anything that is not a command."""
    if not text.startswith("/"):
        return None
    head, _, rest = text.strip().partition(" ")
    return head[1:].split("@", 1)[0].lower(), rest.strip()


class CommandHandler:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def respond(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The reply to one stored update (None: nothing to say, e.g. plain chatter in a group)."""
        update = msgspec.convert(payload, Update)
        msg = message_of(update)
        if msg is None or not msg.text:
            return None
        parsed = parse_command(msg.text)
        if parsed is None:
            return None
        command, args = parsed
        if command == "start":
            return reply_text(await self._start(msg, args))
        if command == "help":
            return reply_text(HELP)
        links = await chat_links(self.session, msg.chat.id)
        if not links:
            return reply_text(NOT_LINKED)
        tenant_id, _channel_id, org = links[0]
        await set_tenant(self.session, tenant_id)
        if command == "stock":
            return reply_text(await self._stock(tenant_id, org))
        if command == "low":
            return reply_text(await self._low(tenant_id))
        if command == "sync":
            return reply_text(await self._sync(tenant_id))
        if command == "report":
            return await self._report(tenant_id)
        return reply_text("I don't know that command.\n\n" + HELP)

    async def _start(self, msg: Message, code: str) -> str:
        if not code:
            return "Hello! To get alerts here, link this chat from Stock Tracker.\n\n" + HELP
        claimed = await claim_link_code(self.session, hash_code(code[:200]))
        if claimed is None:
            return "This link code is invalid, used or expired. Create a new one in Stock Tracker."
        tenant_id, user_id = claimed
        await set_tenant(self.session, tenant_id)
        title = msg.chat.title or msg.chat.username or msg.chat.first_name
        await ChannelRepository(self.session, tenant_id).link(msg.chat.id, title, user_id, utcnow())
        tenant = await TenantSelfRepository(self.session, tenant_id).get()
        org = tenant.name if tenant else ""
        return f"✅ Linked to <b>{escape(org)}</b>. Stock alerts will arrive in this chat.\n\n{HELP}"

    async def _stock(self, tenant_id: uuid.UUID, org: str) -> str:
        low = await tenant_low_units(self.session, tenant_id, self.settings.low_stock_units)
        rows = await CatalogRepository(self.session, tenant_id).summary_by_marketplace(low)
        if not rows:
            return f"<b>{escape(org)}</b>: no products yet — connect a marketplace and sync."
        lines = [f"<b>{escape(org)}</b> — stock now"]
        totals = [0, 0, 0, 0]
        for mp, products, units, _to, _from, out, low_count in rows:
            lines.append(
                f"{escape(mp.value.title())}: {int(products)} products, {int(units)} units, "
                f"{int(out)} out, {int(low_count)} low"
            )
            for i, v in enumerate((products, units, out, low_count)):
                totals[i] += int(v)
        if len(rows) > 1:
            lines.append(f"Total: {totals[0]} products, {totals[1]} units, {totals[2]} out, {totals[3]} low")
        lines.append(f"<i>low = fewer than {low} units (your default alert rule)</i>")
        return "\n".join(lines)

    async def _low(self, tenant_id: uuid.UUID) -> str:
        rows = await AlertRepository(self.session, tenant_id).open_with_products(LOW_ROWS + 1)
        if not rows:
            return "✅ Nothing is low or out of stock."
        lines = [f"<b>Low or out of stock</b> ({len(rows[:LOW_ROWS])}{'+' if len(rows) > LOW_ROWS else ''})"]
        for alert, vendor_code, title, external_id, warehouse in rows[:LOW_ROWS]:
            name = escape((title or vendor_code or external_id or "")[:60])
            where = f" at {escape(warehouse[:40])}" if warehouse else ""
            mark = "⛔" if alert.level == "out" else "⚠️"
            code = f" ({escape(vendor_code[:40])})" if vendor_code and title else ""
            lines.append(f"{mark} {name}{code}{where}: {alert.last_quantity}")
        return "\n".join(lines)

    async def _sync(self, tenant_id: uuid.UUID) -> str:
        triggers = await trigger_manual_syncs(self.session, tenant_id, billing_enabled=self.settings.billing_enabled)
        if not triggers:
            return "No marketplace connections yet."
        lines = []
        for t in triggers:
            name = escape(t.name)
            if t.status == "queued":
                lines.append(f"🔄 {name}: sync started")
            elif t.status == "already_running":
                lines.append(f"⏳ {name}: a sync is already under way")
            elif t.status == "cooldown":
                lines.append(f"🕒 {name}: synced moments ago; try again in {t.retry_after} s")
            elif t.refusal is not None:  # the plan: read-only, over the connection limit, or its interval
                lines.append(f"⛔ {name}: {escape(t.refusal.detail)}")
            else:
                lines.append(f"🔑 {name}: the connection's credentials were refused; replace them first")
        return "\n".join(lines)

    async def _report(self, tenant_id: uuid.UUID) -> dict[str, Any]:
        """The stock report as an XLSX document (made when the reply is sent), or why there is none."""
        if not await ReportRepository(self.session, tenant_id).has_stock():
            return reply_text("No stock yet — connect a marketplace and sync.")
        return document_reply(tenant_id)
