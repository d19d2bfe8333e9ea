"""Which rule applies, and what a quantity (and days of cover) means under it — pure, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from app.db.models.notifications import AlertRule

State = Literal["out", "low", "band", "ok"]
Action = Literal["open", "escalate", "resolve", "keep", "none"]
DEFAULT_WINDOW_DAYS = 14
DEFAULT_HYSTERESIS_UNITS = 2
DEFAULT_HYSTERESIS_DAYS = 1.0
# More per-product alerts than this from one sync go out as one digest (an organization setting).
DEFAULT_MAX_ALERTS_PER_SYNC = 20


@dataclass(frozen=True, slots=True)
class Rule:
    scope: Literal["default", "product", "warehouse"]
    enabled: bool
    units_below: int | None
    days_of_cover_below: float | None
    cover_window_days: int = DEFAULT_WINDOW_DAYS
    hysteresis_units: int = DEFAULT_HYSTERESIS_UNITS
    hysteresis_days: float = DEFAULT_HYSTERESIS_DAYS
    rule_id: uuid.UUID | None = None

    @property
    def uses_cover(self) -> bool:
        return self.enabled and self.days_of_cover_below is not None

    def snapshot(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "rule_id": str(self.rule_id) if self.rule_id else None,
            "units_below": self.units_below,
            "days_of_cover_below": self.days_of_cover_below,
            "cover_window_days": self.cover_window_days,
            "hysteresis_units": self.hysteresis_units,
            "hysteresis_days": self.hysteresis_days,
        }


def rule_from_row(row: AlertRule) -> Rule:
    scope: Literal["default", "product", "warehouse"] = (
        "default" if row.product_id is None else ("warehouse" if row.warehouse_id else "product")
    )
    return Rule(
        scope=scope,
        enabled=row.enabled,
        units_below=row.units_below,
        days_of_cover_below=row.days_of_cover_below,
        cover_window_days=row.cover_window_days,
        hysteresis_units=row.hysteresis_units,
        hysteresis_days=row.hysteresis_days,
        rule_id=row.id,
    )


def deployment_default(low_stock_units: int) -> Rule:
    """The rule until a tenant sets its own: ``STOCK_TRACKER_LOW_STOCK_UNITS`` units."""
    return Rule(scope="default", enabled=True, units_below=low_stock_units, days_of_cover_below=None)


def classify(rule: Rule, quantity: int, cover: float | None) -> State:
    """out (nothing left), low (below a threshold), band (above it but within hysteresis), ok.

    ``cover`` None means unbounded (no sales in the window): never low by cover.
    """
    if quantity <= 0:
        return "out"
    low_units = rule.units_below is not None and quantity < rule.units_below
    low_cover = rule.days_of_cover_below is not None and cover is not None and cover < rule.days_of_cover_below
    if low_units or low_cover:
        return "low"
    clear_units = rule.units_below is None or quantity >= rule.units_below + rule.hysteresis_units
    clear_cover = (
        rule.days_of_cover_below is None or cover is None or cover >= rule.days_of_cover_below + rule.hysteresis_days
    )
    return "ok" if clear_units and clear_cover else "band"


def decide(open_level: str | None, state: State) -> Action:
    """The lifecycle: open once on crossing, escalate low → out once, resolve only past the hysteresis band.

    An open alert's level only escalates: a partial restock that stays below the threshold emits nothing.
    """
    if open_level is None:
        return "open" if state in ("low", "out") else "none"
    if state == "out" and open_level == "low":
        return "escalate"
    if state == "ok":
        return "resolve"
    return "keep"
