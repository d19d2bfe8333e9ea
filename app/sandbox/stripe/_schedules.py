"""Subscription schedules: the Stripe-documented way to change a subscription's price at a future date.

`from_subscription` makes a schedule whose one phase mirrors the current period; an update replaces the
phases (phase 0 must keep its start date); when a phase ends the subscription takes the next phase's items
(no proration at a period boundary); when the last phase ends the schedule is released (the subscription
carries on as it is) or, with `end_behavior=cancel`, completed and the subscription canceled.
"""

from __future__ import annotations

from typing import Any

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._billing import ItemChange, add_interval, cancel_now, change_items, check_prices
from app.sandbox.stripe._errors import invalid
from app.sandbox.stripe._invoicing import emit_updated, snapshot
from app.sandbox.stripe._render_sessions import schedule as render_schedule


def from_subscription(acct: Account, sub: m.Subscription, metadata: dict[str, str]) -> m.Schedule:
    if sub.schedule is not None:
        raise invalid(
            f"You cannot migrate a subscription that is already attached to a schedule: `{sub.schedule}`.",
            "from_subscription",
        )
    if sub.status in ("canceled", "incomplete_expired"):
        raise invalid("You cannot create a subscription schedule from a canceled subscription.", "from_subscription")
    before = snapshot(acct, sub)
    phase = m.Phase(
        start_date=sub.period_start,
        end_date=sub.trial_end if sub.status == "trialing" and sub.trial_end else sub.period_end,
        items=[m.LineItem(i.price, i.quantity) for i in sub.items],
        trial_end=sub.trial_end if sub.status == "trialing" else None,
    )
    schedule = m.Schedule(
        id=acct.ids.new("sub_sched_"),
        created=acct.now,
        customer=sub.customer,
        subscription=sub.id,
        phases=[phase],
        metadata=metadata,
    )
    acct.schedules[schedule.id] = schedule
    sub.schedule = schedule.id
    acct.emit("subscription_schedule.created", render_schedule(acct, schedule))
    emit_updated(acct, sub, before)
    return schedule


def build_phases(acct: Account, schedule: m.Schedule, raw: list[dict[str, Any]]) -> list[m.Phase]:
    """Phases from update parameters: contiguous, each with items, the current one keeping its start."""
    current = schedule.current_phase(acct.now)
    phases: list[m.Phase] = []
    for i, spec in enumerate(raw):
        param = f"phases[{i}]"
        items = [m.LineItem(it["price"], it.get("quantity")) for it in spec.get("items") or []]
        if not items:
            raise invalid(f"Missing required param: {param}[items].", f"{param}[items]", "parameter_missing")
        prices = check_prices(acct, items, f"{param}[items]")
        start = spec.get("start_date")
        if start == "now":
            start = acct.now
        if start is None:
            start = phases[-1].end_date if phases else (current.start_date if current else acct.now)
        if i == 0 and current is not None and start != current.start_date:
            raise invalid("You can not modify the start date of the current phase.", f"{param}[start_date]")
        if phases and start != phases[-1].end_date:
            raise invalid(
                f"The start date of phase {i} must be equal to the end date of phase {i - 1}.", f"{param}[start_date]"
            )
        end = spec.get("end_date")
        if end == "now":
            end = acct.now
        duration = spec.get("duration")
        if end is not None and duration is not None:
            raise invalid("You can only specify one of `end_date` or `duration`.", f"{param}[end_date]")
        if end is None:
            interval = duration["interval"] if duration else prices[0].interval or "month"
            count = duration.get("interval_count", 1) if duration else prices[0].interval_count
            end = add_interval(start, interval, count, start)
        if end <= start:
            raise invalid(f"The end date of phase {i} must be after its start date.", f"{param}[end_date]")
        phases.append(
            m.Phase(
                start_date=start,
                end_date=end,
                items=items,
                proration_behavior=spec.get("proration_behavior") or "create_prorations",
                metadata={k: v for k, v in (spec.get("metadata") or {}).items() if v is not None},
                trial_end=spec.get("trial_end") if isinstance(spec.get("trial_end"), int) else None,
            )
        )
    return phases


