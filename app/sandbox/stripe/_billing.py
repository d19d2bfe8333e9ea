"""Subscriptions, invoices and payments as Stripe runs them (classic billing mode, one currency per customer).

- A subscription bills licensed items in advance and metered items in arrears; a trial bills nothing
  (a paid $0 invoice) until it ends.
- A price change mid-period with `create_prorations` leaves two pending invoice items (credit for the
  unused time on the old price, charge for the remaining time on the new one) for the next invoice;
  `always_invoice` bills them at once; a trialing subscription is never prorated.
- A failed payment leaves the invoice open and the subscription `past_due`; the invoice is retried 3, 5
  and 7 days later, and after the last failure the subscription is canceled (reason `payment_failed`).
- Negative invoices become customer credit that the next invoices use first.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render_billing as render_billing
from app.sandbox.stripe._account import DAY, Account
from app.sandbox.stripe._errors import card_declined, invalid, unsupported
from app.sandbox.stripe._invoicing import (
    after_payment,
    decide,
    emit_updated,
    human_date,
    new_invoice,
    payment_method_of,
    pending_lines,
    period_lines,
    primary_price,
    product_name,
    settle,
    snapshot,
    usage_lines,
)

TRIAL_WILL_END_NOTICE = 3 * DAY
INCOMPLETE_EXPIRES = 23 * 3600


def add_interval(ts: int, interval: str, count: int, anchor: int) -> int:
    """``ts`` plus ``count`` intervals, keeping the anchor's day of month (clamped to the month's end)."""
    if interval == "day":
        return ts + count * DAY
    if interval == "week":
        return ts + 7 * count * DAY
    months = count if interval == "month" else 12 * count
    start = datetime.fromtimestamp(ts, UTC)
    anchor_dt = datetime.fromtimestamp(anchor, UTC)
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    month += 1
    day = min(anchor_dt.day, calendar.monthrange(year, month)[1])
    moved = datetime(year, month, day, anchor_dt.hour, anchor_dt.minute, anchor_dt.second, tzinfo=UTC)
    return int(moved.timestamp())


def pay_invoice(acct: Account, inv: m.Invoice) -> bool:
    """`POST /v1/invoices/{id}/pay` and the automatic retries."""
    customer = acct.customers[inv.customer]
    sub = acct.subscriptions.get(inv.subscription) if inv.subscription else None
    before = snapshot(acct, sub) if sub else None
    ok = settle(acct, inv, decide(acct, sub, customer))
    if sub is not None and before is not None:
        after_payment(acct, sub, ok, before)
        if not ok and inv.next_payment_attempt is None and sub.status == "past_due":
            cancel_now(acct, sub, reason="payment_failed")
    return ok


# ---- subscription lifecycle ------------------------------------------------------------------------------


@dataclass(slots=True)
class NewSubscription:
    customer: m.Customer
    items: list[m.LineItem]
    metadata: dict[str, str]
    trial_end: int | None = None
    trial_end_behavior: str = "create_invoice"
    default_payment_method: str | None = None
    description: str | None = None


def check_prices(acct: Account, items: list[m.LineItem], param: str = "items") -> list[m.Price]:
    prices = [acct.price(item.price, f"{param}[{i}][price]") for i, item in enumerate(items)]
    if not prices:
        raise invalid("Missing required param: items.", param, "parameter_missing")
    for i, price in enumerate(prices):
        if price.interval is None:
            raise invalid(
                "The price specified is set to `type=one_time` but this field only accepts prices with "
                "`type=recurring`.",
                f"{param}[{i}][price]",
            )
        if not price.active:
            raise invalid(
                "The price specified is inactive. This field only accepts active prices.", f"{param}[{i}][price]"
            )
    first = prices[0]
    if any(p.interval != first.interval or p.interval_count != first.interval_count for p in prices):
        raise invalid(
            "All prices on a subscription must have the same `recurring.interval` and `interval_count`.", param
        )
    if any(p.currency != first.currency for p in prices):
        raise invalid("All prices on a subscription must have the same currency.", param)
    return prices


def decide_for(acct: Account, spec: NewSubscription) -> str | None:
    """The outcome of charging a subscription that is about to be created."""
    if spec.default_payment_method is None and spec.customer.default_payment_method is None:
        return "no_payment_method"
    scripted = acct.take_decline(spec.customer.id)
    if scripted is not None:
        return scripted
    pm = acct.payment_methods.get(spec.default_payment_method or spec.customer.default_payment_method or "")
    return pm.decline if pm else None


def require_payment_for(acct: Account, spec: NewSubscription) -> None:
    """`error_if_incomplete` on create: a decline refuses the request (402) before anything exists."""
    decline = decide_for(acct, spec)
    if decline is not None:
        raise card_declined(decline)


def create_subscription(
    acct: Account, spec: NewSubscription, decline: str | None, *, attempt: bool = True
) -> tuple[m.Subscription, m.Invoice]:
    """Start a subscription: trialing (a paid $0 invoice), or charged at once with ``decline`` as the outcome
    (``attempt=False``: `default_incomplete`, the first invoice waits open for a payment)."""
    prices = check_prices(acct, spec.items)
    first = prices[0]
    now = acct.now
    trial_end = spec.trial_end
    if trial_end is None and first.trial_period_days:
        trial_end = now + first.trial_period_days * DAY
    period_end = (
        trial_end if trial_end is not None else add_interval(now, first.interval or "month", first.interval_count, now)
    )
    sub = m.Subscription(
        id=acct.ids.new("sub_"),
        created=now,
        customer=spec.customer.id,
        items=[],
        currency=first.currency,
        period_start=now,
        period_end=period_end,
        billing_cycle_anchor=period_end if trial_end is not None else now,
        start_date=now,
        status="trialing" if trial_end is not None else "incomplete",
        trial_start=now if trial_end is not None else None,
        trial_end=trial_end,
        trial_end_behavior=spec.trial_end_behavior,
        metadata=dict(spec.metadata),
        description=spec.description,
        default_payment_method=spec.default_payment_method,
    )
    for item, price in zip(spec.items, prices, strict=True):
        sub_item = m.SubItem(
            acct.ids.new("si_"), now, price.id, None if price.usage_type == "metered" else item.quantity or 1
        )
        sub.items.append(sub_item)
        acct.items[sub_item.id] = (sub.id, sub_item)
    acct.subscriptions[sub.id] = sub
    spec.customer.currency = spec.customer.currency or first.currency
    acct.emit("customer.subscription.created", render_billing.subscription(acct, sub))
    if trial_end is not None:
        inv = new_invoice(
            acct, spec.customer, sub, "subscription_create", period_lines(acct, sub, free=True), (now, now)
        )
        settle(acct, inv, None)
        if trial_end - now <= TRIAL_WILL_END_NOTICE:
            trial_will_end(acct, sub)
        return sub, inv
    before = snapshot(acct, sub)
    inv = new_invoice(acct, spec.customer, sub, "subscription_create", period_lines(acct, sub), (now, now))
    if attempt or inv.amount_due == 0:
        after_payment(acct, sub, settle(acct, inv, decline), before)
    return sub, inv


def trial_will_end(acct: Account, sub: m.Subscription) -> None:
    sub.trial_will_end_sent = True
    acct.emit("customer.subscription.trial_will_end", render_billing.subscription(acct, sub))


def end_trial(acct: Account, sub: m.Subscription, reason: str = "subscription_cycle") -> None:
    """The trial is over (at its end, or `trial_end=now`): bill the first paid period, or act on no card."""
    customer = acct.customers[sub.customer]
    before = snapshot(acct, sub)
    now = acct.now
    if payment_method_of(acct, sub, customer) is None and sub.trial_end_behavior in ("cancel", "pause"):
        if sub.trial_end_behavior == "cancel":
            sub.trial_end = now
            cancel_now(acct, sub, reason=None)
            return
        sub.status = "paused"
        sub.trial_end = now
        emit_updated(acct, sub, before)
        acct.emit("customer.subscription.paused", render_billing.subscription(acct, sub))
        return
    price = primary_price(acct, sub)
    sub.trial_end = now
    sub.status = "active"
    sub.period_start = now
    sub.billing_cycle_anchor = now
    sub.period_end = add_interval(now, price.interval or "month", price.interval_count, now)
    inv = new_invoice(acct, customer, sub, reason, [*pending_lines(acct, sub), *period_lines(acct, sub)], (now, now))
    emit_updated(acct, sub, before)  # one update: status, period and latest invoice
    before = snapshot(acct, sub)
    after_payment(acct, sub, settle(acct, inv, decide(acct, sub, customer)), before)


def renew(acct: Account, sub: m.Subscription) -> None:
    """The period ended: start the next one and bill it (plus usage of the one that ended)."""
    from app.sandbox.stripe._schedules import apply_due_phase

    customer = acct.customers[sub.customer]
    before = snapshot(acct, sub)
    old_start, old_end = sub.period_start, sub.period_end
    usage = usage_lines(acct, sub, old_start, old_end)
    apply_due_phase(acct, sub, old_end, emit=False)
    price = primary_price(acct, sub)
    sub.period_start = old_end
    sub.period_end = add_interval(old_end, price.interval or "month", price.interval_count, sub.billing_cycle_anchor)
    lines = [*pending_lines(acct, sub), *usage, *period_lines(acct, sub)]
    inv = new_invoice(acct, customer, sub, "subscription_cycle", lines, (old_start, old_end))
    emit_updated(acct, sub, before)  # one update: period, items of a new schedule phase, latest invoice
    before = snapshot(acct, sub)
    after_payment(acct, sub, settle(acct, inv, decide(acct, sub, customer)), before)


def cancel_now(
    acct: Account,
    sub: m.Subscription,
    *,
    reason: str | None,
    comment: str | None = None,
    feedback: str | None = None,
    prorate: bool = False,
    invoice_now: bool = False,
) -> None:
    """End the subscription now; its schedule, if any, ends with it. Emits `customer.subscription.deleted`."""
    now = acct.now
    customer = acct.customers[sub.customer]
    if prorate and sub.status in ("active", "past_due") and now < sub.period_end:
        for item in sub.items:
            price = acct.prices[item.price]
            if price.usage_type == "licensed":
                credit = -_share(price.amount_for(item.quantity or 1), now, sub)
                _proration_item(
                    acct,
                    sub,
                    item,
                    price,
                    credit,
                    f"Unused time on {product_name(acct, price)} after {human_date(now)}",
                    now,
                )
    if invoice_now:
        lines = [*pending_lines(acct, sub), *usage_lines(acct, sub, sub.period_start, now)]
        if lines:
            inv = new_invoice(acct, customer, sub, "subscription_cycle", lines, (sub.period_start, now))
            settle(acct, inv, decide(acct, sub, customer))
    sub.status = "canceled"
    sub.canceled_at = sub.canceled_at if sub.cancel_at_period_end and sub.canceled_at else now
    sub.ended_at = now
    sub.cancel_at = None if sub.cancel_at and sub.cancel_at > now else sub.cancel_at
    sub.cancellation_reason = reason
    sub.cancellation_comment = comment or sub.cancellation_comment
    sub.cancellation_feedback = feedback or sub.cancellation_feedback
    if sub.schedule is not None:
        schedule = acct.schedules[sub.schedule]
        if schedule.status in ("active", "not_started"):
            schedule.status = "canceled"
            schedule.canceled_at = now
            from app.sandbox.stripe._render_sessions import schedule as render_schedule

            acct.emit("subscription_schedule.canceled", render_schedule(acct, schedule))
    acct.emit("customer.subscription.deleted", render_billing.subscription(acct, sub))


def _share(amount: int, since: int, sub: m.Subscription) -> int:
    length = max(sub.period_end - sub.period_start, 1)
    remaining = max(sub.period_end - since, 0)
    return round(amount * remaining / length)


def _proration_item(
    acct: Account, sub: m.Subscription, item: m.SubItem, price: m.Price, amount: int, description: str, since: int
) -> m.InvoiceItem:
    ii = m.InvoiceItem(
        id=acct.ids.new("ii_"),
        created=acct.now,
        customer=sub.customer,
        subscription=sub.id,
        subscription_item=item.id,
        price=price.id,
        amount=amount,
        description=description,
        period_start=since,
        period_end=sub.period_end,
    )
    acct.invoice_items[ii.id] = ii
    return ii


@dataclass(slots=True)
class ItemChange:
    id: str | None
    price: str | None
    quantity: int | None
    deleted: bool
    metadata: dict[str, str | None] | None = None


def change_items(
    acct: Account, sub: m.Subscription, changes: list[ItemChange], proration_behavior: str, proration_date: int
) -> list[m.InvoiceItem]:
    """Apply item changes; returns the proration items created (none while trialing or with `none`)."""
    prorate = (
        proration_behavior != "none" and sub.status in ("active", "past_due") and sub.period_start <= proration_date
    )
    created: list[m.InvoiceItem] = []
    interval = (primary_price(acct, sub).interval, primary_price(acct, sub).interval_count)
    for i, change in enumerate(changes):
        param = f"items[{i}]"
        if change.id is not None:
            found = next((it for it in sub.items if it.id == change.id), None)
            if found is None:
                raise invalid(f"No such subscription item: '{change.id}'", f"{param}[id]", "resource_missing")
            item = found
            old_price, old_qty = acct.prices[item.price], item.quantity
        else:
            if change.price is None:
                raise invalid(f"Missing required param: {param}[price].", f"{param}[price]", "parameter_missing")
            item = m.SubItem(acct.ids.new("si_"), acct.now, change.price, None)
            old_price, old_qty = None, None
        if change.deleted:
            sub.items.remove(item)
            acct.items.pop(item.id, None)
            new_price, new_qty = None, None
        else:
            new_price = acct.price(change.price, f"{param}[price]") if change.price else acct.prices[item.price]
            if (new_price.interval, new_price.interval_count) != interval:
                raise unsupported("changing a subscription's billing interval", f"{param}[price]")
            if new_price.currency != sub.currency:
                raise invalid("The price's currency must match the subscription's currency.", f"{param}[price]")
            new_qty = None if new_price.usage_type == "metered" else (change.quantity or old_qty or 1)
            item.price, item.quantity = new_price.id, new_qty
            if change.metadata is not None:
                item.metadata = {k: v for k, v in {**item.metadata, **change.metadata}.items() if v is not None}
            if change.id is None:
                sub.items.append(item)
                acct.items[item.id] = (sub.id, item)
        if not prorate:
            continue
        since = proration_date
        if old_price is not None and old_price.usage_type == "licensed":
            credit = -_share(old_price.amount_for(old_qty or 1), since, sub)
            text = f"Unused time on {old_qty or 1} × {product_name(acct, old_price)} after {human_date(since)}"
            created.append(_proration_item(acct, sub, item, old_price, credit, text, since))
        if new_price is not None and new_price.usage_type == "licensed":
            charge = _share(new_price.amount_for(new_qty or 1), since, sub)
            text = f"Remaining time on {new_qty or 1} × {product_name(acct, new_price)} after {human_date(since)}"
            created.append(_proration_item(acct, sub, item, new_price, charge, text, since))
    if not sub.items:
        raise invalid("A subscription must have at least one active plan.", "items")
    return created


def invoice_prorations(
    acct: Account, sub: m.Subscription, items: list[m.InvoiceItem], decline: str | None
) -> m.Invoice:
    """`always_invoice`: bill the prorations (and anything else pending) now."""
    customer = acct.customers[sub.customer]
    before = snapshot(acct, sub)
    lines = pending_lines(acct, sub)
    start = min((ii.period_start for ii in items), default=acct.now)
    inv = new_invoice(acct, customer, sub, "subscription_update", lines, (start, acct.now))
    after_payment(acct, sub, settle(acct, inv, decline), before)
    return inv


def require_payment(acct: Account, sub: m.Subscription) -> None:
    """`error_if_incomplete` on update: decide the charge first and refuse the whole update if it would fail.

    The decision consumes a scripted decline, as the real charge would have."""
    decline = decide(acct, sub, acct.customers[sub.customer])
    if decline is not None:
        raise card_declined(decline)
