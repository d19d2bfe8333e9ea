"""Stripe's error body, `{"error": {"type", "code", "message", "param", "doc_url"}}`, and its usual cases."""

from __future__ import annotations

from typing import Any

DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeApiError(Exception):
    """An answer in Stripe's error shape.

    ``saved`` says whether an idempotent request keeps this answer: Stripe saves the result of any request
    that started executing, but not one refused while its parameters were being validated.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        saved: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.saved = saved
        self.headers = headers

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = DOC_BASE + self.code
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        return {"error": error}


def no_such(kind: str, object_id: str, param: str = "id") -> StripeApiError:
    return StripeApiError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeApiError:
    return StripeApiError(400, message, param=param, code=code)


def param_error(message: str, param: str, code: str | None = None) -> StripeApiError:
    """A parameter refused before the request started executing (not saved under its idempotency key)."""
    return StripeApiError(400, message, param=param, code=code, saved=False)


def unsupported(what: str, param: str | None = None) -> StripeApiError:
    """Real Stripe accepts this; the stand-in does not model it, and says so rather than pretend."""
    return StripeApiError(400, f"The Stripe stand-in does not support {what}.", param=param, saved=False)


def card_declined(decline_code: str, param: str | None = None) -> StripeApiError:
    """The answer to a charge that failed: a 402 `card_error`, or a 400 when there was nothing to charge."""
    if decline_code == "no_payment_method":
        return StripeApiError(
            400,
            "This customer has no attached payment source or default payment method.",
            code="resource_missing",
            param=param or "default_payment_method",
        )
    messages = {"insufficient_funds": "Your card has insufficient funds.", "expired_card": "Your card has expired."}
    return StripeApiError(
        402,
        messages.get(decline_code, "Your card was declined."),
        type="card_error",
        code="card_declined",
        param=param,
        decline_code=decline_code,
    )
