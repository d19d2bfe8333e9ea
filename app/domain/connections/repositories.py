"""SQL of the connections area."""

from __future__ import annotations

from app.db.models import Connection
from app.db.repository import TenantRepository


class ConnectionRepository(TenantRepository[Connection]):
    model = Connection
