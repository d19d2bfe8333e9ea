"""Login sessions: issuing an access token and a refresh token of one family, and the database's answer to
"is this access token's session still current" (what the request gate asks when Redis cannot be reached)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import set_tenant
from app.db.models import RefreshToken
from app.domain.accounts.repositories import MembershipRepository, RefreshTokenRepository
from app.domain.accounts.schemas import TokenPair
from app.lib import security
from app.lib.clock import utcnow
from app.lib.errors import AuthenticationError
from app.lib.ids import uuid7
from app.lib.tokens import AccessTokenCodec, Principal

REFRESH_PREFIX = "rt1"


def parse_refresh(token: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """``rt1.<tenant>.<token id>.<secret>`` → its parts (401 when it is not one)."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != REFRESH_PREFIX:
        raise AuthenticationError("The refresh token is invalid.")
    try:
        return uuid.UUID(hex=parts[1]), uuid.UUID(hex=parts[2]), parts[3]
    except ValueError as exc:
        raise AuthenticationError("The refresh token is invalid.") from exc


class SessionIssuer:
    """A token pair for one membership; the refresh token joins ``family_id`` (a new login session if None)."""

    def __init__(self, session: AsyncSession, codec: AccessTokenCodec, refresh_ttl_seconds: int) -> None:
        self.session = session
        self.codec = codec
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)

    async def issue(
        self,
        user_id: uuid.UUID,
        tenant_id: uuid.UUID,
        role: str,
        version: int,
        family_id: uuid.UUID | None = None,
    ) -> tuple[TokenPair, uuid.UUID]:
        secret = security.new_secret()
        token_id = uuid7()
        family = family_id or uuid7()
        RefreshTokenRepository(self.session, tenant_id).add(
            RefreshToken(
                id=token_id,
                user_id=user_id,
                family_id=family,
                token_hash=security.sha256_hex(secret),
                expires_at=utcnow() + self.refresh_ttl,
            )
        )
        pair = TokenPair(
            access_token=self.codec.encode(user_id, tenant_id, role, version=version, session_id=family),
            refresh_token=f"{REFRESH_PREFIX}.{tenant_id.hex}.{token_id.hex}.{secret}",
            expires_in=self.codec.ttl_seconds,
        )
        return pair, token_id


async def session_is_current(sessionmaker: async_sessionmaker[AsyncSession], principal: Principal) -> bool:
    """The database's view of a user token: still a member under the same token version, session not ended."""
    if principal.user_id is None:
        return True
    async with sessionmaker() as session:
        await set_tenant(session, principal.tenant_id)
        version = await MembershipRepository(session, principal.tenant_id).current_version(principal.user_id)
        if version is None or version > principal.token_version:
            return False
        if principal.session_id is not None:
            tokens = RefreshTokenRepository(session, principal.tenant_id)
            return not await tokens.family_revoked(principal.session_id)
        return True
