"""The explicit list of every controller the API serves."""

from __future__ import annotations

from typing import Any

from app.domain.accounts.controllers import AuthController, MeController, MembersController
from app.domain.system.controllers import HealthController, metrics_endpoint

ROUTES: list[Any] = [
    AuthController,
    MeController,
    MembersController,
    HealthController,
    metrics_endpoint,
]
