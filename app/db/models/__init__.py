"""Every table, imported here so alembic and the mappers see them all."""

# Table groups registered for their side effect (mappers, alembic autogenerate).
from app.db.models import apikeys as _apikeys  # noqa: F401
from app.db.models import notifications as _notifications  # noqa: F401
from app.db.models import reports as _reports  # noqa: F401
from app.db.models.accounts import AuditEvent, Membership, RefreshToken, Role, Tenant, User
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
    "Connection",
    "ConnectionStatus",
    "Marketplace",
    "Membership",
    "OrderLine",
    "OutboxMessage",
    "Product",
    "RefreshToken",
    "Role",
    "StockHistory",
    "StockLevel",
    "SyncRun",
    "SyncStatus",
    "Tenant",
    "User",
    "Variant",
    "Warehouse",
    "WarehouseKind",
]
