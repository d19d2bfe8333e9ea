"""What every gateway call shares: the SDK client (async HTTPX), error translation, Struct conversion."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import msgspec

from app.config import Settings
from app.integrations.stripe.errors import StripeNotConfigured, translate
from app.integrations.stripe.webhooks import DEFAULT_TOLERANCE

T = TypeVar("T")
G = TypeVar("G", bound="GatewayBase")
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 2


# The SDK is imported when a gateway is made, not with this module: ~7 MB of resident memory in every process
# that imports the billing domain (the API and the worker), and a self-hosted deployment without Stripe keys
# never makes a gateway (``StripeNotConfigured`` comes first). tests/unit/integrations/test_stripe_sdk_lazy.py.


@functools.cache
def _httpx_client_class() -> type[Any]:
    import stripe

    class _HTTPXClient(stripe.HTTPXClient):
        """The SDK's async HTTPX client, handing httpx the encoded form body as `content`: the SDK passes it as
        `data=<str>`, which httpx deprecates (a warning on every request today, an error in a later httpx)."""

        def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
            args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
            body = kwargs.pop("data", None)
            if body:
                kwargs["content"] = body
            return [args, kwargs]

    return _HTTPXClient


def to_struct(obj: Any, kind: type[T]) -> T:
    """An SDK object (or dict) as one of our Structs."""
    sdk = sys.modules.get("stripe")  # an SDK object exists only once the SDK is loaded
    data = obj.to_dict(for_json=True) if sdk is not None and isinstance(obj, sdk.StripeObject) else obj
    return msgspec.convert(data, kind, strict=False)


class GatewayBase:
    """The SDK's `StripeClient` with its async HTTPX client, and the plumbing every call goes through."""

    def __init__(
        self,
        secret_key: str,
        *,
        webhook_secret: str = "",
        api_base: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        max_network_retries: int = DEFAULT_RETRIES,
        webhook_tolerance: int = DEFAULT_TOLERANCE,
    ) -> None:
        if not secret_key:
            raise StripeNotConfigured("STOCK_TRACKER_STRIPE_SECRET_KEY is not set: billing is off")
        import stripe

        self._http = _httpx_client_class()(timeout=timeout)
        self._sdk = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )
        self._webhook_secret = webhook_secret
        self._tolerance = webhook_tolerance
        sdk_log = logging.getLogger("stripe")
        if sdk_log.level == logging.NOTSET:  # the SDK logs every request and answer at INFO; ours say what matters
            sdk_log.setLevel(logging.WARNING)

    @classmethod
    def from_settings(cls: type[G], settings: Settings) -> G:
        """From `STOCK_TRACKER_STRIPE_*`; raises ``StripeNotConfigured`` while billing is off."""
        return cls(
            settings.stripe_secret_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
        )

    async def aclose(self) -> None:
        await self._http.close_async()

    async def __aenter__(self: G) -> G:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        """Run SDK calls; an SDK exception leaves as one of our errors."""
        import stripe

        try:
            yield
        except stripe.StripeError as exc:
            raise translate(exc) from None

    @staticmethod
    def _options(idempotency_key: str | None) -> Any:
        return {"idempotency_key": idempotency_key} if idempotency_key else None
