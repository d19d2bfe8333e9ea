"""Readiness: does each dependency answer within the time allowed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.lib.errors import ServiceUnavailableError


class HealthService:
    def __init__(self, engine: AsyncEngine, redis: Any, timeout_seconds: float) -> None:
        self.engine = engine
        self.redis = redis
        self.timeout = timeout_seconds

    async def _database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def _redis(self) -> None:
        await self.redis.ping()

    async def ready(self) -> dict[str, str]:
        """Each check's outcome (``ok``); a 503 naming what did not answer when any failed."""
        checks: dict[str, str] = {}
        probes: tuple[tuple[str, Callable[[], Awaitable[None]]], ...] = (
            ("database", self._database),
            ("redis", self._redis),
        )
        for name, probe in probes:
            try:
                await asyncio.wait_for(probe(), self.timeout)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable ({type(exc).__name__})"
        failed = [k for k, v in checks.items() if v != "ok"]
        if failed:
            raise ServiceUnavailableError(
                "Not ready: " + ", ".join(f"{k} {checks[k]}" for k in failed), headers={"Retry-After": "5"}
            )
        return checks
