"""Every table, imported here so alembic and the mappers see them all."""

# Table groups registered for their side effect (mappers, alembic autogenerate).
from app.db.models import apikeys as _apikeys  # noqa: F401
from app.db.models import notifications as _notifications  # noqa: F401
from app.db.models import reports as _reports  # noqa: F401
from app.db.models.accounts import AuditEvent, Invitation, Membership, RefreshToken, Role, Tenant, User
from app.db.models.billing import BillingAccount, PlanChange, ProductUsage, StripeEvent, UsageReport
from app.db.models.marketplace import (
    Connection,
    ConnectionStatus,
    Marketplace,
    OrderLine,
    Product,
    StockHistory,
    StockLevel,
    SyncRun,
    SyncStatus,
    Variant,
    Warehouse,
    WarehouseKind,
)
from app.db.models.outbox import OutboxMessage

__all__ = [
    "AuditEvent",
    "BillingAccount",
    "Connection",
    "ConnectionStatus",
    "Invitation",
    "Marketplace",
    "Membership",
    "OrderLine",
    "OutboxMessage",
    "PlanChange",
    "Product",
    "ProductUsage",
    "RefreshToken",
    "Role",
    "StockHistory",
    "StockLevel",
    "StripeEvent",
    "SyncRun",
    "SyncStatus",
    "Tenant",
    "UsageReport",
    "User",
    "Variant",
    "Warehouse",
    "WarehouseKind",
]
