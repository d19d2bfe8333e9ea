"""The explicit list of every controller the API serves."""

from __future__ import annotations

from typing import Any

from app.domain.accounts.controllers import AuthController, InvitationsController, MeController, MembersController
from app.domain.alerts.controllers import (
    AlertController,
    AlertRuleController,
    ProductAlertRuleController,
    SuppressionController,
)
from app.domain.apikeys.controllers import ApiKeyController
from app.domain.billing.controllers import BillingController, PlanCatalogController, StripeWebhookController
from app.domain.catalog.controllers import ProductController, StockSummaryController, WarehouseController
from app.domain.connections.controllers import ConnectionController
from app.domain.operations.controllers import AdminQueueController
from app.domain.reports.controllers import (
    CoverController,
    ReconciliationController,
    ReportController,
    ReportDownloadController,
    RestockSettingsController,
    SheetLinkController,
)
from app.domain.sync.controllers import SyncRunController, SyncTriggerController
from app.domain.system.controllers import HealthController, metrics_endpoint
from app.domain.telegram.controllers import NotificationChannelController, TelegramWebhookController
from app.domain.webhooks.controllers import (
    WebhookDeliveryController,
    WebhookEndpointController,
    WebhookEventTypeController,
)

ROUTES: list[Any] = [
    AuthController,
    MeController,
    MembersController,
    InvitationsController,
    ApiKeyController,
    ConnectionController,
    SyncTriggerController,
    SyncRunController,
    ProductController,
    CoverController,
    WarehouseController,
    StockSummaryController,
    ReportController,
    ReportDownloadController,
    SheetLinkController,
    RestockSettingsController,
    ReconciliationController,
    AlertRuleController,
    ProductAlertRuleController,
    AlertController,
    SuppressionController,
    WebhookEndpointController,
    WebhookDeliveryController,
    WebhookEventTypeController,
    NotificationChannelController,
    TelegramWebhookController,
    BillingController,
    PlanCatalogController,
    StripeWebhookController,
    HealthController,
    metrics_endpoint,
    AdminQueueController,
]
