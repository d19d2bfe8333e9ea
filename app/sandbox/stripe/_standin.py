"""The stand-in: its accounts (found by secret key) and the webhook deliverer they share."""

from __future__ import annotations

import base64
import secrets
import time

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._account import CONTROL_ENDPOINT, Account, Delivery
from app.sandbox.stripe._delivery import Deliverer
from app.sandbox.stripe._errors import StripeApiError

NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer "
    "auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
    "details, or we can help at https://support.stripe.com/."
)


def masked(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "*" * len(key)


class StandIn:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.by_key: dict[str, Account] = {}
        self.deliverer = Deliverer()

    def create_account(
        self,
        *,
        seed: int | None = None,
        secret_key: str | None = None,
        now: int | None = None,
        delivery: Delivery = "auto",
        public_base: str | None = None,
    ) -> Account:
        if secret_key is not None and secret_key in self.by_key:
            raise ValueError("an account already uses that secret key")
        account = Account(
            account_id="acct_" + secrets.token_hex(8),
            secret_key=secret_key or "sk_test_" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y"),
            seed=secrets.randbits(32) if seed is None else seed,
            now=int(time.time()) if now is None else now,
            delivery=delivery,
            public_base=public_base,
        )
        self.accounts[account.id] = account
        self.by_key[account.secret_key] = account
        return account

    def remove(self, account_id: str) -> bool:
        account = self.accounts.pop(account_id, None)
        if account is None:
            return False
        self.by_key.pop(account.secret_key, None)
        self.deliverer.forget(account)
        return True

    def clear(self) -> None:
        for account_id in list(self.accounts):
            self.remove(account_id)

    def authenticate(self, authorization: str | None) -> Account:
        """Bearer `sk_test_…` (or Basic with the key as user name), as Stripe accepts."""
        key = _key_from_header(authorization)
        if not key:
            raise StripeApiError(401, NO_KEY)
        account = self.by_key.get(key)
        if account is None:
            if key.startswith("pk_"):
                raise StripeApiError(
                    401, "This API call cannot be made with a publishable API key. Please use a secret API key."
                )
            raise StripeApiError(401, f"Invalid API Key provided: {masked(key)}")
        return account


def _key_from_header(authorization: str | None) -> str:
    if not authorization:
        return ""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def set_control_endpoint(
    account: Account, url: str, secret: str | None, enabled_events: list[str]
) -> m.WebhookEndpoint:
    """The webhook endpoint the control API manages (replaced on each call)."""
    for endpoint_id, endpoint in list(account.webhook_endpoints.items()):
        if endpoint.description == CONTROL_ENDPOINT:
            del account.webhook_endpoints[endpoint_id]
    endpoint = m.WebhookEndpoint(
        id=account.ids.new("we_"),
        created=account.now,
        url=url,
        secret=secret or "whsec_" + secrets.token_urlsafe(24),
        enabled_events=enabled_events,
        description=CONTROL_ENDPOINT,
    )
    account.webhook_endpoints[endpoint.id] = endpoint
    return endpoint
