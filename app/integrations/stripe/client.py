"""`StripeGateway`: the only way the app talks to Stripe — the official SDK's `StripeClient` over its async
HTTPX client, `client.v1.*` services, `_async` methods. Answers come back as our Structs (`schemas`), failures
as our errors (`errors`).

Every POST carries an idempotency key (the SDK makes one when we do not, and reuses it on its own retries of
409s, 5xx and network failures); methods that a job may repeat take an ``idempotency_key`` so a retried job
does not create a second object within Stripe's 24-hour idempotency window.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from app.integrations.stripe import schemas as s
from app.integrations.stripe._base import to_struct
from app.integrations.stripe._subscriptions import SubscriptionsMixin
from app.integrations.stripe.errors import StripeConflict, StripeInvalidRequest, StripeNotFound
from app.integrations.stripe.webhooks import verify_webhook


class StripeGateway(SubscriptionsMixin):
    """Stripe for the billing domain. Build one per process (``from_settings``) and ``aclose()`` it at exit.

    Everything the billing domain asks of Stripe: customers, the plan catalogue (prices by lookup key),
    Checkout and portal sessions, subscription changes (in ``SubscriptionsMixin``), usage meters and
    webhook verification.
    """

    # ---- webhooks ------------------------------------------------------------------------------------------

    def verify_webhook(self, payload: bytes, signature: str | None) -> s.WebhookEvent:
        """Check `Stripe-Signature` on the raw body (300 s tolerance) and parse the event."""
        return verify_webhook(payload, signature, self._webhook_secret, tolerance=self._tolerance)

    async def get_event(self, event_id: str) -> s.WebhookEvent:
        async with self._translated():
            event = await self._sdk.v1.events.retrieve_async(event_id)
        return to_struct(event, s.WebhookEvent)

    # ---- customers -----------------------------------------------------------------------------------------

    async def get_customer(self, customer_id: str) -> s.Customer:
        async with self._translated():
            customer = await self._sdk.v1.customers.retrieve_async(customer_id)
        return to_struct(customer, s.Customer)

    async def find_or_create_customer(
        self, tenant_id: str, *, customer_id: str | None = None, email: str | None = None, name: str | None = None
    ) -> s.Customer:
        """The organization's one Stripe customer (metadata `tenant_id`), created when it has none.

        Pass the id the domain stored; without it, Stripe's search finds an earlier customer (search lags
        writes by up to a minute, so the create also carries the idempotency key `customer:<tenant_id>`,
        which makes a repeat within 24 hours return the same customer).
        """
        if customer_id:
            try:
                found = await self.get_customer(customer_id)
            except StripeNotFound:
                found = None
            if found is not None and not found.deleted:
                return found
        query = f"metadata['tenant_id']:'{_quote(tenant_id)}'"
        async with self._translated():
            result = await self._sdk.v1.customers.search_async(params={"query": query, "limit": 1})
        if result.data:
            return to_struct(result.data[0], s.Customer)
        params: dict[str, Any] = {"metadata": {"tenant_id": tenant_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        async with self._translated():
            created = await self._sdk.v1.customers.create_async(
                params=cast(Any, params), options={"idempotency_key": f"customer:{tenant_id}"}
            )
        return to_struct(created, s.Customer)

    # ---- catalogue -----------------------------------------------------------------------------------------

    async def prices_by_lookup_key(self, lookup_keys: Sequence[str]) -> dict[str, s.Price]:
        """Active prices for these lookup keys (missing keys are simply absent)."""
        out: dict[str, s.Price] = {}
        keys = list(lookup_keys)
        for start in range(0, len(keys), 10):  # Stripe takes at most 10 lookup keys per list call
            chunk = keys[start : start + 10]
            async with self._translated():
                page = await self._sdk.v1.prices.list_async(params={"lookup_keys": chunk, "active": True, "limit": 100})
            for price in page.data:
                parsed = to_struct(price, s.Price)
                if parsed.lookup_key:
                    out[parsed.lookup_key] = parsed
        return out

    async def get_price(self, price_id: str) -> s.Price:
        async with self._translated():
            price = await self._sdk.v1.prices.retrieve_async(price_id)
        return to_struct(price, s.Price)

    async def price_for_plan(self, plan_code: str) -> s.Price:
        """The active monthly price of a plan; ``StripeNotFound`` until `billing sync-catalog` created it."""
        key = s.price_lookup_key(plan_code)
        found = (await self.prices_by_lookup_key([key])).get(key)
        if found is None:
            raise StripeNotFound(f"No active price with lookup key {key!r} (run `stock-tracker billing sync-catalog`)")
        return found

    async def sync_catalog(self, entries: Sequence[s.CatalogEntry]) -> list[s.CatalogResult]:
        """Make Stripe's products and prices match the plans: create what is missing; when an amount changed,
        create a new price that takes over the lookup key and archive the old one (existing subscriptions keep
        the price they have until they change plan). Safe to run again at any time."""
        existing = await self.prices_by_lookup_key([s.price_lookup_key(e.plan_code) for e in entries])
        results = []
        for entry in entries:
            key = s.price_lookup_key(entry.plan_code)
            current = existing.get(key)
            if current is not None and _same_terms(current, entry):
                results.append(s.CatalogResult(entry.plan_code, key, current, "unchanged"))
                continue
            product = await self._ensure_product(entry)
            idem = f"price:{key}:{entry.currency}:{entry.unit_amount}:{entry.interval}:{current.id if current else '-'}"
            async with self._translated():
                created = await self._sdk.v1.prices.create_async(
                    params={
                        "product": product.id,
                        "currency": entry.currency,
                        "unit_amount": entry.unit_amount,
                        "recurring": {"interval": cast(Any, entry.interval)},
                        "lookup_key": key,
                        "transfer_lookup_key": current is not None,
                        "nickname": f"{entry.name} monthly",
                        "metadata": {"plan": entry.plan_code},
                    },
                    options={"idempotency_key": idem},
                )
            price = to_struct(created, s.Price)
            if current is not None:
                async with self._translated():
                    await self._sdk.v1.prices.update_async(current.id, params={"active": False})
            action = "replaced" if current is not None else "created"
            results.append(s.CatalogResult(entry.plan_code, key, price, action, current.id if current else None))
        return results

    async def _ensure_product(self, entry: s.CatalogEntry) -> s.Product:
        product_id = f"stock_tracker_{entry.plan_code}"
        try:
            async with self._translated():
                found = to_struct(await self._sdk.v1.products.retrieve_async(product_id), s.Product)
        except StripeNotFound:
            found = None
        if found is None:
            try:
                async with self._translated():
                    created = await self._sdk.v1.products.create_async(
                        params={"id": product_id, "name": entry.name, "metadata": {"plan": entry.plan_code}}
                    )
            except StripeInvalidRequest as exc:  # created meanwhile by another run
                if exc.code != "resource_already_exists":
                    raise
                async with self._translated():
                    created = await self._sdk.v1.products.retrieve_async(product_id)
            return to_struct(created, s.Product)
        if found.name != entry.name or not found.active:
            async with self._translated():
                updated = await self._sdk.v1.products.update_async(
                    product_id, params={"name": entry.name, "active": True}
                )
            return to_struct(updated, s.Product)
        return found

    # ---- Checkout and the customer portal ------------------------------------------------------------------

    async def create_checkout_session(
        self,
        *,
        tenant_id: str,
        customer_id: str,
        price_id: str,
        success_url: str,
        cancel_url: str,
        trial_days: int | None = None,
        card_optional_in_trial: bool = False,
        trial_end_without_card: str | None = None,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> s.CheckoutSession:
        """A hosted Checkout page that starts a subscription to ``price_id`` for the organization.

        The org id travels as `client_reference_id` and in the session's and the subscription's metadata
        (`tenant_id`), so every later event can be matched to it. With ``trial_days`` and
        ``card_optional_in_trial`` the customer may start the trial without a card; what happens when such a
        trial ends is ``trial_end_without_card``: `cancel`, `pause` or `create_invoice` (Stripe's default:
        an invoice that cannot be paid, so the subscription goes `past_due`)."""
        tags = {**(metadata or {}), "tenant_id": tenant_id}
        subscription_data: dict[str, Any] = {"metadata": tags}
        if trial_days:
            subscription_data["trial_period_days"] = trial_days
        if trial_end_without_card:
            subscription_data["trial_settings"] = {"end_behavior": {"missing_payment_method": trial_end_without_card}}
        params: dict[str, Any] = {
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": tenant_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": tags,
            "subscription_data": subscription_data,
        }
        if trial_days and card_optional_in_trial:
            params["payment_method_collection"] = "if_required"
        async with self._translated():
            session = await self._sdk.v1.checkout.sessions.create_async(
                params=cast(Any, params), options=self._options(idempotency_key)
            )
        return to_struct(session, s.CheckoutSession)

    async def get_checkout_session(self, session_id: str) -> s.CheckoutSession:
        async with self._translated():
            session = await self._sdk.v1.checkout.sessions.retrieve_async(session_id)
        return to_struct(session, s.CheckoutSession)

    async def create_portal_session(self, *, customer_id: str, return_url: str) -> s.PortalSession:
        """A Customer Portal link (payment methods, invoices, cancel) that returns to ``return_url``."""
        async with self._translated():
            session = await self._sdk.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}
            )
        return to_struct(session, s.PortalSession)

    # ---- usage metering ------------------------------------------------------------------------------------

    async def ensure_meter(self, event_name: str, display_name: str, *, formula: str = "sum") -> s.Meter:
        """The meter counting ``event_name`` (payload keys `stripe_customer_id` and `value`), created if missing."""
        async with self._translated():
            page = await self._sdk.v1.billing.meters.list_async(params={"limit": 100})
            async for meter in page.auto_paging_iter():
                if meter.event_name == event_name:
                    return to_struct(meter, s.Meter)
            created = await self._sdk.v1.billing.meters.create_async(
                params={
                    "display_name": display_name,
                    "event_name": event_name,
                    "default_aggregation": {"formula": cast(Any, formula)},
                },
                options={"idempotency_key": f"meter:{event_name}"},
            )
        return to_struct(created, s.Meter)

    async def report_meter_event(
        self,
        *,
        event_name: str,
        customer_id: str,
        value: int | Decimal,
        identifier: str,
        timestamp: int | None = None,
    ) -> s.MeterEvent:
        """Report usage once: ``identifier`` (e.g. `<tenant>:<meter>:<hour>`) is both Stripe's dedupe key for the
        event and the request's idempotency key, so a re-send after a crash is never counted twice."""
        params: dict[str, Any] = {
            "event_name": event_name,
            "identifier": identifier,
            "payload": {"stripe_customer_id": customer_id, "value": str(value)},
        }
        if timestamp is not None:
            params["timestamp"] = timestamp
        try:
            async with self._translated():
                event = await self._sdk.v1.billing.meter_events.create_async(
                    params=cast(Any, params), options={"idempotency_key": f"meter-event:{identifier}"}
                )
        except (StripeInvalidRequest, StripeConflict) as exc:
            if exc.param != "identifier" and "identifier" not in exc.message.lower():
                raise
            # Stripe already holds an event with this identifier: it was reported before and counts once.
            return s.MeterEvent(event_name, identifier, timestamp or 0, params["payload"], duplicate=True)
        return to_struct(event, s.MeterEvent)

    async def meter_event_summaries(
        self, meter_id: str, *, customer_id: str, start: int, end: int, window: str | None = None
    ) -> list[s.MeterEventSummary]:
        """Aggregated usage in [start, end) (minute-aligned), whole or per `hour`/`day` window, oldest first."""
        params: dict[str, Any] = {"customer": customer_id, "start_time": start, "end_time": end, "limit": 100}
        if window:
            params["value_grouping_window"] = window
        out = []
        async with self._translated():
            page = await self._sdk.v1.billing.meters.event_summaries.list_async(meter_id, params=cast(Any, params))
            async for summary in page.auto_paging_iter():
                out.append(to_struct(summary, s.MeterEventSummary))
        return sorted(out, key=lambda row: row.start_time)


def _same_terms(price: s.Price, entry: s.CatalogEntry) -> bool:
    recurring = price.recurring
    return (
        price.active
        and price.unit_amount == entry.unit_amount
        and price.currency == entry.currency
        and recurring is not None
        and recurring.interval == entry.interval
        and recurring.interval_count == 1
    )


def _quote(value: str) -> str:
    """Escape a value for Stripe's search query language."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
