"""The retention sweep's one statement: the audited SECURITY DEFINER function of migration 0006."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_ENSURE = text("SELECT partition, moved FROM st_history_ensure_partitions(:first, :months)")
_SWEEP = text(
    "SELECT target, deleted FROM st_retention_sweep(:batch, :event_days, :ops_days, :sync_run_days, "
    ":plan_codes, :plan_days, :default_days)"
)


class RetentionSystemRepository:
    """Cross-tenant deletes, only through ``st_retention_sweep`` (never by switching the tenant check off)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sweep_batch(
        self,
        *,
        batch: int,
        event_days: int,
        ops_days: int,
        sync_run_days: int,
        history_days_by_plan: dict[str, int],
        default_history_days: int,
    ) -> dict[str, int]:
        """One batch (at most ``batch`` rows) per target; rows deleted by target."""
        rows = await self.session.execute(
            _SWEEP,
            {
                "batch": batch,
                "event_days": event_days,
                "ops_days": ops_days,
                "sync_run_days": sync_run_days,
                "plan_codes": list(history_days_by_plan),
                "plan_days": list(history_days_by_plan.values()),
                "default_days": default_history_days,
            },
        )
        return {str(target): int(deleted) for target, deleted in rows}

    async def ensure_history_partitions(self, first: date, months: int) -> dict[str, int]:
        """Create the month partitions of stock history from ``first``'s month on (migration 0010's audited
        function); the ones created, with the rows each took over from the default partition."""
        rows = await self.session.execute(_ENSURE, {"first": first, "months": months})
        return {str(name): int(moved) for name, moved in rows}
