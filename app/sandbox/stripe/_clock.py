"""The account's simulated clock: moving it runs everything that falls due on the way, in time order.

Due work: checkout sessions expire, trials send `trial_will_end` and end, periods end (cancel at period
end, schedule phases, renewal and its invoice), open invoices are retried, incomplete subscriptions expire,
and webhook deliveries that failed are retried. Each step happens at its own due time, so a jump of three
months renews three times and the events carry the dates they would have had.
"""

from __future__ import annotations

from collections.abc import Callable

from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render_billing as render_billing
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._billing import (
    INCOMPLETE_EXPIRES,
    TRIAL_WILL_END_NOTICE,
    cancel_now,
    end_trial,
    pay_invoice,
    renew,
    trial_will_end,
)
from app.sandbox.stripe._invoicing import emit_updated, snapshot
from app.sandbox.stripe._render_sessions import checkout_session
from app.sandbox.stripe._schedules import apply_due_phase, phase_end, release

Step = tuple[int, int, str, Callable[[], None]]  # (when, priority, key, action)

MAX_STEPS = 100_000


def _subscription_steps(acct: Account, sub: m.Subscription) -> list[Step]:
    steps: list[Step] = []
    if sub.status == "trialing" and sub.trial_end is not None:
        if not sub.trial_will_end_sent:
            notice = max(sub.trial_end - TRIAL_WILL_END_NOTICE, sub.created)
            steps.append((notice, 1, f"twe:{sub.id}", lambda: trial_will_end(acct, sub)))

        def finish_trial() -> None:
            apply_due_phase(acct, sub, sub.trial_end or acct.now)
            if sub.cancel_at is not None and sub.cancel_at <= acct.now:
                cancel_now(acct, sub, reason="cancellation_requested")
            else:
                end_trial(acct, sub)

        steps.append((sub.trial_end, 2, f"trial:{sub.id}", finish_trial))
    if sub.status in ("active", "past_due", "unpaid"):
        if sub.cancel_at is not None and sub.cancel_at <= sub.period_end:
            steps.append(
                (sub.cancel_at, 2, f"cancel:{sub.id}", lambda: cancel_now(acct, sub, reason="cancellation_requested"))
            )
        else:
            steps.append((sub.period_end, 3, f"renew:{sub.id}", lambda: renew(acct, sub)))
    if sub.status == "incomplete":

        def expire() -> None:
            before = snapshot(acct, sub)
            sub.status = "incomplete_expired"
            sub.ended_at = acct.now
            for inv in acct.invoices.values():
                if inv.subscription == sub.id and inv.status == "open":
                    inv.status = "void"
                    inv.voided_at = acct.now
                    inv.next_payment_attempt = None
                    acct.emit("invoice.voided", render_billing.invoice(acct, inv))
            emit_updated(acct, sub, before)
            acct.emit("customer.subscription.deleted", render_billing.subscription(acct, sub))

        steps.append((sub.created + INCOMPLETE_EXPIRES, 2, f"expire:{sub.id}", expire))
    return steps


def _schedule_steps(acct: Account, schedule: m.Schedule) -> list[Step]:
    due = phase_end(acct, schedule)
    if due is None:
        return []
    sub = acct.subscriptions.get(schedule.subscription or "")

    def step() -> None:
        if sub is not None and sub.status not in ("canceled", "incomplete_expired"):
            apply_due_phase(acct, sub, due)
        if schedule.status == "active" and (phase_end(acct, schedule) or due + 1) <= due:
            release(acct, schedule)  # nothing left to run: let the subscription go on its own

    # after renewals at the same instant (a renewal applies a phase that ends with its period itself)
    return [(due, 4, f"schedule:{schedule.id}", step)]


def _steps(acct: Account) -> list[Step]:
    steps: list[Step] = []
    for session in acct.sessions.values():
        if session.status == "open":

            def expire_session(s: m.CheckoutSession = session) -> None:
                s.status = "expired"
                acct.emit("checkout.session.expired", checkout_session(acct, s))

            steps.append((session.expires_at, 0, f"cs:{session.id}", expire_session))
    for sub in acct.subscriptions.values():
        steps += _subscription_steps(acct, sub)
    for schedule in acct.schedules.values():
        steps += _schedule_steps(acct, schedule)
    for inv in acct.invoices.values():
        if inv.status == "open" and inv.next_payment_attempt is not None:

            def retry(i: m.Invoice = inv) -> None:
                pay_invoice(acct, i)

            steps.append((inv.next_payment_attempt, 5, f"retry:{inv.id}", retry))
    for event in acct.events.values():
        if event.retry_at is not None:

            def redeliver(e: m.Event = event) -> None:
                e.retry_at = None
                acct.outbox.append(e.id)

            steps.append((event.retry_at, 6, f"webhook:{event.id}", redeliver))
    return steps


def advance(acct: Account, target: int) -> list[str]:
    """Run everything due up to ``target`` and stop the clock there; returns the ids of the events emitted."""
    first_event = len(acct.events)
    last_key: tuple[int, str] | None = None
    for _ in range(MAX_STEPS):
        due = [s for s in _steps(acct) if s[0] <= target]
        if not due:
            break
        when, _, key, action = min(due, key=lambda s: (s[0], s[1], s[2]))
        if last_key == (when, key):
            raise RuntimeError(f"the stand-in's clock made no progress on {key}")
        last_key = (when, key)
        acct.now = max(acct.now, when)
        action()
    else:
        raise RuntimeError("too many steps for one clock advance")
    acct.now = max(acct.now, target)
    return list(acct.events)[first_event:]


def next_due(acct: Account) -> int | None:
    steps = _steps(acct)
    return min((s[0] for s in steps), default=None)
