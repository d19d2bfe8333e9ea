"""Every SQL statement of the billing area: the organization's account and plan changes, the counts its limits
are checked against, the products a sync may keep, usage reports, and the Stripe events table (system)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, any_, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import (
    BillingAccount,
    Connection,
    Membership,
    PlanChange,
    Product,
    ProductUsage,
    StripeEvent,
    Tenant,
    UsageReport,
    User,
)
from app.db.models.apikeys import ApiKey
from app.db.models.notifications import WebhookEndpoint
from app.db.repository import TenantRepository
from app.lib.ids import uuid7


class BillingAccountRepository(TenantRepository[BillingAccount]):
    model = BillingAccount

    async def find(self, *, for_update: bool = False) -> BillingAccount | None:
        stmt = self.select()
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def insert_once(self, **values: Any) -> None:
        """Insert the organization's account unless it has one (two first requests may race)."""
        stmt = insert(BillingAccount).values(id=uuid7(), tenant_id=self.tenant_id, **values)
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=[BillingAccount.tenant_id]))


class TenantRow:
    """The organization's own row: its name and the plan code every limit reads (row-level security keys it
    on ``id``)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def plan_and_name(self) -> tuple[str, str] | None:
        row = (await self.session.execute(select(Tenant.plan, Tenant.name).where(Tenant.id == self.tenant_id))).first()
        return (row[0], row[1]) if row else None

    async def set_plan(self, plan: str) -> None:
        await self.session.execute(update(Tenant).where(Tenant.id == self.tenant_id).values(plan=plan))


async def user_email(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    """Users are global (not tenant-scoped): the Stripe customer's email is the owner's."""
    return (await session.execute(select(User.email).where(User.id == user_id))).scalar_one_or_none()


class PlanChangeRepository(TenantRepository[PlanChange]):
    model = PlanChange

    async def recent(self, limit: int) -> list[PlanChange]:
        stmt = self.select().order_by(PlanChange.created_at.desc(), PlanChange.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars().all())


class UsageCounts:
    """What the organization holds of everything a plan limits (one statement)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _count(self, model: Any, *where: Any) -> Any:
        return (
            select(func.count()).select_from(model).where(model.tenant_id == self.tenant_id, *where).scalar_subquery()
        )

    async def all(self) -> dict[str, int]:
        stmt = select(
            self._count(Product).label("products"),
            self._count(Connection).label("connections"),
            self._count(WebhookEndpoint).label("webhook_endpoints"),
            self._count(Membership).label("members"),
            self._count(ApiKey, ApiKey.revoked_at.is_(None)).label("api_keys"),
        )
        row = (await self.session.execute(stmt)).one()
        return dict(row._mapping)

    async def connection_rank(self, connection_id: uuid.UUID) -> int:
        """The connection's place among the organization's connections, oldest first (1-based; 0: unknown)."""
        ranked = select(
            Connection.id,
            func.row_number().over(order_by=(Connection.created_at, Connection.id)).label("rank"),
        ).where(Connection.tenant_id == self.tenant_id)
        sub = ranked.subquery()
        found = (await self.session.execute(select(sub.c.rank).where(sub.c.id == connection_id))).scalar_one_or_none()
        return int(found or 0)

    async def connections_by_age(self) -> list[tuple[uuid.UUID, str]]:
        stmt = (
            select(Connection.id, Connection.name)
            .where(Connection.tenant_id == self.tenant_id)
            .order_by(Connection.created_at, Connection.id)
        )
        return [(r[0], r[1]) for r in (await self.session.execute(stmt)).all()]


