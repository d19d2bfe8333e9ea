"""Repository bases. A tenant repository applies its tenant to every statement it builds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import Base

M = TypeVar("M", bound=Base)


class TenantRepository(Generic[M]):
    """CRUD for one tenant-owned model, always filtered by ``tenant_id`` (reads, updates, deletes, bulk)."""

    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def select(self, *columns: Any) -> Select[Any]:
        stmt = select(*columns) if columns else select(self.model)
        return stmt.where(self.model.tenant_id == self.tenant_id)

    async def get(self, id_: uuid.UUID) -> M | None:
        result = await self.session.execute(self.select().where(self.model.id == id_))
        return result.scalar_one_or_none()

    async def list(self, *where: Any, order_by: Any = None, limit: int | None = None) -> Sequence[M]:
        stmt = self.select().where(*where)
        if order_by is not None:
            stmt = stmt.order_by(order_by)
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def count(self, *where: Any) -> int:
        stmt = select(func.count()).select_from(self.model).where(self.model.tenant_id == self.tenant_id)
        return int((await self.session.execute(stmt.where(*where))).scalar_one())

    def add(self, obj: M) -> M:
        obj.tenant_id = self.tenant_id  # type: ignore[attr-defined]
        self.session.add(obj)
        return obj

    async def update_where(self, values: dict[str, Any], *where: Any) -> int:
        stmt = (
            update(self.model)
            .where(self.model.tenant_id == self.tenant_id, *where)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def delete_where(self, *where: Any) -> int:
        stmt = (
            delete(self.model)
            .where(self.model.tenant_id == self.tenant_id, *where)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def delete(self, id_: uuid.UUID) -> bool:
        return await self.delete_where(self.model.id == id_) > 0
