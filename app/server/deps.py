"""Request-scoped dependencies: one session per request (commit on success), the principal."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import structlog
from litestar import Request
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import TENANT_KEY
from app.db.outbox import relay, take_pending
from app.domain.api import principal_of
from app.lib.tokens import Principal

log = structlog.get_logger(__name__)


async def provide_db_session(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    """The boundary owns the transaction; outbox rows written here are relayed only after commit."""
    state = request.app.state
    session: AsyncSession = state.sessionmaker()
    user = request.scope.get("user")
    if isinstance(user, Principal):
        session.info[TENANT_KEY] = user.tenant_id
    pending = []
    try:
        yield session
        await session.commit()
        pending = take_pending(session)
    except BaseException as exc:
        if getattr(exc, "commit", False):
            await session.commit()
        else:
            await session.rollback()
        raise
    finally:
        await session.close()
    if pending:
        try:
            await relay(state.sessionmaker, state.arq, pending)
        except Exception as exc:  # the periodic sweep enqueues what this missed
            log.warning("outbox.relay_failed", error=type(exc).__name__)


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


DEPENDENCIES = {
    "db_session": Provide(provide_db_session),
    "principal": Provide(provide_principal, sync_to_thread=False),
}
