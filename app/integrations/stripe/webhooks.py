"""Verify a Stripe webhook on its raw body and parse it into a `WebhookEvent`."""

from __future__ import annotations

import msgspec

from app.integrations.stripe.errors import WebhookSignatureError
from app.integrations.stripe.schemas import WebhookEvent

DEFAULT_TOLERANCE = 300  # seconds; the SDK's own default (stripe.Webhook.DEFAULT_TOLERANCE)

_DECODER = msgspec.json.Decoder(WebhookEvent)


def verify_webhook(
    payload: bytes, signature: str | None, secret: str, *, tolerance: int = DEFAULT_TOLERANCE
) -> WebhookEvent:
    """``stripe.Webhook.construct_event`` on the raw body: a missing, wrong or stale (``tolerance`` seconds)
    `Stripe-Signature`, or a body that is not a Stripe event, raises ``WebhookSignatureError``."""
    if not secret:
        raise WebhookSignatureError("STOCK_TRACKER_STRIPE_WEBHOOK_SECRET is not set: webhooks cannot be verified")
    if not signature:
        raise WebhookSignatureError("No Stripe-Signature header")
    import stripe  # only here and in the gateway: a process that never bills never loads the SDK

    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureError(exc.user_message or "Invalid signature") from None
    except ValueError:  # not JSON, or a v2 "thin" event
        raise WebhookSignatureError("The body is not a Stripe snapshot event") from None
    try:
        return _DECODER.decode(payload)
    except msgspec.DecodeError as exc:
        raise WebhookSignatureError(f"The body is not a Stripe event: {exc}") from None
