"""Request-scoped dependencies, registered in one place: the session (the unit of work), the principal, and
every service a handler asks for by name.

A handler declares what it needs (``connection_service: ConnectionService``) and Litestar builds it per
request from the providers below; services build their own repositories from the session they get. No
handler constructs a service or touches the session.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import structlog
from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import TENANT_KEY
from app.db.outbox import relay, take_pending
from app.domain.accounts.services import AccountService, InvitationService, MemberService
from app.domain.alerts.services import AlertRuleService, AlertService
from app.domain.api import principal_of
from app.domain.apikeys.services import ApiKeyService, api_call_counter
from app.domain.billing.services import BillingService, PlanCatalog, StripeWebhookService
from app.domain.catalog.services import CatalogService, ProductPageService
from app.domain.connections.services import ConnectionService
from app.domain.operations.services import OperationsService
from app.domain.reports.services import (
    ReconciliationService,
    ReportDownloadService,
    ReportService,
    ReportSettingsService,
    RestockService,
    SheetLinkService,
    StockByDayService,
)
from app.domain.sync.runs import SyncRunService
from app.domain.system.services import HealthService
from app.domain.telegram.services import LinkService, TelegramWebhookService
from app.domain.webhooks.services import WebhookService
from app.integrations.webhook_sender import Resolver, SystemResolver
from app.lib.errors import CommitThenRaise
from app.lib.tokens import Principal, publish_revocations, take_revocations

log = structlog.get_logger(__name__)
_SYSTEM_RESOLVER = SystemResolver()


async def provide_db_session(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    """One session per request, and the unit-of-work rule, stated once:

    * the handler returns → the session commits;
    * anything is raised → the session rolls back, so a failed request leaves nothing half-written;
    * except a ``CommitThenRaise`` error (``app/lib/errors.py``): the service says that what it wrote is
      the answer's effect (refresh-token reuse revokes the token family and answers 401), so the session
      commits and then the error is answered.

    Outbox rows written in a committed session are relayed to the queue after the commit (the periodic
    sweep enqueues anything this misses); services and repositories never commit. Revocations the request
    made (a member removed, a role changed, a logout, an API key revoked: ``app/lib/tokens.py``) are published
    to Redis after the commit and before the answer is sent, so the very next request is refused.
    """
    state = request.app.state
    session: AsyncSession = state.sessionmaker()
    user = request.scope.get("user")
    if isinstance(user, Principal):
        session.info[TENANT_KEY] = user.tenant_id
    committed = False
    try:
        yield session
        await session.commit()
        committed = True
    except CommitThenRaise:
        await session.commit()
        committed = True
        raise
    except BaseException:
        await session.rollback()
        raise
    finally:
        pending = take_pending(session) if committed else []
        revocations = take_revocations(session.info)
        await session.close()
        if committed and revocations:
            try:
                await publish_revocations(state.redis, revocations)
            except Exception as exc:  # the database has them: the gate's fallback and token expiry still apply
                log.warning("auth.revocation_publish_failed", error=type(exc).__name__, count=len(revocations))
        if pending:
            try:
                await relay(state.sessionmaker, state.arq, pending)
            except Exception as exc:  # the periodic sweep enqueues what this missed
                log.warning("outbox.relay_failed", error=type(exc).__name__)


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


def provide_account_service(db_session: AsyncSession, state: State) -> AccountService:
    settings = state.settings
    return AccountService(
        db_session,
        state.token_codec,
        settings.refresh_token_ttl_seconds,
        state.password_hasher,
        settings.signup,
        billing_enabled=settings.billing_enabled,
        trial_days=settings.billing_trial_days,
    )


def _forget_key(state: State) -> Any:
    resolver = getattr(state, "api_key_resolver", None)
    return resolver.forget if resolver is not None else None


def provide_member_service(db_session: AsyncSession, principal: Principal, state: State) -> MemberService:
    return MemberService(
        db_session,
        principal,
        state.token_codec.ttl_seconds,
        _forget_key(state),
        billing_enabled=state.settings.billing_enabled,
    )


def provide_invitation_service(db_session: AsyncSession, principal: Principal, state: State) -> InvitationService:
    return InvitationService(
        db_session,
        principal,
        state.token_codec,
        state.settings.refresh_token_ttl_seconds,
        billing_enabled=state.settings.billing_enabled,
    )


def provide_api_key_service(db_session: AsyncSession, principal: Principal, state: State) -> ApiKeyService:
    return ApiKeyService(db_session, principal, state.settings, state.redis, _forget_key(state))


def provide_connection_service(db_session: AsyncSession, principal: Principal, state: State) -> ConnectionService:
    return ConnectionService(
        db_session, principal.tenant_id, state.cipher, state.gateway, billing_enabled=state.settings.billing_enabled
    )


def provide_sync_run_service(db_session: AsyncSession, principal: Principal, state: State) -> SyncRunService:
    return SyncRunService(db_session, principal.tenant_id, billing_enabled=state.settings.billing_enabled)


def provide_catalog_service(db_session: AsyncSession, principal: Principal, state: State) -> CatalogService:
    return CatalogService(db_session, principal.tenant_id, int(state.settings.low_stock_units))


def provide_product_page_service(request: Request[Any, Any, Any]) -> ProductPageService:
    # No session: the product page is one statement on the pool (the hot read path). It reads the principal and
    # the state off the request rather than through two more dependencies: ~15 µs less per request (bench/edge.py).
    state = request.app.state
    return ProductPageService(state.engine, principal_of(request).tenant_id, int(state.settings.low_stock_units))


def provide_report_service(db_session: AsyncSession, principal: Principal, state: State) -> ReportService:
    # Files stream after the request's session has closed: they read from a session of their own.
    return ReportService(
        db_session,
        principal.tenant_id,
        sessionmaker=state.sessionmaker,
        default_low_units=int(state.settings.low_stock_units),
    )


def provide_stock_by_day_service(db_session: AsyncSession, principal: Principal, state: State) -> StockByDayService:
    return StockByDayService(db_session, principal.tenant_id, sessionmaker=state.sessionmaker)


def provide_restock_service(db_session: AsyncSession, principal: Principal, state: State) -> RestockService:
    return RestockService(db_session, principal.tenant_id, sessionmaker=state.sessionmaker)


def provide_report_settings_service(db_session: AsyncSession, principal: Principal) -> ReportSettingsService:
    return ReportSettingsService(db_session, principal.tenant_id)


def provide_sheet_link_service(db_session: AsyncSession, principal: Principal, state: State) -> SheetLinkService:
    return SheetLinkService(db_session, principal.tenant_id, state.cipher)


def provide_reconciliation_service(
    db_session: AsyncSession, principal: Principal, state: State
) -> ReconciliationService:
    return ReconciliationService(
        db_session, principal.tenant_id, user_id=principal.user_id, sessionmaker=state.sessionmaker
    )


def provide_report_download_service(db_session: AsyncSession, state: State) -> ReportDownloadService:
    # No principal: the signed link is the credential (the service scopes the session to the link's tenant).
    return ReportDownloadService(db_session, state.settings, state.sessionmaker)


def provide_alert_rule_service(db_session: AsyncSession, principal: Principal, state: State) -> AlertRuleService:
    return AlertRuleService(db_session, principal.tenant_id, state.settings.low_stock_units)


def provide_alert_service(db_session: AsyncSession, principal: Principal) -> AlertService:
    return AlertService(db_session, principal.tenant_id)


def provide_webhook_service(db_session: AsyncSession, principal: Principal, state: State) -> WebhookService:
    # Tests put a local fake DNS resolver in the app state.
    resolver: Resolver = getattr(state, "resolver", None) or _SYSTEM_RESOLVER
    return WebhookService(db_session, principal.tenant_id, state.cipher, state.settings, resolver)


def provide_link_service(db_session: AsyncSession, principal: Principal, state: State) -> LinkService:
    return LinkService(db_session, principal.tenant_id, state.settings, state.http, state.redis)


def provide_telegram_webhook_service(db_session: AsyncSession, state: State) -> TelegramWebhookService:
    return TelegramWebhookService(db_session, state.settings)


def provide_billing_service(db_session: AsyncSession, principal: Principal, state: State) -> BillingService:
    return BillingService(db_session, principal, state.settings, state.stripe, api_call_counter(state.redis))


def provide_stripe_webhook_service(db_session: AsyncSession, state: State) -> StripeWebhookService:
    return StripeWebhookService(db_session, state.stripe)


def provide_plan_catalog(state: State) -> PlanCatalog:
    return PlanCatalog(state.settings)


def provide_health_service(state: State) -> HealthService:
    return HealthService(state.engine, state.redis, state.settings.health_timeout_seconds)


def provide_operations_service(state: State) -> OperationsService:
    return OperationsService(state.arq, state.settings.queue_name)


def _sync(provider: Any) -> Provide:
    return Provide(provider, sync_to_thread=False)


DEPENDENCIES = {
    "db_session": Provide(provide_db_session),
    "principal": _sync(provide_principal),
    "account_service": _sync(provide_account_service),
    "member_service": _sync(provide_member_service),
    "invitation_service": _sync(provide_invitation_service),
    "api_key_service": _sync(provide_api_key_service),
    "connection_service": _sync(provide_connection_service),
    "sync_run_service": _sync(provide_sync_run_service),
    "catalog_service": _sync(provide_catalog_service),
    "product_page_service": _sync(provide_product_page_service),
    "report_service": _sync(provide_report_service),
    "stock_by_day_service": _sync(provide_stock_by_day_service),
    "restock_service": _sync(provide_restock_service),
    "report_settings_service": _sync(provide_report_settings_service),
    "sheet_link_service": _sync(provide_sheet_link_service),
    "reconciliation_service": _sync(provide_reconciliation_service),
    "report_download_service": _sync(provide_report_download_service),
    "alert_rule_service": _sync(provide_alert_rule_service),
    "alert_service": _sync(provide_alert_service),
    "webhook_service": _sync(provide_webhook_service),
    "link_service": _sync(provide_link_service),
    "telegram_webhook_service": _sync(provide_telegram_webhook_service),
    "health_service": _sync(provide_health_service),
    "operations_service": _sync(provide_operations_service),
    "billing_service": _sync(provide_billing_service),
    "stripe_webhook_service": _sync(provide_stripe_webhook_service),
    "plan_catalog": _sync(provide_plan_catalog),
}
