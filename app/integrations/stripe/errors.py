"""Our few Stripe errors; every SDK exception is translated into one of them where the SDK is called.

Messages are Stripe's own (which never carry a secret key in full: Stripe masks it), never a URL or a header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK is imported where it is called (see _base: ~7 MB in a process that never bills)
    import stripe


class StripeError(Exception):
    """Stripe refused a call or could not be reached.

    ``code`` is Stripe's error code (`resource_missing`, `card_declined`, …), ``status`` the HTTP status
    (None when no answer came back), ``param`` the parameter Stripe blamed, ``request_id`` Stripe's `Request-Id`.
    """

    transient = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.param = param
        self.request_id = request_id


class StripeNotConfigured(StripeError):
    """No secret key is set: billing is off (self-hosting), so nothing may call Stripe."""


class StripeAuthError(StripeError):
    """The secret key is wrong, revoked or lacks a permission (401/403): a configuration problem."""


class StripeNotFound(StripeError):
    """The object does not exist in this Stripe account (`resource_missing`)."""


class StripeInvalidRequest(StripeError):
    """Stripe refused the parameters or the state change (400 and the like); retrying will not help."""


class StripeCardDeclined(StripeError):
    """A charge Stripe was asked to make synchronously was declined (402); ``decline_code`` says why."""

    decline_code: str | None = None


class StripeConflict(StripeError):
    """An idempotency key was reused with other parameters, or a concurrent request holds it."""


class StripeUnavailable(StripeError):
    """No usable answer: network failure, timeout, rate limit or a Stripe-side error. Worth retrying later."""

    transient = True


class WebhookSignatureError(StripeError):
    """A webhook whose `Stripe-Signature` is missing, wrong or too old, or whose body is not an event."""


def translate(exc: stripe.StripeError) -> StripeError:
    """The error of ours for an SDK exception."""
    import stripe

    message = exc.user_message or str(exc) or type(exc).__name__
    status = exc.http_status
    kind: type[StripeError]
    if isinstance(exc, stripe.CardError):
        kind = StripeCardDeclined
    elif isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        kind = StripeAuthError
    elif isinstance(exc, stripe.IdempotencyError) or status == 409:
        kind = StripeConflict
    elif isinstance(exc, stripe.RateLimitError | stripe.APIConnectionError):
        kind = StripeUnavailable
    elif isinstance(exc, stripe.InvalidRequestError):
        kind = StripeNotFound if exc.code == "resource_missing" else StripeInvalidRequest
    elif status is None or status >= 500:
        kind = StripeUnavailable
    else:
        kind = StripeError
    error = kind(message, code=exc.code, status=status, param=getattr(exc, "param", None), request_id=exc.request_id)
    if isinstance(error, StripeCardDeclined):
        error.decline_code = _error_field(exc, "decline_code")
    return error


def _error_field(exc: stripe.StripeError, name: str) -> str | None:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error")
    value = error.get(name) if isinstance(error, dict) else None
    return value if isinstance(value, str) else None
