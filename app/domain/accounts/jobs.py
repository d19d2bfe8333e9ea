"""Background jobs of the accounts area."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.dialects.postgresql import insert

from app.db.engine import session_scope
from app.db.models import AuditEvent
from app.domain.jobcontext import JobContext
from app.lib.ids import uuid7

log = structlog.get_logger(__name__)
JOB_NAMESPACE = uuid.UUID("8f6c2b1e-5d0a-4c3e-9b7f-3a1d2e4c5b6a")


def source_id_for(job_id: str) -> uuid.UUID:
    """The stable id of a job's effect: reruns of the same job id collide on it."""
    return uuid.uuid5(JOB_NAMESPACE, job_id)


async def record_audit_event(
    ctx: JobContext,
    *,
    tenant_id: str,
    action: str,
    actor_user_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Write one audit event; a rerun of the same job inserts nothing (unique source id)."""
    source_id = source_id_for(ctx["job_id"])
    async with session_scope(ctx["sessionmaker"], uuid.UUID(tenant_id)) as session:
        result = await session.execute(
            insert(AuditEvent)
            .values(
                id=uuid7(),
                tenant_id=uuid.UUID(tenant_id),
                action=action,
                actor_user_id=uuid.UUID(actor_user_id) if actor_user_id else None,
                source_id=source_id,
                data=data or {},
            )
            .on_conflict_do_nothing(index_elements=["source_id"])
        )
        inserted = bool(result.rowcount)  # type: ignore[attr-defined]
    log.info("audit.recorded", action=action, inserted=inserted)
    return inserted
