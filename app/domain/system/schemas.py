"""Bodies of the system endpoints."""

from __future__ import annotations

import msgspec


class HealthStatus(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)
