"""The plan catalogue and the decisions billing makes without I/O: upgrade paths, the problem a limit
raises, which connections the schedule keeps, the order products are kept in, which subscription counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from app.db.models import BillingAccount
from app.domain.billing.plans import PLANS, effective_plan, limit_of, purchasable_plans, upgrades_from
from app.domain.billing.services import PlanLimitError, plan_limit_error, schedulable
from app.domain.billing.services._limits import _by_marketplace_id, is_read_only
from app.domain.billing.services._state import current_subscription, public_status
from app.integrations.stripe import Subscription

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def test_the_plans_sold_and_their_spec_limits() -> None:
    assert [p.code for p in purchasable_plans()] == ["starter", "pro", "enterprise"]
    spec = {
        code: (
            PLANS[code].price_usd_cents,
            PLANS[code].max_products,
            PLANS[code].sync_interval_minutes,
            PLANS[code].api_calls_per_month,
        )
        for code in ("starter", "pro", "enterprise")
    }
    assert spec == {
        "starter": (990, 100, 120, 1_000),
        "pro": (2990, 1_000, 30, 10_000),
        "enterprise": (9990, 10_000, 10, 100_000),
    }
    assert limit_of(PLANS["starter"], "webhook_endpoints") == 0 and PLANS["pro"].webhooks
    assert effective_plan("pro", billing_enabled=False).code == "self_hosted"
    assert PLANS["self_hosted"].manual_sync_interval_minutes == 0  # self-hosters keep only the cooldown


def test_the_upgrade_path_names_plans_that_allow_more() -> None:
    assert upgrades_from("trial", "connections", 1) == ["pro", "enterprise"]
    assert upgrades_from("pro", "products", 1_000) == ["enterprise"]
    assert upgrades_from("enterprise", "products", 10_000) == []


def test_a_plan_limit_problem_names_the_limit_the_plan_and_the_way_up() -> None:
    error = plan_limit_error(PLANS["starter"], "connections", 1)
    assert isinstance(error, PlanLimitError) and error.status_code == 403 and error.code == "plan_limit"
    detail = msgspec.to_builtins(error.extra["plan_limit"])
    assert detail == {
        "limit": "connections",
        "plan": "starter",
        "allowed": 1,
        "current": 1,
        "upgrade_plans": ["pro", "enterprise"],
        "upgrade": "POST /api/v1/billing/change",
    }
    assert "Starter plan allows 1 marketplace connections" in error.detail
    top = plan_limit_error(PLANS["enterprise"], "products", 10_000)
    assert msgspec.to_builtins(top.extra["plan_limit"])["upgrade_plans"] == [] and "Upgrade" not in top.detail


def test_the_schedule_skips_read_only_organizations_and_connections_past_the_limit() -> None:
    assert schedulable("starter", False, 1, billing_enabled=True)
    assert not schedulable("starter", False, 2, billing_enabled=True)
    assert schedulable("pro", False, 3, billing_enabled=True) and not schedulable("pro", False, 4, billing_enabled=True)
    assert not schedulable("pro", True, 1, billing_enabled=True)
    assert schedulable("starter", True, 50, billing_enabled=False)  # billing off: everything syncs


def test_products_are_ordered_by_marketplace_id_as_numbers() -> None:
    assert sorted(["100", "99", "1000", "101"], key=_by_marketplace_id) == ["99", "100", "101", "1000"]


def _account(**values: object) -> BillingAccount:
    base: dict[str, object] = {
        "status": "trialing",
        "plan": "trial",
        "trial_ends_at": NOW + timedelta(days=3),
        "access_ends_at": NOW + timedelta(days=3),
        "stripe_subscription_id": None,
    }
    return BillingAccount(**{**base, **values})


def test_status_and_read_only() -> None:
    trial = _account()
    assert public_status(trial, billing_enabled=True, now=NOW) == "trialing" and not is_read_only(trial, NOW)
    over = _account(access_ends_at=NOW - timedelta(seconds=1))
    assert public_status(over, billing_enabled=True, now=NOW) == "canceled" and is_read_only(over, NOW)
    paying = _account(status="past_due", stripe_subscription_id="sub_1", access_ends_at=None)
    assert public_status(paying, billing_enabled=True, now=NOW) == "past_due" and not is_read_only(paying, NOW)
    assert (
        public_status(_account(status="unpaid", stripe_subscription_id="sub_1"), billing_enabled=True, now=NOW)
        == "past_due"
    )
    assert public_status(None, billing_enabled=True, now=NOW) == "active"  # from before billing was on
    assert public_status(over, billing_enabled=False, now=NOW) == "self_hosted" and not is_read_only(None, NOW)


def _sub(sub_id: str, status: str, created: int) -> Subscription:
    item = {
        "id": "si_" + sub_id,
        "price": {"id": "price_1", "product": "prod_1", "currency": "usd", "lookup_key": "stock_tracker_pro_monthly"},
        "current_period_start": created,
        "current_period_end": created + 30 * 86400,
    }
    return msgspec.convert(
        {"id": sub_id, "customer": "cus_1", "status": status, "created": created, "items": {"data": [item]}},
        Subscription,
    )


def test_the_subscription_that_counts_is_the_newest_alive_one() -> None:
    old, new, ended = _sub("sub_a", "active", 100), _sub("sub_b", "past_due", 200), _sub("sub_c", "canceled", 300)
    assert current_subscription([old, new, ended]) is new
    assert current_subscription([ended, _sub("sub_d", "canceled", 50)]) is ended
    assert current_subscription([]) is None
    assert new.plan_code == "pro"
