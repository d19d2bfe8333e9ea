"""Google's OAuth 2.0 token endpoint for service accounts (JWT-bearer grant, RFC 7523).

`POST /google/oauth2/token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`:
the assertion is an RS256 JWT signed with the service account's private key (`kid` = its key id) whose
claims are `iss` (the account's e-mail), `scope`, `aud` (this endpoint's URL), `iat` and `exp` (at most an
hour apart). An unknown account or key, a revoked key, a bad signature or bad times → 400 `invalid_grant`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import jwt
from litestar import Request, Response, post

from app.sandbox._replies import Reply, json_reply
from app.sandbox.sheets._state import GoogleState, external_url

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
BAD_SIGNATURE = "Invalid JWT Signature."
BAD_TIMES = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat "
    "and exp values in the JWT claim."
)


def oauth_error(error: str, description: str, status: int = 400) -> Reply:
    return json_reply({"error": error, "error_description": description}, status)


def _grant(google: GoogleState, form: dict[str, list[str]], audience: str) -> Reply:
    if form.get("grant_type", [""])[0] != GRANT_TYPE:
        return oauth_error("unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', [''])[0]}")
    assertion = form.get("assertion", [""])[0]
    try:
        header = jwt.get_unverified_header(assertion)
        claims: dict[str, Any] = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return oauth_error("invalid_grant", "Invalid JWT: the assertion is not a JWT.")
    account = google.accounts.get(str(claims.get("iss", "")))
    if account is None:
        return oauth_error("invalid_grant", "Invalid grant: account not found")
    key = account.keys.get(str(header.get("kid", "")))
    if key is None or key.revoked or header.get("alg") != "RS256":
        return oauth_error("invalid_grant", BAD_SIGNATURE)
    now = google.clock()
    try:
        jwt.decode(
            assertion,
            key.public,
            algorithms=["RS256"],
            audience=audience,
            options={"require": ["iss", "aud", "iat", "exp"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        return oauth_error("invalid_grant", "Invalid JWT: audience is not the token endpoint.")
    except jwt.PyJWTError:
        return oauth_error("invalid_grant", BAD_SIGNATURE)
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        return oauth_error("invalid_grant", BAD_TIMES)
    if exp - iat > 3600 or exp < now or iat > now + 300:
        return oauth_error("invalid_grant", BAD_TIMES)
    if SHEETS_SCOPE not in str(claims.get("scope", "")).split():
        return oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    token, ttl = google.issue_token(account.email, key.id)
    return json_reply({"access_token": token, "expires_in": ttl, "token_type": "Bearer"})


@post("/google/oauth2/token", status_code=200)
async def token(request: Request, google: GoogleState) -> Response[bytes]:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    audience = external_url(request.scope, str(request.base_url))
    reply = _grant(google, form, audience)
    return Response(content=reply.body, status_code=reply.status, media_type=reply.media_type)


ROUTES = [token]
