"""Builds marketplace clients for a connection and checks credentials against the marketplace."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import msgspec

from app.config import Settings
from app.integrations.marketplace import (
    MarketplaceAuthError,
    MarketplaceBadResponse,
    MarketplaceError,
    MarketplaceRateLimited,
    MarketplaceUnavailable,
)
from app.integrations.ozon.client import OzonClient
from app.integrations.wildberries.client import WildberriesClient
from app.integrations.wildberries.token import REQUIRED_CATEGORIES, parse_token
from app.lib.clock import utcnow
from app.lib.errors import AppError, FieldError, ValidationError
from app.lib.ratelimit import RateLimiter


class InvalidCredentialsError(AppError):
    status_code = 422
    code = "invalid_credentials"
    title = "The marketplace refused these credentials"


class MarketplaceUnreachableError(AppError):
    status_code = 502
    code = "marketplace_unavailable"
    title = "The marketplace did not answer"


@dataclass
class CredentialCheck:
    token_type: str | None = None
    expires_at: datetime | None = None
    categories: list[str] = field(default_factory=list)
    missing_categories: list[str] = field(default_factory=list)


def decode_credentials(marketplace: str, raw: dict[str, str]) -> dict[str, str]:
    """Validate the credential shape for the marketplace (422 listing the fields)."""
    from app.domain.connections.schemas import OzonCredentials, WildberriesCredentials

    target = WildberriesCredentials if marketplace == "wildberries" else OzonCredentials
    try:
        return msgspec.to_builtins(msgspec.convert(raw, target))
    except msgspec.ValidationError as exc:
        raise ValidationError(
            f"Invalid credentials for {marketplace}: {exc}",
            errors=[FieldError(field="credentials", message=str(exc))],
        ) from exc


class MarketplaceGateway:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, limiter: RateLimiter | None) -> None:
        self.settings = settings
        self.http = http
        self.limiter = limiter

    def wildberries(self, connection_id: uuid.UUID | str, credentials: dict[str, str], **kw: Any) -> WildberriesClient:
        return WildberriesClient(
            credentials["token"],
            base_url=self.settings.wb_base_url or None,
            http=self.http,
            limiter=self.limiter,
            limiter_key=f"wb:{connection_id}",
            limits_enabled=self.settings.marketplace_rate_limits,
            **kw,
        )

    def ozon(self, connection_id: uuid.UUID | str, credentials: dict[str, str], **kw: Any) -> OzonClient:
        return OzonClient(
            credentials["client_id"],
            credentials["api_key"],
            base_url=self.settings.ozon_base_url or None,
            http=self.http,
            limiter=self.limiter,
            limiter_key=f"ozon:{credentials['client_id']}",
            limits_enabled=self.settings.marketplace_rate_limits,
            **kw,
        )

    async def check(self, marketplace: str, credentials: dict[str, str], key: str) -> CredentialCheck:
        """Ask the marketplace whether these credentials work; raise 422 if they do not."""
        try:
            if marketplace == "wildberries":
                info = parse_token(credentials["token"])
                if info.expires_at is not None and info.expires_at <= utcnow():
                    raise InvalidCredentialsError("This Wildberries token has expired; create a new one.")
                categories = sorted(info.categories) if info.categories is not None else []
                missing = sorted(REQUIRED_CATEGORIES - set(categories)) if info.categories is not None else []
                client = self.wildberries(key, credentials)
                # /ping on a host of a category the token has: 401 means the token is not valid at all.
                await client.ping("content" if "content" in categories or not categories else categories[0])
                return CredentialCheck(info.type, info.expires_at, categories, missing)
            await self.ozon(key, credentials).warehouses()
            return CredentialCheck()
        except MarketplaceAuthError as exc:
            raise InvalidCredentialsError(f"The marketplace answered {exc.status}: {exc}") from exc
        except MarketplaceRateLimited as exc:
            raise MarketplaceUnreachableError(
                "The marketplace is rate limiting these credentials; try again shortly.",
                headers={"Retry-After": str(max(1, int(exc.retry_after)))},
            ) from exc
        except (MarketplaceUnavailable, MarketplaceBadResponse) as exc:
            raise MarketplaceUnreachableError(f"The marketplace could not be reached ({exc}).") from exc
        except MarketplaceError as exc:  # any other 4xx: the marketplace refused what we sent on your behalf
            raise InvalidCredentialsError(f"The marketplace refused these credentials ({exc}).") from exc
