"""Background jobs of the accounts area."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.db.engine import session_scope
from app.db.models import AuditEvent, OutboxMessage
from app.lib.ids import uuid7

log = structlog.get_logger(__name__)


async def record_audit_event(ctx: dict[str, Any], outbox_id: str) -> bool:
    """Write the audit event an outbox message describes; a rerun inserts nothing (unique source id)."""
    sessionmaker = ctx["sessionmaker"]
    async with session_scope(sessionmaker) as session:
        msg = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.id == uuid.UUID(outbox_id)))
        ).scalar_one_or_none()
    if msg is None or msg.tenant_id is None:
        log.warning("audit.missing_outbox_message", outbox_id=outbox_id)
        return False
    args = msg.args
    async with session_scope(sessionmaker, msg.tenant_id) as session:
        result = await session.execute(
            insert(AuditEvent)
            .values(
                id=uuid7(),
                tenant_id=msg.tenant_id,
                action=args["action"],
                actor_user_id=uuid.UUID(args["actor_user_id"]) if args.get("actor_user_id") else None,
                source_id=msg.id,
                data=args.get("data", {}),
            )
            .on_conflict_do_nothing(index_elements=["source_id"])
        )
        inserted = bool(result.rowcount)  # type: ignore[attr-defined]
    log.info("audit.recorded", action=args["action"], inserted=inserted)
    return inserted
