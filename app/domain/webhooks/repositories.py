"""Every SQL statement of the webhooks area (tenant-scoped; the due-delivery sweep uses a system function)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.notifications import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.db.repository import TenantRepository


class EndpointRepository(TenantRepository[WebhookEndpoint]):
    model = WebhookEndpoint

    async def page(self, after: uuid.UUID | None, limit: int) -> list[WebhookEndpoint]:
        stmt = self.select().order_by(WebhookEndpoint.id).limit(limit)
        if after is not None:
            stmt = stmt.where(WebhookEndpoint.id > after)
        return list((await self.session.execute(stmt)).scalars().all())

    async def encrypted_secrets(self) -> list[tuple[uuid.UUID, bytes, bytes | None]]:
        """Every endpoint's id and encrypted signing secrets, current and previous (key rotation)."""
        stmt = self.select(
            WebhookEndpoint.id, WebhookEndpoint.secret_encrypted, WebhookEndpoint.previous_secret_encrypted
        )
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]

    async def set_encrypted_secrets(self, endpoint_id: uuid.UUID, secret: bytes, previous: bytes | None) -> None:
        await self.update_where(
            {"secret_encrypted": secret, "previous_secret_encrypted": previous}, WebhookEndpoint.id == endpoint_id
        )

    async def get_for_update(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        stmt = self.select().where(WebhookEndpoint.id == endpoint_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def mark_succeeded(self, ids: set[uuid.UUID], now: datetime) -> None:
        if ids:
            await self.update_where({"last_success_at": now, "failing_since": None}, WebhookEndpoint.id.in_(ids))

    async def mark_failed(self, ids: set[uuid.UUID], now: datetime) -> list[WebhookEndpoint]:
        """Record a failure; the failure clock (``failing_since``) starts at the first one after a success."""
        if not ids:
            return []
        stmt = (
            update(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == self.tenant_id, WebhookEndpoint.id.in_(ids))
            .values(last_failure_at=now, failing_since=func.coalesce(WebhookEndpoint.failing_since, now))
            .returning(WebhookEndpoint)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.execute(stmt)).scalars().all())


class DeliveryRepository(TenantRepository[WebhookDelivery]):
    model = WebhookDelivery

    async def claim(
        self,
        *,
        ids: list[uuid.UUID] | None = None,
        event_id: uuid.UUID | None = None,
        due_by: datetime,
        lease_until: datetime,
    ) -> list[Any]:
        """Take the due attempts (of these deliveries, or of one event's): pushes ``next_attempt_at`` out by a
        lease so no second job (or the sweep) sends the same attempt meanwhile, and a worker that dies
        mid-send is retried when the lease ends."""
        if ids is None and event_id is None:
            raise ValueError("claim needs delivery ids or an event id")
        stmt = update(WebhookDelivery).where(
            WebhookDelivery.tenant_id == self.tenant_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= due_by,
        )
        if ids is not None:
            stmt = stmt.where(WebhookDelivery.id.in_(ids))
        if event_id is not None:
            stmt = stmt.where(WebhookDelivery.event_id == event_id)
        stmt = stmt.values(
            next_attempt_at=lease_until,
            attempt_count=WebhookDelivery.attempt_count + 1,
            last_attempt_at=func.now(),
            updated_at=func.now(),
        ).returning(
            WebhookDelivery.id,
            WebhookDelivery.endpoint_id,
            WebhookDelivery.event_id,
            WebhookDelivery.attempt_count,
            WebhookDelivery.max_attempts,
        )
        return list((await self.session.execute(stmt)).all())

    async def record(self, rows: list[dict[str, Any]], now: datetime) -> None:
        """Each attempted delivery's new state, in one executemany (``b_*`` parameters per row)."""
        if not rows:
            return
        t = WebhookDelivery.__table__  # Core: an executemany with per-row parameters
        assert isinstance(t, Table)
        stmt = (
            update(t)
            .where(t.c.tenant_id == self.tenant_id, t.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                last_status_code=bindparam("b_code"),
                last_error=bindparam("b_error"),
                succeeded_at=func.coalesce(bindparam("b_succeeded"), t.c.succeeded_at),
                updated_at=now,
            )
        )
        await self.session.execute(stmt, rows)

    async def page_for_endpoint(
        self,
        endpoint_id: uuid.UUID,
        *,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[WebhookDelivery]:
        stmt = (
            self.select()
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        if after is not None:
            stmt = stmt.where(tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < tuple_(*after))
        return list((await self.session.execute(stmt)).scalars().all())

    async def requeue(self, ids: list[uuid.UUID], now: datetime) -> list[tuple[uuid.UUID, int]]:
        """Make each delivery due now for exactly one more attempt (manual retry, recover)."""
        if not ids:
            return []
        stmt = (
            update(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == self.tenant_id, WebhookDelivery.id.in_(ids))
            .values(
                status="pending",
                next_attempt_at=now,
                max_attempts=func.greatest(WebhookDelivery.max_attempts, WebhookDelivery.attempt_count + 1),
                updated_at=now,
            )
            .returning(WebhookDelivery.id, WebhookDelivery.attempt_count)
        )
        return [(r[0], int(r[1])) for r in (await self.session.execute(stmt)).all()]

    async def failed_since(self, endpoint_id: uuid.UUID, since: datetime, limit: int) -> list[uuid.UUID]:
        stmt = (
            self.select(WebhookDelivery.id)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status == "failed",
                WebhookDelivery.created_at >= since,
            )
            .order_by(WebhookDelivery.created_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars().all())


class AttemptRepository(TenantRepository[WebhookAttempt]):
    model = WebhookAttempt

    async def add_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(
                insert(WebhookAttempt).values([{**r, "tenant_id": self.tenant_id} for r in rows])
            )

    async def for_deliveries(self, ids: list[uuid.UUID], per_delivery: int) -> dict[uuid.UUID, list[WebhookAttempt]]:
        """The latest attempts of each delivery, newest first."""
        out: dict[uuid.UUID, list[WebhookAttempt]] = defaultdict(list)
        if not ids:
            return out
        ranked = (
            self.select(
                WebhookAttempt.id,
                func.row_number()
                .over(partition_by=WebhookAttempt.delivery_id, order_by=WebhookAttempt.attempt_no.desc())
                .label("rn"),
            )
            .where(WebhookAttempt.delivery_id.in_(ids))
            .subquery()
        )
        stmt = (
            self.select()
            .join(ranked, ranked.c.id == WebhookAttempt.id)
            .where(ranked.c.rn <= per_delivery)
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt_no.desc())
        )
        for attempt in (await self.session.execute(stmt)).scalars().all():
            out[attempt.delivery_id].append(attempt)
        return out


async def due_deliveries(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID, int, datetime]]:
    """(tenant, delivery, attempts so far, due at) of every tenant's due attempts — the audited system function."""
    rows = await session.execute(
        text("SELECT tenant_id, id, attempt_count, next_attempt_at FROM st_due_webhook_deliveries(:now, :limit)"),
        {"now": now, "limit": limit},
    )
    return [(r[0], r[1], int(r[2]), r[3]) for r in rows.all()]
