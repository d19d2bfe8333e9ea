"""HTTP endpoints of billing: the subscription and its usage, the plan catalogue (public), Checkout and the
Customer Portal, plan changes, cancel and resume (owners only), and Stripe's webhook (signed, no bearer)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import CacheControlHeader

from app.domain.api import errors_for, owner_guard
from app.domain.billing.schemas import (
    CheckoutSession,
    CheckoutSessionCreate,
    MeteredUsage,
    PlanList,
    PortalSession,
    StripeEventAccepted,
    Subscription,
    SubscriptionCancel,
    SubscriptionUpdate,
)
from app.domain.billing.services import BillingService, PlanCatalog, StripeWebhookService

STRIPE_SIGNATURE = "stripe-signature"


class BillingController(Controller):
    path = "/api/v1/billing"
    tags = ["billing"]

    @get(
        "/",
        operation_id="getSubscription",
        summary="Plan, status, period, pending change, and usage against every limit",
        responses=errors_for(401),
    )
    async def get_subscription(self, billing_service: BillingService) -> Subscription:
        return await billing_service.overview()

    @get(
        "/usage",
        operation_id="getMeteredUsage",
        summary="This month's usage as reported to Stripe's meters (API calls, synced product-days)",
        responses=errors_for(401, 409),
    )
    async def get_usage(self, billing_service: BillingService) -> MeteredUsage:
        return await billing_service.metered_usage()

    @post(
        "/checkout",
        operation_id="createCheckoutSession",
        summary="A Stripe Checkout page that starts a subscription (owner)",
        guards=[owner_guard],
        status_code=201,
        responses=errors_for(401, 403, 409, 422, 503),
    )
    async def checkout(self, data: CheckoutSessionCreate, billing_service: BillingService) -> CheckoutSession:
        return CheckoutSession(url=await billing_service.checkout(data.plan))

    @post(
        "/portal",
        operation_id="createPortalSession",
        summary="A Stripe Customer Portal page: payment methods, invoices (owner)",
        guards=[owner_guard],
        status_code=201,
        responses=errors_for(401, 403, 409, 503),
    )
    async def portal(self, billing_service: BillingService) -> PortalSession:
        return PortalSession(url=await billing_service.portal())

    @post(
        "/change",
        operation_id="changePlan",
        summary="Upgrade now (prorated) or downgrade at the period's end (owner)",
        guards=[owner_guard],
        status_code=200,
        responses=errors_for(401, 403, 409, 422, 503),
    )
    async def change(self, data: SubscriptionUpdate, billing_service: BillingService) -> Subscription:
        return await billing_service.change(data.plan)

    @post(
        "/cancel",
        operation_id="cancelSubscription",
        summary="Cancel now, or at the period's end (owner)",
        guards=[owner_guard],
        status_code=200,
        responses=errors_for(401, 403, 409, 422, 503),
    )
    async def cancel(self, data: SubscriptionCancel, billing_service: BillingService) -> Subscription:
        return await billing_service.cancel(data.at_period_end)

    @post(
        "/resume",
        operation_id="resumeSubscription",
        summary="Undo a cancellation at the period's end (owner)",
        guards=[owner_guard],
        status_code=200,
        responses=errors_for(401, 403, 409, 503),
    )
    async def resume(self, billing_service: BillingService) -> Subscription:
        return await billing_service.resume()


class PlanCatalogController(Controller):
    path = "/api/v1/billing/plans"
    tags = ["billing"]
    security = [{}]

    @get(
        "/",
        operation_id="listPlans",
        summary="The plans with their prices and limits (public)",
        cache_control=CacheControlHeader(public=True, max_age=300),
        responses=errors_for(api=False),
    )
    async def list_plans(self, plan_catalog: PlanCatalog) -> PlanList:
        return plan_catalog.list()


class StripeWebhookController(Controller):
    path = "/api/v1/billing/stripe"
    tags = ["billing"]
    security = [{}]

    @post(
        "/webhook",
        operation_id="receiveStripeEvent",
        summary="Events from Stripe: verified on the raw body, stored once, processed by a job",
        status_code=200,
        responses=errors_for(400, 409, api=False),
    )
    async def receive(
        self, request: Request[Any, Any, Any], stripe_webhook_service: StripeWebhookService
    ) -> StripeEventAccepted:
        stored = await stripe_webhook_service.receive(await request.body(), request.headers.get(STRIPE_SIGNATURE))
        return StripeEventAccepted(received=True, duplicate=not stored)
