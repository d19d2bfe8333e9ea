"""Bearer authentication (user JWTs; API keys plug in here) and role guards."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from app.lib.errors import AuthenticationError
from app.lib.tokens import AccessTokenCodec

# Routes that do not take a bearer token (auth itself, health, metrics, docs, webhooks in, sandbox).
PUBLIC_PATHS = [
    r"^/api/v1/auth/(register|login|refresh|logout)$",
    r"^/health/",
    r"^/metrics$",
    r"^/schema",
    r"^/sandbox",
    r"^/telegram/",
    r"^/api/v1/billing/webhook$",
]


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError(
                "Send `Authorization: Bearer <token>`.", headers={"WWW-Authenticate": 'Bearer realm="api"'}
            )
        codec: AccessTokenCodec = connection.app.state.token_codec
        principal = codec.decode(token.strip())
        connection.scope.setdefault("state", {})["tenant_id"] = str(principal.tenant_id)
        return AuthenticationResult(user=principal, auth=token)
