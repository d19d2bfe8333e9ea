"""API keys: tenant-scoped, named, scoped (read / write), stored only as a keyed hash, revocable.

API-call usage is not a table: it is a per-tenant, per-calendar-month counter in Redis
(``app/domain/apikeys/usage.py``), see docs/api-platform.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TenantMixin, TimestampMixin


class ApiKey(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(100))
    # HMAC-SHA256 of the whole key under the server's API-key secret (hex). The key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What a person needs to recognise a key in a list: its visible prefix and last four characters.
    prefix: Mapped[str] = mapped_column(String(16))
    last_four: Mapped[str] = mapped_column(String(4))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
