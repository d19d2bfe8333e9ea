"""Events that must reach every API process's token leases at once (``app/server/lease.py``).

An API process may serve a caller's next few requests from a lease: tokens it counted in Redis ahead of
time, with the tenant's cache version and the caller's revocation state as they were when it counted
them. Two things invalidate a lease before it runs out: a revocation (logout, role change, removal, a
revoked API key) and a new cache version of the tenant (a finished sync, an API write). Whoever makes one of
those changes calls ``notify_local`` (this process's leases drop at once, before the change's own request
answers) and publishes the event on ``CHANNEL`` in the same Redis call as the change; every API process
subscribes to it (``app.lib.resp.Subscription``) and drops the matching leases in the connection's read
callback, before any request that the same turn of its event loop reads. A process whose subscription is
down grants no leases (every request is its own round trip) and drops the ones it holds.

Lives in lib/ (Redis only) so the worker's sync can publish without importing the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Final

CHANNEL: Final = "stock-tracker:gate-events"
# Any revocation: every lease of the process is dropped (revocations are rare; which caller a membership or
# session revocation touches is not worth working out here).
REVOCATION: Final = b"r"

_listeners: list[Callable[[bytes], None]] = []


def tenant_event(tenant_id: uuid.UUID | str) -> bytes:
    """The event of a tenant's new cache version: that tenant's leases are dropped."""
    return b"t:" + str(tenant_id).encode()


def listen(callback: Callable[[bytes], None]) -> None:
    _listeners.append(callback)


def unlisten(callback: Callable[[bytes], None]) -> None:
    if callback in _listeners:
        _listeners.remove(callback)


def notify_local(event: bytes) -> None:
    """This process's listeners, synchronously (another process learns it from the channel)."""
    for callback in list(_listeners):
        callback(event)
