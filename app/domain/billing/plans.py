"""The plan catalogue: every limit later features read comes from here (SPEC §9).

Limits are enforced where they bite (``services``): products per sync, connections, webhook endpoints,
members and API keys when one is created, the monthly API-call quota at the request gate, the sync
interval in the scheduler and for manual syncs, history retention in the retention sweep.
"""

from __future__ import annotations

import msgspec


class RateLimitWindow(msgspec.Struct, frozen=True):
    name: str
    limit: int
    seconds: int


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    price_usd_cents: int
    max_products: int
    sync_interval_minutes: int
    api_calls_per_month: int
    max_webhook_endpoints: int
    max_connections: int
    max_members: int
    max_api_keys: int
    history_retention_days: int
    webhooks: bool
    rate_limits: tuple[RateLimitWindow, ...]
    # Manual syncs of one connection at most this often (0: only the one-minute cooldown applies).
    manual_sync_interval_minutes: int = 0
    # Sold through Stripe (`billing sync-catalog` creates its price; Checkout and plan changes accept it).
    purchasable: bool = False


def _limits(burst: int, per_minute: int, per_month: int) -> tuple[RateLimitWindow, ...]:
    return (
        RateLimitWindow("burst", burst, 1),
        RateLimitWindow("minute", per_minute, 60),
        RateLimitWindow("month", per_month, 30 * 24 * 3600),
    )


# Marketplace data refreshes every 30 min (WB stock reports); faster syncs only re-read the same numbers,
# so no plan syncs more often than MIN_SYNC_INTERVAL_MINUTES except the enterprise tier's catalogue checks.
MIN_SYNC_INTERVAL_MINUTES = 10
TRIAL = "trial"
SELF_HOSTED = "self_hosted"

PLANS: dict[str, Plan] = {
    p.code: p
    for p in (
        # A new organization's first weeks when billing is on (no card needed): the starter limits, plus one
        # webhook endpoint so integrations can be tried.
        Plan(
            code=TRIAL,
            name="Trial",
            price_usd_cents=0,
            max_products=100,
            sync_interval_minutes=120,
            api_calls_per_month=1_000,
            max_webhook_endpoints=1,
            max_connections=1,
            max_members=3,
            max_api_keys=2,
            history_retention_days=30,
            webhooks=True,
            rate_limits=_limits(10, 120, 1_000),
            manual_sync_interval_minutes=120,
        ),
        Plan(
            code="starter",
            name="Starter",
            price_usd_cents=990,
            max_products=100,
            sync_interval_minutes=120,
            api_calls_per_month=1_000,
            max_webhook_endpoints=0,
            max_connections=1,
            max_members=3,
            max_api_keys=2,
            history_retention_days=90,
            webhooks=False,
            rate_limits=_limits(10, 120, 1_000),
            manual_sync_interval_minutes=120,
            purchasable=True,
        ),
        Plan(
            code="pro",
            name="Pro",
            price_usd_cents=2990,
            max_products=1_000,
            sync_interval_minutes=30,
            api_calls_per_month=10_000,
            max_webhook_endpoints=5,
            max_connections=3,
            max_members=10,
            max_api_keys=10,
            history_retention_days=365,
            webhooks=True,
            rate_limits=_limits(20, 600, 10_000),
            manual_sync_interval_minutes=30,
            purchasable=True,
        ),
        Plan(
            code="enterprise",
            name="Enterprise",
            price_usd_cents=9990,
            max_products=10_000,
            sync_interval_minutes=10,
            api_calls_per_month=100_000,
            max_webhook_endpoints=20,
            max_connections=10,
            max_members=50,
            max_api_keys=50,
            history_retention_days=730,
            webhooks=True,
            rate_limits=_limits(50, 1_200, 100_000),
            manual_sync_interval_minutes=10,
            purchasable=True,
        ),
        # Billing off (self-hosting): generous limits, the operator owns the machine (manual syncs only have
        # the one-minute cooldown).
        Plan(
            code=SELF_HOSTED,
            name="Self-hosted",
            price_usd_cents=0,
            max_products=1_000_000,
            sync_interval_minutes=30,
            api_calls_per_month=100_000_000,
            max_webhook_endpoints=100,
            max_connections=100,
            max_members=1_000,
            max_api_keys=100,
            history_retention_days=3650,
            webhooks=True,
            rate_limits=_limits(200, 6_000, 100_000_000),
        ),
    )
}


def get_plan(code: str) -> Plan:
    return PLANS.get(code, PLANS[SELF_HOSTED])


def effective_plan(code: str, *, billing_enabled: bool) -> Plan:
    """While billing is off every tenant gets the self-hosted plan's limits."""
    return get_plan(code) if billing_enabled else PLANS[SELF_HOSTED]


def purchasable_plans() -> list[Plan]:
    """The plans sold through Stripe, cheapest first."""
    return sorted((p for p in PLANS.values() if p.purchasable), key=lambda p: p.price_usd_cents)


def upgrades_from(code: str, limit: str, current: int) -> list[str]:
    """Purchasable plans whose ``limit`` (a ``LIMITS`` name) allows more than ``current`` — the upgrade path."""
    return [p.code for p in purchasable_plans() if p.code != code and limit_of(p, limit) > current]


# The limits by the names the API, the problems and the usage report use.
LIMITS: dict[str, str] = {
    "products": "max_products",
    "connections": "max_connections",
    "webhook_endpoints": "max_webhook_endpoints",
    "members": "max_members",
    "api_keys": "max_api_keys",
    "api_calls": "api_calls_per_month",
    "sync_interval": "manual_sync_interval_minutes",
}


def limit_of(plan: Plan, limit: str) -> int:
    value = getattr(plan, LIMITS[limit])
    if limit == "webhook_endpoints" and not plan.webhooks:
        return 0
    return int(value)
