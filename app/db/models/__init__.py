"""Every table, imported here so alembic and the mappers see them all."""

from app.db.models.accounts import AuditEvent, Membership, RefreshToken, Role, Tenant, User
from app.db.models.outbox import OutboxMessage

__all__ = ["AuditEvent", "Membership", "OutboxMessage", "RefreshToken", "Role", "Tenant", "User"]
