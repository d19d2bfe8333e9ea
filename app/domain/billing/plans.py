"""The plan catalogue: every limit later features read comes from here (SPEC §9)."""

from __future__ import annotations

import msgspec


class RateLimitWindow(msgspec.Struct, frozen=True):
    name: str
    limit: int
    seconds: int


class Plan(msgspec.Struct, frozen=True):
    code: str
    name: str
    price_usd_cents: int
    max_products: int
    sync_interval_minutes: int
    api_calls_per_month: int
    max_webhook_endpoints: int
    max_connections: int
    history_retention_days: int
    webhooks: bool
    rate_limits: tuple[RateLimitWindow, ...]


def _limits(burst: int, per_minute: int, per_month: int) -> tuple[RateLimitWindow, ...]:
    return (
        RateLimitWindow("burst", burst, 1),
        RateLimitWindow("minute", per_minute, 60),
        RateLimitWindow("month", per_month, 30 * 24 * 3600),
    )


# Marketplace data refreshes every 30 min (WB stock reports); faster syncs only re-read the same numbers,
# so no plan syncs more often than MIN_SYNC_INTERVAL_MINUTES except the enterprise tier's catalogue checks.
MIN_SYNC_INTERVAL_MINUTES = 10

PLANS: dict[str, Plan] = {
    p.code: p
    for p in (
        Plan("trial", "Trial", 0, 100, 120, 1_000, 1, 1, 30, True, _limits(10, 120, 1_000)),
        Plan("starter", "Starter", 990, 100, 120, 1_000, 0, 1, 90, False, _limits(10, 120, 1_000)),
        Plan("pro", "Pro", 2990, 1_000, 30, 10_000, 5, 3, 365, True, _limits(20, 600, 10_000)),
        Plan(
            "enterprise",
            "Enterprise",
            9990,
            10_000,
            10,
            100_000,
            20,
            10,
            730,
            True,
            _limits(50, 1_200, 100_000),
        ),
        # Billing off (self-hosting): generous limits, the operator owns the machine.
        Plan(
            "self_hosted",
            "Self-hosted",
            0,
            1_000_000,
            30,
            100_000_000,
            100,
            100,
            3650,
            True,
            _limits(200, 6_000, 100_000_000),
        ),
    )
}


def get_plan(code: str) -> Plan:
    return PLANS.get(code, PLANS["self_hosted"])


def effective_plan(code: str, *, billing_enabled: bool) -> Plan:
    """While billing is off every tenant gets the self-hosted plan's limits."""
    return get_plan(code) if billing_enabled else PLANS["self_hosted"]
