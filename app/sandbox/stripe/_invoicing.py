"""Invoices and charges: creation and finalization (customer balance applied), payment attempts and their
scheduled retries, and the lines a subscription invoice is made of."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render as render
from app.sandbox.stripe import _render_billing as render_billing
from app.sandbox.stripe._account import DAY, Account
from app.sandbox.stripe._errors import StripeApiError, card_declined
from app.sandbox.stripe._metering import aggregate

RETRY_DAYS = (3, 5, 7)  # after the 1st, 2nd and 3rd failed attempt; the 4th failure is final


def human_date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y")


def snapshot(acct: Account, sub: m.Subscription) -> dict[str, Any]:
    return render_billing.subscription(acct, sub)


def emit_updated(acct: Account, sub: m.Subscription, before: dict[str, Any]) -> None:
    """`customer.subscription.updated` with the changed top-level fields' old values, if anything changed."""
    after = render_billing.subscription(acct, sub)
    previous = {key: value for key, value in before.items() if after.get(key) != value}
    if previous:
        acct.emit("customer.subscription.updated", after, previous)


def product_name(acct: Account, price: m.Price) -> str:
    product = acct.products.get(price.product)
    return product.name if product else price.product


def primary_price(acct: Account, sub: m.Subscription) -> m.Price:
    return acct.prices[sub.items[0].price]


# ---- payments ---------------------------------------------------------------------------------------------


def payment_method_of(acct: Account, sub: m.Subscription | None, customer: m.Customer) -> str | None:
    return (sub.default_payment_method if sub else None) or customer.default_payment_method


def decide(acct: Account, sub: m.Subscription | None, customer: m.Customer) -> str | None:
    """The outcome of the next charge: None (approved) or a decline code (scripted, or no payment method)."""
    pm_id = payment_method_of(acct, sub, customer)
    if pm_id is None:
        return "no_payment_method"
    scripted = acct.take_decline(customer.id)
    if scripted is not None:
        return scripted
    pm = acct.payment_methods.get(pm_id)
    return pm.decline if pm else None


def new_invoice(
    acct: Account,
    customer: m.Customer,
    sub: m.Subscription | None,
    reason: str,
    lines: list[m.InvoiceLine],
    period: tuple[int, int],
) -> m.Invoice:
    """Create, then finalize an invoice (applying the customer's balance); emits created and finalized."""
    inv = m.Invoice(
        id=acct.ids.new("in_"),
        created=acct.now,
        customer=customer.id,
        subscription=sub.id if sub else None,
        billing_reason=reason,
        lines=lines,
        currency=sub.currency if sub else (customer.currency or "usd"),
        period_start=period[0],
        period_end=period[1],
    )
    inv.subtotal = sum(line.amount for line in lines)
    acct.invoices[inv.id] = inv
    for line in lines:
        if line.invoice_item is not None:
            acct.invoice_items[line.invoice_item].invoice = inv.id
    acct.emit("invoice.created", render_billing.invoice(acct, inv))
    inv.starting_balance = customer.balance
    after_balance = inv.subtotal + customer.balance
    inv.amount_due = max(0, after_balance)
    customer.balance = min(0, after_balance)
    inv.ending_balance = customer.balance
    inv.status = "open"
    inv.finalized_at = acct.now
    inv.number = f"{customer.invoice_prefix}-{customer.next_invoice_sequence:04d}"
    customer.next_invoice_sequence += 1
    if sub is not None:
        sub.latest_invoice = inv.id
    acct.emit("invoice.finalized", render_billing.invoice(acct, inv))
    return inv


def settle(acct: Account, inv: m.Invoice, decline: str | None) -> bool:
    """Charge an open invoice: paid, or a failed attempt with the next retry scheduled. Emits events."""
    if inv.amount_due > 0:
        inv.attempt_count += 1
        inv.attempted = True
    if inv.amount_due > 0 and decline is not None:
        inv.last_decline_code = decline
        attempt = inv.attempt_count
        inv.next_payment_attempt = acct.now + RETRY_DAYS[attempt - 1] * DAY if attempt <= len(RETRY_DAYS) else None
        acct.emit("invoice.payment_failed", render_billing.invoice(acct, inv))
        return False
    inv.status = "paid"
    inv.amount_paid = inv.amount_due
    inv.paid_at = acct.now
    inv.next_payment_attempt = None
    paid = render_billing.invoice(acct, inv)
    acct.emit("invoice.paid", paid)
    acct.emit("invoice.payment_succeeded", paid)
    return True


def unpaid_invoices(acct: Account, sub: m.Subscription) -> list[m.Invoice]:
    return [i for i in acct.invoices.values() if i.subscription == sub.id and i.status == "open" and i.attempted]


def after_payment(acct: Account, sub: m.Subscription, ok: bool, before: dict[str, Any]) -> None:
    """Move the subscription's status after a charge, then report the change."""
    if ok and sub.status in ("past_due", "unpaid", "incomplete") and not unpaid_invoices(acct, sub):
        sub.status = "active"
    elif not ok and sub.status in ("active", "trialing"):
        sub.status = "past_due"
    emit_updated(acct, sub, before)


# ---- lines -----------------------------------------------------------------------------------------------


def period_lines(acct: Account, sub: m.Subscription, *, free: bool = False) -> list[m.InvoiceLine]:
    """Licensed items for the subscription's current period, billed in advance."""
    lines = []
    for item in sub.items:
        price = acct.prices[item.price]
        if price.usage_type == "metered":
            continue
        qty = item.quantity or 1
        name = product_name(acct, price)
        description = (
            f"Trial period for {name}"
            if free
            else f"{qty} × {name} (at ${price.amount_for(1) / 100:.2f} / {price.interval})"
        )
        lines.append(
            m.InvoiceLine(
                id=acct.ids.new("il_"),
                amount=0 if free else price.amount_for(qty),
                description=description,
                price=price.id,
                quantity=qty,
                period_start=sub.period_start,
                period_end=sub.period_end,
                subscription=sub.id,
                subscription_item=item.id,
            )
        )
    return lines


def usage_lines(acct: Account, sub: m.Subscription, start: int, end: int) -> list[m.InvoiceLine]:
    """Metered items for a finished period, billed in arrears from the meter's aggregate."""
    lines = []
    for item in sub.items:
        price = acct.prices[item.price]
        if price.usage_type != "metered" or price.meter is None:
            continue
        used = max(aggregate(acct, price.meter, sub.customer, start, end), Decimal(0))
        lines.append(
            m.InvoiceLine(
                id=acct.ids.new("il_"),
                amount=price.amount_for(used),
                description=f"{render.number(used)} × {product_name(acct, price)} (usage)",
                price=price.id,
                quantity=int(used),
                period_start=start,
                period_end=end,
                subscription=sub.id,
                subscription_item=item.id,
            )
        )
    return lines


def pending_lines(acct: Account, sub: m.Subscription) -> list[m.InvoiceLine]:
    return [
        m.InvoiceLine(
            id=acct.ids.new("il_"),
            amount=ii.amount,
            description=ii.description,
            price=ii.price,
            quantity=ii.quantity,
            period_start=ii.period_start,
            period_end=ii.period_end,
            subscription=ii.subscription,
            subscription_item=ii.subscription_item,
            invoice_item=ii.id,
            proration=ii.proration,
        )
        for ii in acct.invoice_items.values()
        if ii.subscription == sub.id and ii.invoice is None
    ]


def declined_error(inv: m.Invoice) -> StripeApiError:
    """The 402 a synchronous charge of this invoice answers with."""
    return card_declined(inv.last_decline_code or "card_declined")
