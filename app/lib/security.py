"""Password hashing (off the event loop), opaque token generation and constant-time comparison."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.lib.errors import ServiceUnavailableError

T = TypeVar("T")

# argon2id with the library's RFC 9106 "low memory" profile: ~50 ms on the 2-core class.
_hasher = PasswordHasher()
# A hash of a random password, verified when the email is unknown so timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; always spends the same work whether or not the user exists."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


class PasswordHashingBusy(ServiceUnavailableError):
    code = "password_hashing_busy"
    title = "Too many sign-ins at once"


class PasswordHasherPool:
    """argon2 hashing and verification on a bounded thread pool, never on the event loop.

    argon2-cffi releases the GIL while it hashes, so ``workers`` threads use that many cores while the event
    loop keeps answering everything else (one verification is ~50 ms of CPU: forty of them on the loop held
    every other request for seconds). At most ``workers + queue_limit`` calls are admitted at once; the next
    one is refused at once with 503 and ``Retry-After`` instead of waiting behind a queue it cannot see the
    end of. ``workers=0`` hashes inline on the caller's thread (the old behaviour; benchmarks' baseline).
    """

    def __init__(self, workers: int, queue_limit: int, retry_after_seconds: int = 1) -> None:
        self.workers = workers
        self.capacity = workers + queue_limit
        self.retry_after = retry_after_seconds
        self._pending = 0
        self.calls = 0  # hashes and verifications done (tests check that every sign-in path does the same work)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2") if workers > 0 else None

    @property
    def pending(self) -> int:
        """Calls admitted and not finished (running or queued)."""
        return self._pending

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self.calls += 1
            return fn(*args)
        if self._pending >= self.capacity:
            raise PasswordHashingBusy(
                "Too many sign-ins are being checked at once; retry shortly.",
                headers={"Retry-After": str(self.retry_after)},
            )
        self.calls += 1
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._pending -= 1

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Same work whether or not the user exists (see ``verify_password``)."""
        return await self._run(verify_password, password_hash, password)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def keyed_hash(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def is_loopback(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def metrics_scrape_allowed(authorization: str, client_host: str | None, token: str) -> bool:
    """The one rule for both /metrics listeners: the bearer token when one is configured, else loopback only."""
    if token:
        scheme, _, given = authorization.partition(" ")
        return scheme.lower() == "bearer" and constant_time_equal(given.strip(), token)
    return is_loopback(client_host)
