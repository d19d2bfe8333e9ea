"""Subscription changes, the way Stripe documents them:

- upgrade at once: update the plan item's price with `proration_behavior=create_prorations` (credit for
  the unused time, charge for the rest, both on the next invoice; `always_invoice` bills them now);
- downgrade at period end: a subscription schedule made `from_subscription`, whose current phase keeps the
  present price until the period ends and whose next phase carries the new one, then releases the
  subscription (`end_behavior=release`). The pending change is the schedule's upcoming phase; releasing the
  schedule drops it. Stripe refuses cancellation flags on a scheduled subscription, so cancelling at period
  end releases a pending downgrade first, and so does an upgrade;
- cancel now, cancel at period end, resume (undo a cancel at period end, or restart a paused subscription).
"""

from __future__ import annotations

from typing import Any, cast

from app.integrations.stripe import schemas as s
from app.integrations.stripe._base import GatewayBase, to_struct
from app.integrations.stripe.errors import StripeInvalidRequest


def _phase_items(items: list[tuple[str, int | None]]) -> list[dict[str, Any]]:
    return [{"price": price, **({"quantity": qty} if qty is not None else {})} for price, qty in items]


class SubscriptionsMixin(GatewayBase):
    async def get_subscription(self, subscription_id: str) -> s.Subscription:
        async with self._translated():
            sub = await self._sdk.v1.subscriptions.retrieve_async(subscription_id)
        return to_struct(sub, s.Subscription)

    async def list_subscriptions(self, customer_id: str, *, status: str = "all") -> list[s.Subscription]:
        """Every subscription of a customer (``status`` as Stripe filters; `all` includes canceled ones)."""
        out = []
        async with self._translated():
            page = await self._sdk.v1.subscriptions.list_async(
                params={"customer": customer_id, "status": cast(Any, status), "limit": 100}
            )
            async for sub in page.auto_paging_iter():
                out.append(to_struct(sub, s.Subscription))
        return out

    async def _update(
        self, subscription_id: str, params: dict[str, Any], idempotency_key: str | None = None
    ) -> s.Subscription:
        async with self._translated():
            sub = await self._sdk.v1.subscriptions.update_async(
                subscription_id, params=cast(Any, params), options=self._options(idempotency_key)
            )
        return to_struct(sub, s.Subscription)

    async def _drop_schedule(self, sub: s.Subscription) -> None:
        if sub.schedule is not None:
            schedule = await self.get_schedule(sub.schedule)
            if schedule.status in ("active", "not_started"):
                await self.release_schedule(schedule.id)

    async def change_price_now(
        self,
        subscription_id: str,
        price_id: str,
        *,
        proration_behavior: str = "create_prorations",
        idempotency_key: str | None = None,
    ) -> s.Subscription:
        """Move the plan item to ``price_id`` now, prorated (a pending downgrade is dropped first)."""
        sub = await self.get_subscription(subscription_id)
        await self._drop_schedule(sub)
        params = {"items": [{"id": sub.plan_item.id, "price": price_id}], "proration_behavior": proration_behavior}
        return await self._update(subscription_id, params, idempotency_key)

    async def change_price_at_period_end(self, subscription_id: str, price_id: str) -> s.SubscriptionSchedule:
        """Switch the plan item to ``price_id`` when the current period (or trial) ends; returns the schedule,
        whose ``upcoming_phase(now)`` is the pending change. Running it again replaces the pending change."""
        sub = await self.get_subscription(subscription_id)
        if sub.cancel_at_period_end:
            raise StripeInvalidRequest("The subscription is set to cancel at period end; resume it first")
        schedule = await self._schedule_of(sub)
        window = schedule.current_phase or s.PhaseWindow(sub.current_period_start, sub.current_period_end)
        now_items = [(i.price.id, i.quantity) for i in sub.item_list]
        plan_item = sub.plan_item
        next_items = [(price_id if i.id == plan_item.id else i.price.id, i.quantity) for i in sub.item_list]
        interval = plan_item.price.recurring.interval if plan_item.price.recurring else "month"
        current: dict[str, Any] = {
            "items": _phase_items(now_items),
            "start_date": window.start_date,
            "end_date": window.end_date,
        }
        if sub.status == "trialing" and sub.trial_end:
            current["trial_end"] = sub.trial_end  # a phase without it would end the trial now
        params = {
            "end_behavior": "release",
            "proration_behavior": "none",
            "phases": [
                current,
                {"items": _phase_items(next_items), "duration": {"interval": interval, "interval_count": 1}},
            ],
        }
        async with self._translated():
            updated = await self._sdk.v1.subscription_schedules.update_async(schedule.id, params=cast(Any, params))
        return to_struct(updated, s.SubscriptionSchedule)

    async def _schedule_of(self, sub: s.Subscription) -> s.SubscriptionSchedule:
        """The subscription's schedule, made from it when it has none (or a concurrent call just made one)."""
        if sub.schedule is None:
            try:
                async with self._translated():
                    created = await self._sdk.v1.subscription_schedules.create_async(
                        params={"from_subscription": sub.id}
                    )
                return to_struct(created, s.SubscriptionSchedule)
            except StripeInvalidRequest:
                sub = await self.get_subscription(sub.id)
                if sub.schedule is None:
                    raise
        return await self.get_schedule(sub.schedule)

    async def get_schedule(self, schedule_id: str) -> s.SubscriptionSchedule:
        async with self._translated():
            schedule = await self._sdk.v1.subscription_schedules.retrieve_async(schedule_id)
        return to_struct(schedule, s.SubscriptionSchedule)

    async def release_schedule(self, schedule_id: str) -> s.SubscriptionSchedule:
        """Drop a pending change: the subscription carries on as it is now."""
        async with self._translated():
            schedule = await self._sdk.v1.subscription_schedules.release_async(schedule_id)
        return to_struct(schedule, s.SubscriptionSchedule)

    async def cancel_now(self, subscription_id: str, *, comment: str | None = None) -> s.Subscription:
        """End the subscription immediately (no proration credit)."""
        params: dict[str, Any] = {"cancellation_details": {"comment": comment}} if comment else {}
        async with self._translated():
            sub = await self._sdk.v1.subscriptions.cancel_async(subscription_id, params=cast(Any, params))
        return to_struct(sub, s.Subscription)

    async def cancel_at_period_end(self, subscription_id: str) -> s.Subscription:
        """Keep the subscription until its period ends, then cancel it (drops a pending downgrade)."""
        sub = await self.get_subscription(subscription_id)
        await self._drop_schedule(sub)
        return await self._update(subscription_id, {"cancel_at_period_end": True})

    async def resume(self, subscription_id: str) -> s.Subscription:
        """Undo a cancel at period end; a paused subscription (trial ended without a card) restarts now."""
        sub = await self.get_subscription(subscription_id)
        if sub.status == "paused":
            async with self._translated():
                resumed = await self._sdk.v1.subscriptions.resume_async(
                    subscription_id, params=cast(Any, {"billing_cycle_anchor": "now"})
                )
            return to_struct(resumed, s.Subscription)
        return await self._update(subscription_id, {"cancel_at_period_end": False})

    # ---- invoices ------------------------------------------------------------------------------------------

    async def get_invoice(self, invoice_id: str) -> s.Invoice:
        async with self._translated():
            invoice = await self._sdk.v1.invoices.retrieve_async(invoice_id)
        return to_struct(invoice, s.Invoice)

    async def list_invoices(
        self, *, customer_id: str | None = None, subscription_id: str | None = None, limit: int = 10
    ) -> list[s.Invoice]:
        """The newest invoices of a customer or a subscription."""
        params: dict[str, Any] = {"limit": limit}
        if customer_id:
            params["customer"] = customer_id
        if subscription_id:
            params["subscription"] = subscription_id
        async with self._translated():
            page = await self._sdk.v1.invoices.list_async(params=cast(Any, params))
        return [to_struct(inv, s.Invoice) for inv in page.data]