class ProductRanking:
    """The products a connection's sync may keep under a product limit (stable: tracked ones first)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def totals(self, connection_id: uuid.UUID) -> tuple[int, int]:
        """(products the organization tracks, of them this connection's)."""
        stmt = select(
            func.count(),
            func.count().filter(Product.connection_id == connection_id),
        ).where(Product.tenant_id == self.tenant_id)
        total, here = (await self.session.execute(stmt)).one()
        return int(total), int(here)

    async def tracked_among(self, connection_id: uuid.UUID, external_ids: Sequence[str]) -> set[str]:
        stmt = select(Product.external_id).where(
            Product.tenant_id == self.tenant_id,
            Product.connection_id == connection_id,
            Product.external_id == any_(literal(list(external_ids), ARRAY(String))),
        )
        return set((await self.session.execute(stmt)).scalars().all())

    async def first_tracked(self, limit: int) -> list[tuple[uuid.UUID, str]]:
        """The organization's first ``limit`` tracked products: earliest tracked first, then by marketplace id."""
        stmt = (
            select(Product.connection_id, Product.external_id)
            .where(Product.tenant_id == self.tenant_id)
            .order_by(Product.created_at, func.length(Product.external_id), Product.external_id)
            .limit(limit)
        )
        return [(r[0], r[1]) for r in (await self.session.execute(stmt)).all()]


class ProductUsageRepository(TenantRepository[ProductUsage]):
    model = ProductUsage

    async def record(
        self, connection_id: uuid.UUID, day: date, synced: int, left_out: int, limit: int, plan: str, at: datetime
    ) -> None:
        """Keep the day's largest count for the connection (a later sync the same day may keep more)."""
        stmt = insert(ProductUsage).values(
            tenant_id=self.tenant_id,
            connection_id=connection_id,
            day=day,
            synced=synced,
            left_out=left_out,
            product_limit=limit,
            plan=plan,
            updated_at=at,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[ProductUsage.connection_id, ProductUsage.day],
            set_={
                "synced": func.greatest(ProductUsage.synced, stmt.excluded.synced),
                "left_out": stmt.excluded.left_out,
                "product_limit": stmt.excluded.product_limit,
                "plan": stmt.excluded.plan,
                "updated_at": stmt.excluded.updated_at,
            },
            where=ProductUsage.tenant_id == self.tenant_id,
        )
        await self.session.execute(stmt)

    async def product_days(self, first: date, last: date) -> dict[date, int]:
        """Synced products summed over connections, per day in [first, last]."""
        stmt = (
            select(ProductUsage.day, func.sum(ProductUsage.synced))
            .where(ProductUsage.tenant_id == self.tenant_id, ProductUsage.day >= first, ProductUsage.day <= last)
            .group_by(ProductUsage.day)
        )
        return {r[0]: int(r[1]) for r in (await self.session.execute(stmt)).all()}

    async def latest_left_out(self) -> int:
        """Products left out by each connection's latest recorded sync day, summed."""
        latest = (
            select(ProductUsage.connection_id, func.max(ProductUsage.day).label("day"))
            .where(ProductUsage.tenant_id == self.tenant_id)
            .group_by(ProductUsage.connection_id)
            .subquery()
        )
        stmt = select(func.coalesce(func.sum(ProductUsage.left_out), 0)).join(
            latest, (latest.c.connection_id == ProductUsage.connection_id) & (latest.c.day == ProductUsage.day)
        )
        return int((await self.session.execute(stmt)).scalar_one())


class UsageReportRepository(TenantRepository[UsageReport]):
    model = UsageReport

    async def last_hour(self, meter: str) -> datetime | None:
        stmt = select(func.max(UsageReport.hour)).where(
            UsageReport.tenant_id == self.tenant_id, UsageReport.meter == meter
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def total(self, meter: str, start: datetime, end: datetime) -> int:
        stmt = select(func.coalesce(func.sum(UsageReport.value), 0)).where(
            UsageReport.tenant_id == self.tenant_id,
            UsageReport.meter == meter,
            UsageReport.hour >= start,
            UsageReport.hour < end,
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def freeze(self, rows: list[dict[str, Any]]) -> int:
        """Insert frozen values; an hour already frozen keeps its first value. Returns how many were new."""
        if not rows:
            return 0
        stmt = (
            insert(UsageReport)
            .values([{**r, "tenant_id": self.tenant_id} for r in rows])
            .on_conflict_do_nothing()
            .returning(UsageReport.id)
        )
        return len((await self.session.execute(stmt)).all())

    async def pending(self, limit: int) -> list[UsageReport]:
        stmt = (
            self.select()
            .where(UsageReport.reported_at.is_(None))
            .order_by(UsageReport.hour, UsageReport.meter)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def in_period(self, start: datetime, end: datetime) -> list[UsageReport]:
        stmt = self.select().where(UsageReport.hour >= start, UsageReport.hour < end).order_by(UsageReport.hour)
        return list((await self.session.execute(stmt)).scalars().all())


async def billing_customers(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """Organizations with a Stripe customer, across tenants (the audited system function)."""
    rows = await session.execute(text("SELECT tenant_id, stripe_customer_id FROM st_billing_customers()"))
    return [(r[0], r[1]) for r in rows]


class StripeEventRepository:
    """The received Stripe events (a system table: no tenant; ids only, never a payload)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_once(self, event: StripeEvent) -> bool:
        """Store the event unless its id is already stored; True when this call stored it."""
        values = {c.key: getattr(event, c.key) for c in StripeEvent.__table__.columns if c.key != "received_at"}
        stmt = insert(StripeEvent).values(**values).on_conflict_do_nothing().returning(StripeEvent.id)
        return (await self.session.execute(stmt)).first() is not None

    async def get_for_update(self, event_id: str) -> StripeEvent | None:
        stmt = select(StripeEvent).where(StripeEvent.id == event_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get(self, event_id: str) -> StripeEvent | None:
        return (await self.session.execute(select(StripeEvent).where(StripeEvent.id == event_id))).scalar_one_or_none()

    async def failed(self, event_id: str, error: str) -> None:
        await self.session.execute(
            update(StripeEvent)
            .where(StripeEvent.id == event_id)
            .values(attempts=StripeEvent.attempts + 1, last_error=error[:500])
        )

    async def stuck(self, older_than: datetime, limit: int) -> list[str]:
        stmt = (
            select(StripeEvent.id)
            .where(StripeEvent.processed_at.is_(None), StripeEvent.received_at < older_than)
            .order_by(StripeEvent.received_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def forget_processed(self, before: datetime, limit: int) -> int:
        ids = select(StripeEvent.id).where(StripeEvent.processed_at < before).limit(limit).scalar_subquery()
        result = await self.session.execute(
            delete(StripeEvent).where(StripeEvent.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
