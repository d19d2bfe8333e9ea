"""Async engine and session factories shared by the API and the worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction

from app.config import Settings

TENANT_KEY = "tenant_id"
_SET_TENANT = text("SELECT set_config('app.tenant_id', :tid, true)")


def async_url(url: str) -> str:
    """Accept ``postgresql://`` URLs and use the asyncpg driver."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def create_engine(settings: Settings, url: str | None = None, **kwargs: Any) -> AsyncEngine:
    options: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": settings.db_pool_pre_ping,
        "pool_recycle": settings.db_pool_recycle_seconds,
        "connect_args": {"server_settings": {"application_name": "stock-tracker"}},
    }
    options.update(kwargs)
    return create_async_engine(async_url(url or settings.database_url), **options)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@event.listens_for(Session, "after_begin")
def _apply_tenant(session: Session, transaction: SessionTransaction, connection: Any) -> None:
    # Row-level security context, scoped to this transaction only (set_config(..., true)), so a pooled
    # connection never carries a tenant into the next transaction.
    tenant_id = session.info.get(TENANT_KEY)
    if tenant_id is not None:
        connection.execute(_SET_TENANT, {"tid": str(tenant_id)})


async def set_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope this session (its current and every later transaction) to one tenant."""
    session.info[TENANT_KEY] = tenant_id
    if session.in_transaction():
        await session.execute(_SET_TENANT, {"tid": str(tenant_id)})


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID | None = None
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error."""
    async with sessionmaker() as session:
        if tenant_id is not None:
            session.info[TENANT_KEY] = tenant_id
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
