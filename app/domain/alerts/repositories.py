"""SQL of the alerts area: rules, alerts, evaluation claims (the evaluation's own statements: transitions.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Product, Tenant, Warehouse
from app.db.models.notifications import Alert, AlertEvaluation, AlertRule
from app.db.repository import TenantRepository
from app.lib.ids import uuid7


class AlertRuleRepository(TenantRepository[AlertRule]):
    model = AlertRule

    async def default(self) -> AlertRule | None:
        stmt = self.select().where(AlertRule.product_id.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def claim(self, product_id: uuid.UUID | None, warehouse_id: uuid.UUID | None) -> tuple[AlertRule, bool]:
        """The rule of this place (the default, a product's, a product × warehouse's), inserted when missing;
        (rule, created). Concurrent first PUTs meet on the place's unique index: one inserts, the others wait
        for it and then update the same row — never a unique violation (a 500)."""
        where: ColumnElement[bool]
        if product_id is None:
            keys, where = ["tenant_id"], AlertRule.product_id.is_(None)
        elif warehouse_id is None:
            keys, where = (
                ["tenant_id", "product_id"],
                and_(AlertRule.product_id.is_not(None), AlertRule.warehouse_id.is_(None)),
            )
        else:
            keys, where = ["tenant_id", "product_id", "warehouse_id"], AlertRule.warehouse_id.is_not(None)
        stmt = (
            insert(AlertRule)
            .values(id=uuid7(), tenant_id=self.tenant_id, product_id=product_id, warehouse_id=warehouse_id)
            .on_conflict_do_nothing(index_elements=keys, index_where=where)
            .returning(AlertRule.id)
        )
        created = (await self.session.execute(stmt)).scalar_one_or_none() is not None
        rule = await (self.default() if product_id is None else self.override(product_id, warehouse_id))
        assert rule is not None  # inserted above, or by the transaction the insert waited for
        return rule, created

    async def override(self, product_id: uuid.UUID, warehouse_id: uuid.UUID | None) -> AlertRule | None:
        stmt = self.select().where(AlertRule.product_id == product_id)
        stmt = stmt.where(
            AlertRule.warehouse_id.is_(None) if warehouse_id is None else AlertRule.warehouse_id == warehouse_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def overrides_for_connection(self, connection_id: uuid.UUID) -> list[AlertRule]:
        stmt = (
            self.select()
            .join(Product, Product.id == AlertRule.product_id)
            .where(Product.connection_id == connection_id)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def default_units(self) -> tuple[int | None, bool] | None:
        """The default rule's units threshold and whether it is enabled (None: no default rule)."""
        row = (
            await self.session.execute(
                self.select(AlertRule.units_below, AlertRule.enabled).where(AlertRule.product_id.is_(None))
            )
        ).first()
        return None if row is None else (row[0], bool(row[1]))

    async def product_connection(self, product_id: uuid.UUID) -> uuid.UUID | None:
        """The connection a product of this tenant belongs to (None: no such product)."""
        stmt = select(Product.connection_id).where(Product.tenant_id == self.tenant_id, Product.id == product_id)
        row = (await self.session.execute(stmt)).first()
        return None if row is None else row[0]

    async def warehouse_connection(self, warehouse_id: uuid.UUID) -> uuid.UUID | None:
        """The connection a warehouse of this tenant belongs to (None: no such warehouse)."""
        stmt = select(Warehouse.connection_id).where(
            Warehouse.tenant_id == self.tenant_id, Warehouse.id == warehouse_id
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else row[0]

    async def overrides_page(
        self, product_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[AlertRule]:
        stmt = self.select().where(AlertRule.product_id.is_not(None)).order_by(AlertRule.id).limit(limit)
        if product_id is not None:
            stmt = stmt.where(AlertRule.product_id == product_id)
        if after is not None:
            stmt = stmt.where(AlertRule.id > after)
        return list((await self.session.execute(stmt)).scalars().all())


class AlertRepository(TenantRepository[Alert]):
    model = Alert

    async def open_for_connection(self, connection_id: uuid.UUID) -> list[Alert]:
        stmt = self.select().where(Alert.connection_id == connection_id, Alert.status == "open")
        return list((await self.session.execute(stmt)).scalars().all())

    async def open_(self, values: dict[str, Any]) -> bool:
        """Insert an open alert unless one is open for the subject (the partial unique index decides)."""
        stmt = (
            insert(Alert)
            .values(tenant_id=self.tenant_id, **values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "subject_key"], index_where=text("status = 'open'"))
            .returning(Alert.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def page(
        self,
        *,
        status: str | None,
        product_id: uuid.UUID | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        alert_id: uuid.UUID | None = None,
    ) -> list[Any]:
        stmt = (
            select(Alert, Product.external_id, Product.vendor_code, Product.title, Product.marketplace, Warehouse.name)
            .join(Product, Product.id == Alert.product_id)
            .outerjoin(Warehouse, Warehouse.id == Alert.warehouse_id)
            .where(Alert.tenant_id == self.tenant_id)
            .order_by(Alert.opened_at.desc(), Alert.id.desc())
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(Alert.status == status)
        if product_id is not None:
            stmt = stmt.where(Alert.product_id == product_id)
        if alert_id is not None:
            stmt = stmt.where(Alert.id == alert_id)
        if after is not None:
            stmt = stmt.where(tuple_(Alert.opened_at, Alert.id) < tuple_(*after))
        return list((await self.session.execute(stmt)).all())

    async def open_with_products(self, limit: int) -> list[Any]:
        """Open alerts for `/low`: out first, then by quantity."""
        stmt = (
            select(Alert, Product.vendor_code, Product.title, Product.external_id, Warehouse.name)
            .join(Product, Product.id == Alert.product_id)
            .outerjoin(Warehouse, Warehouse.id == Alert.warehouse_id)
            .where(Alert.tenant_id == self.tenant_id, Alert.status == "open")
            .order_by(Alert.level.desc(), Alert.last_quantity, Alert.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).all())


class EvaluationRepository(TenantRepository[AlertEvaluation]):
    model = AlertEvaluation

    async def start(self, run_id: uuid.UUID, connection_id: uuid.UUID) -> bool:
        """Claim the evaluation of a run; False when it was done (or is being done) already."""
        stmt = (
            insert(AlertEvaluation)
            .values(run_id=run_id, tenant_id=self.tenant_id, connection_id=connection_id, counts={})
            .on_conflict_do_nothing(index_elements=["run_id"])
            .returning(AlertEvaluation.run_id)
        )
        return (await self.session.execute(stmt)).first() is not None


async def tenant_timezone(session: AsyncSession, tenant_id: uuid.UUID) -> str:
    row = (await session.execute(select(Tenant.timezone).where(Tenant.id == tenant_id))).first()
    return row[0] if row else "UTC"
