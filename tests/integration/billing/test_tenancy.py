"""Billing's tenant tables behind both walls: the repositories scope to their organization, and row-level
security keeps another organization's rows out of reach even for a hand-written statement. The Stripe events
table is the one system table (no tenant is known when an event arrives), and it holds ids only."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text

from app.db.models import PlanChange
from app.domain.billing.repositories import (
    BillingAccountRepository,
    PlanChangeRepository,
    ProductUsageRepository,
    UsageReportRepository,
)
from app.lib.ids import uuid7
from tests.fakes import tenant_session
from tests.helpers import register

TABLES = ("billing_accounts", "plan_changes", "usage_reports", "product_usage")


async def test_another_organization_cannot_read_change_or_delete_billing_rows(
    limited_api: Any, limited_settings: Any
) -> None:
    a = uuid.UUID((await register(limited_api, "A"))["tenant"]["id"])
    b = uuid.UUID((await register(limited_api, "B"))["tenant"]["id"])
    hour = datetime(2027, 1, 1, 10, tzinfo=UTC)
    async with tenant_session(limited_settings, a) as s:
        PlanChangeRepository(s, a).add(
            PlanChange(
                id=uuid7(),
                from_plan="trial",
                to_plan="pro",
                from_status="trialing",
                to_status="active",
                cause="checkout",
            )
        )
        await UsageReportRepository(s, a).freeze(
            [
                {
                    "id": uuid7(),
                    "meter": "api_calls",
                    "hour": hour,
                    "value": 5,
                    "identifier": f"{a}:api_calls:x",
                    "stripe_customer_id": "cus_a",
                    "reported_at": None,
                }
            ]
        )
        await ProductUsageRepository(s, a).record(uuid.uuid4(), date(2027, 1, 1), 10, 0, 100, "pro", hour)
    async with tenant_session(limited_settings, b) as s:
        # Through the repositories, built with A's id while the transaction is B's: nothing.
        assert await BillingAccountRepository(s, a).find() is None
        assert await PlanChangeRepository(s, a).recent(10) == []
        assert await UsageReportRepository(s, a).pending(10) == []
        assert await ProductUsageRepository(s, a).product_days(date(2027, 1, 1), date(2027, 1, 1)) == {}
        assert await BillingAccountRepository(s, a).update_where({"plan": "enterprise"}) == 0
        # Hand-written statements aimed at A's rows: row-level security answers nothing, changes nothing.
        for table in TABLES:
            seen = (await s.execute(text(f"SELECT count(*) FROM {table} WHERE tenant_id = :a"), {"a": a})).scalar_one()
            changed = (await s.execute(text(f"DELETE FROM {table} WHERE tenant_id = :a"), {"a": a})).rowcount
            assert (table, seen, changed) == (table, 0, 0)
        # B's own account is there.
        own = await BillingAccountRepository(s, b).find()
        assert own is not None and own.tenant_id == b
    async with tenant_session(limited_settings, a) as s:
        assert (await BillingAccountRepository(s, a).find()) is not None
        assert len(await PlanChangeRepository(s, a).recent(10)) == 1
        assert len(await UsageReportRepository(s, a).pending(10)) == 1
