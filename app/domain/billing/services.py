"""The billing area's public surface: what other domains may use (plans and their limits)."""

from __future__ import annotations

from app.domain.billing.plans import MIN_SYNC_INTERVAL_MINUTES, PLANS, Plan, RateLimitWindow, effective_plan, get_plan

__all__ = ["MIN_SYNC_INTERVAL_MINUTES", "PLANS", "Plan", "RateLimitWindow", "effective_plan", "get_plan"]