def update(
    acct: Account, schedule: m.Schedule, phases: list[dict[str, Any]] | None, fields: dict[str, Any]
) -> m.Schedule:
    if schedule.status not in ("active", "not_started"):
        raise invalid(
            f"You cannot update a subscription schedule that is currently in the `{schedule.status}` status.",
            "schedule",
        )
    if "end_behavior" in fields:
        if fields["end_behavior"] not in ("release", "cancel"):
            raise invalid("The stand-in models end_behavior `release` and `cancel` only.", "end_behavior")
        schedule.end_behavior = fields["end_behavior"]
    if fields.get("metadata") is not None:
        merged = {**schedule.metadata, **fields["metadata"]}
        schedule.metadata = {k: v for k, v in merged.items() if v is not None}
    if phases is not None:
        schedule.phases = build_phases(acct, schedule, phases)
        sub = acct.subscriptions.get(schedule.subscription or "")
        current = schedule.current_phase(acct.now)
        if sub is not None and current is not None:
            _apply_items(acct, sub, current, fields.get("proration_behavior") or current.proration_behavior)
    acct.emit("subscription_schedule.updated", render_schedule(acct, schedule))
    return schedule


def _apply_items(
    acct: Account, sub: m.Subscription, phase: m.Phase, proration_behavior: str, *, emit: bool = True
) -> None:
    """Make the subscription's items match a phase (the phase's first price replaces the first item, …)."""
    wanted = [(li.price, li.quantity) for li in phase.items]
    have = [(it.price, it.quantity) for it in sub.items]
    if [p for p, _ in wanted] == [p for p, _ in have] and all(
        (q or 1) == (h or 1) for (_, q), (_, h) in zip(wanted, have, strict=True)
    ):
        return
    before = snapshot(acct, sub)
    changes = []
    for index, (price, quantity) in enumerate(wanted):
        existing = sub.items[index].id if index < len(sub.items) else None
        changes.append(ItemChange(existing, price, quantity, False))
    changes += [ItemChange(it.id, None, None, True) for it in sub.items[len(wanted) :]]
    change_items(acct, sub, changes, proration_behavior, acct.now)
    if emit:
        emit_updated(acct, sub, before)


def release(acct: Account, schedule: m.Schedule) -> m.Schedule:
    if schedule.status not in ("active", "not_started"):
        raise invalid(
            f"You cannot release a subscription schedule that is currently in the `{schedule.status}` status.",
            "schedule",
        )
    sub = acct.subscriptions.get(schedule.subscription or "")
    schedule.status = "released"
    schedule.released_at = acct.now
    schedule.released_subscription = schedule.subscription
    schedule.subscription = None
    acct.emit("subscription_schedule.released", render_schedule(acct, schedule))
    if sub is not None:
        before = snapshot(acct, sub)
        sub.schedule = None
        emit_updated(acct, sub, before)
    return schedule


def cancel(acct: Account, schedule: m.Schedule) -> m.Schedule:
    """Canceling a schedule cancels its subscription too."""
    if schedule.status not in ("active", "not_started"):
        raise invalid(
            f"You cannot cancel a subscription schedule that is currently in the `{schedule.status}` status.",
            "schedule",
        )
    sub = acct.subscriptions.get(schedule.subscription or "")
    if sub is not None and sub.status != "canceled":
        cancel_now(acct, sub, reason="cancellation_requested")  # cancels the schedule on its way out
    if schedule.status != "canceled":
        schedule.status = "canceled"
        schedule.canceled_at = acct.now
        acct.emit("subscription_schedule.canceled", render_schedule(acct, schedule))
    return schedule


def phase_end(acct: Account, schedule: m.Schedule) -> int | None:
    """When the schedule next has something to do (the current phase's end)."""
    if schedule.status != "active":
        return None
    current = schedule.current_phase(acct.now)
    if current is not None:
        return current.end_date
    upcoming = [p.end_date for p in schedule.phases if p.end_date > acct.now]
    return min(upcoming) if upcoming else (schedule.phases[-1].end_date if schedule.phases else None)


def apply_due_phase(acct: Account, sub: m.Subscription, at: int, *, emit: bool = True) -> None:
    """At ``at`` (a phase boundary): move to the next phase, or end the schedule after its last phase.

    ``emit=False``: the caller reports the subscription's change itself (a renewal sends one update)."""
    if sub.schedule is None:
        return
    schedule = acct.schedules[sub.schedule]
    if schedule.status != "active":
        return
    ending = next((p for p in schedule.phases if p.end_date == at), None)
    if ending is None:
        return
    following = next((p for p in schedule.phases if p.start_date == at), None)
    if following is not None:
        at_boundary = at == sub.period_end or (sub.status == "trialing" and at == sub.trial_end)
        _apply_items(acct, sub, following, "none" if at_boundary else following.proration_behavior, emit=emit)
        acct.emit("subscription_schedule.updated", render_schedule(acct, schedule))
        return
    if schedule.end_behavior == "cancel":
        schedule.status = "completed"
        schedule.completed_at = at
        acct.emit("subscription_schedule.completed", render_schedule(acct, schedule))
        cancel_now(acct, sub, reason="cancellation_requested")
        return
    release(acct, schedule)
