"""Webhook delivery: each event POSTed to every endpoint that wants it, signed exactly as Stripe signs.

`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(endpoint secret, "<t>.<raw body>")>`, so a receiver
verifies it with `stripe.Webhook.construct_event` on the raw body. The signature's `t` is wall-clock time
(the receiver checks it against its own clock), while the event's `created` is the account's simulated time,
as with Stripe's test clocks.

In `auto` mode one task per account sends the queued events in order, one at a time; a failed delivery
(no answer or a non-2xx status) is retried 1, 2 and 4 simulated hours later when the clock passes that
point. In `manual` mode events are held until the control API delivers them — in any order, any number of
times, sequentially or all at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import httpx
import msgspec

from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render as render
from app.sandbox.stripe._account import HOUR, Account

TIMEOUT = httpx.Timeout(20.0, connect=5.0)
RETRY_HOURS = (1, 2, 4)
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def signature_header(secret: str, payload: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class Deliverer:
    """Sends events for every account of one stand-in."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def kick(self, acct: Account) -> None:
        """Start draining the account's outbox unless a drain is already running."""
        if not acct.outbox:
            return
        task = self._tasks.get(acct.id)
        if task is None or task.done():
            self._tasks[acct.id] = asyncio.get_running_loop().create_task(self._drain(acct))

    async def wait_idle(self, acct: Account) -> None:
        """Return once nothing is queued or being sent for the account."""
        while True:
            self.kick(acct)
            task = self._tasks.get(acct.id)
            if task is None or task.done():
                if not acct.outbox:
                    return
                continue
            await asyncio.shield(task)

    def forget(self, acct: Account) -> None:
        task = self._tasks.pop(acct.id, None)
        if task is not None and not task.done():
            task.cancel()

    async def _drain(self, acct: Account) -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as http:
            while acct.outbox:
                event = acct.events.get(acct.outbox.popleft())
                if event is None:
                    continue
                endpoints = [
                    acct.webhook_endpoints[e] for e in sorted(event.pending_endpoints) if e in acct.webhook_endpoints
                ]
                results = [await self._send(acct, http, event, endpoint, "auto") for endpoint in endpoints]
                failed = [d for d in results if not _ok(d)]
                for delivery in results:
                    if _ok(delivery):
                        event.pending_endpoints.discard(delivery.endpoint)
                if failed and event.retries_left > 0:
                    event.retry_at = acct.now + RETRY_HOURS[len(RETRY_HOURS) - event.retries_left] * HOUR
                    event.retries_left -= 1

    async def deliver(self, acct: Account, event_ids: list[str], *, times: int, concurrent: bool) -> list[m.Delivery]:
        """Send these events now, in this order, ``times`` each, to every endpoint that wants them."""
        events = [acct.event(event_id, "events") for event_id in event_ids]
        for event in events:
            if event.id in acct.held:
                acct.held.remove(event.id)
            if event.id in acct.outbox:
                acct.outbox.remove(event.id)
        sends = [
            (event, endpoint)
            for event in events
            for _ in range(times)
            for endpoint in acct.webhook_endpoints.values()
            if endpoint.wants(event.type)
        ]
        async with httpx.AsyncClient(
            timeout=TIMEOUT, limits=httpx.Limits(max_connections=max(len(sends), 1)), follow_redirects=False
        ) as http:
            if concurrent:
                results = await asyncio.gather(*(self._send(acct, http, e, ep, "manual") for e, ep in sends))
            else:
                results = [await self._send(acct, http, e, ep, "manual") for e, ep in sends]
        for (event, _), delivery in zip(sends, results, strict=True):
            if _ok(delivery):
                event.pending_endpoints.discard(delivery.endpoint)
        return list(results)

    async def flush(self, acct: Account) -> list[m.Delivery]:
        """Manual mode: deliver everything held, in order. Auto mode: wait for the queue to drain."""
        if acct.delivery == "manual" and acct.held:
            held, acct.held = list(acct.held), []
            out: list[m.Delivery] = []
            for event_id in held:
                out += await self.deliver(acct, [event_id], times=1, concurrent=False)
            return out
        await self.wait_idle(acct)
        return []

    async def _send(
        self, acct: Account, http: httpx.AsyncClient, event: m.Event, endpoint: m.WebhookEndpoint, kind: str
    ) -> m.Delivery:
        payload = msgspec.json.encode(render.event(event))
        now = time.time()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": signature_header(endpoint.secret, payload, int(now)),
        }
        try:
            response = await http.post(endpoint.url, content=payload, headers=headers)
            delivery = m.Delivery(endpoint.id, endpoint.url, response.status_code, None, now, acct.now, kind)
        except httpx.HTTPError as exc:
            delivery = m.Delivery(endpoint.id, endpoint.url, None, type(exc).__name__, now, acct.now, kind)
        event.deliveries.append(delivery)
        return delivery


def _ok(delivery: m.Delivery) -> bool:
    return delivery.status is not None and 200 <= delivery.status < 300
