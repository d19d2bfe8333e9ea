"""The control API (`/sandbox/control/stripe/…`): what a test (or `stock-tracker dev`) does that a customer or
Stripe itself would do in real life. Bodies are JSON; errors are RFC 9457 problem documents.

- `POST /accounts {seed?, secret_key?, now?, delivery?, webhook_url?, webhook_secret?}` → the account,
  its secret key and the control webhook endpoint's signing secret; `GET|DELETE /accounts/{id}`;
  `POST /accounts/{id}/reset`; `POST /reset` (every account).
- `PUT /accounts/{id}/webhook {url, secret?, enabled_events?}` — where events are delivered.
- `POST /accounts/{id}/checkout_sessions/{cs}/complete {card?}` — the customer pays (or is declined: 402).
- `POST /accounts/{id}/advance {seconds | days | to | to_period_end}` — move the clock, running renewals,
  schedule phases, trial ends, cancellations at period end, payment retries.
- `POST /accounts/{id}/payments {outcome: fail|succeed, times?, customer?, decline_code?}` — script charges.
- `GET /accounts/{id}/events?type=` — sent events with their delivery attempts;
  `POST /accounts/{id}/events/deliver {events, times?, concurrent?}` — deliver now, in that order, N times;
  `POST /accounts/{id}/events/flush` — wait for (auto) or send (manual) everything queued.
- `GET /accounts/{id}/meter_events` — every meter event received, and whether it was counted.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

import msgspec

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._clock import advance, next_due
from app.sandbox.stripe._errors import StripeApiError
from app.sandbox.stripe._http import HttpRequest, HttpResponse, Route, json_response, route
from app.sandbox.stripe._metering import describe
from app.sandbox.stripe._ops_checkout import complete_session, session_of
from app.sandbox.stripe._ops_customers import TEST_CARDS
from app.sandbox.stripe._standin import StandIn, set_control_endpoint

PROBLEM = "application/problem+json"
MAX_ADVANCE = 10 * 366 * 86_400


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True):
    seed: int | None = None
    secret_key: Annotated[str, msgspec.Meta(pattern=r"^sk_test_[A-Za-z0-9_]{8,}$")] | None = None
    now: Annotated[int, msgspec.Meta(ge=0)] | None = None
    delivery: Literal["auto", "manual"] = "auto"
    webhook_url: str | None = None
    webhook_secret: Annotated[str, msgspec.Meta(pattern=r"^whsec_\S{8,}$")] | None = None
    public_url: str | None = None


class WebhookSet(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    secret: Annotated[str, msgspec.Meta(pattern=r"^whsec_\S{8,}$")] | None = None
    enabled_events: list[str] = msgspec.field(default_factory=lambda: ["*"])


class Complete(msgspec.Struct, forbid_unknown_fields=True):
    card: str | None = "pm_card_visa"


class Advance(msgspec.Struct, forbid_unknown_fields=True):
    seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_ADVANCE)] | None = None
    days: Annotated[float, msgspec.Meta(ge=0, le=MAX_ADVANCE / 86_400)] | None = None
    to: Annotated[int, msgspec.Meta(ge=0)] | None = None
    to_period_end: str | None = None  # a subscription id: its current period's end (or its trial's)


class Payments(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["fail", "succeed"]
    times: Annotated[int, msgspec.Meta(ge=1)] | None = 1
    customer: str | None = None
    decline_code: str = "card_declined"


class Deliver(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[str], msgspec.Meta(min_length=1, max_length=1000)]
    times: Annotated[int, msgspec.Meta(ge=1, le=500)] = 1
    concurrent: bool = False
    delivery: Literal["auto", "manual"] | None = None


class Mode(msgspec.Struct, forbid_unknown_fields=True):
    delivery: Literal["auto", "manual"]


class ControlError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


def problem(status: int, detail: str) -> HttpResponse:
    titles = {
        400: "Bad Request",
        402: "Payment Required",
        404: "Not Found",
        409: "Conflict",
        422: "Unprocessable Content",
    }
    body = {"type": "about:blank", "title": titles.get(status, "Error"), "status": status, "detail": detail}
    response = json_response(body, status)
    response.media_type = PROBLEM
    return response


def _decode(body: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise ControlError(422, f"Invalid body: {exc}") from None
    except msgspec.DecodeError:
        raise ControlError(400, "The body is not valid JSON") from None


def delivery_json(d: m.Delivery) -> dict[str, Any]:
    return asdict(d)


def event_json(e: m.Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "created": e.created,
        "object_id": e.data_object.get("id"),
        "pending_webhooks": len(e.pending_endpoints),
        "deliveries": [delivery_json(d) for d in e.deliveries],
    }


class Control:
    def __init__(self, standin: StandIn) -> None:
        self.standin = standin

    def account(self, request: HttpRequest) -> Account:
        found = self.standin.accounts.get(request.path_params["account"])
        if found is None:
            raise ControlError(404, f"No Stripe stand-in account {request.path_params['account']!r}")
        return found

    def summary(self, acct: Account) -> dict[str, Any]:
        endpoints = list(acct.webhook_endpoints.values())
        return {
            "id": acct.id,
            "secret_key": acct.secret_key,
            "seed": acct.seed,
            "now": acct.now,
            "next_due": next_due(acct),
            "delivery": acct.delivery,
            "webhook_endpoints": [
                {"id": e.id, "url": e.url, "secret": e.secret, "enabled_events": e.enabled_events} for e in endpoints
            ],
            "counts": {
                "customers": len(acct.customers),
                "subscriptions": len(acct.subscriptions),
                "invoices": len(acct.invoices),
                "events": len(acct.events),
                "queued_events": len(acct.outbox) + len(acct.held),
            },
            "payment_scripts": [asdict(s) for s in acct.payment_scripts],
        }

    async def create(self, request: HttpRequest) -> HttpResponse:
        body: AccountCreate = _decode(request.body, AccountCreate)
        try:
            acct = self.standin.create_account(
                seed=body.seed,
                secret_key=body.secret_key,
                now=body.now,
                delivery=body.delivery,
                public_base=body.public_url,
            )
        except ValueError as exc:
            raise ControlError(409, str(exc)) from None
        if body.webhook_url is not None:
            set_control_endpoint(acct, body.webhook_url, body.webhook_secret, ["*"])
        return json_response(self.summary(acct), 201)

    async def get(self, request: HttpRequest) -> HttpResponse:
        return json_response(self.summary(self.account(request)))

    async def delete(self, request: HttpRequest) -> HttpResponse:
        self.standin.remove(self.account(request).id)
        return HttpResponse(204, b"")

    async def reset(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        self.standin.deliverer.forget(acct)
        acct.reset()
        return json_response(self.summary(acct))

    async def reset_all(self, request: HttpRequest) -> HttpResponse:
        self.standin.clear()
        return HttpResponse(204, b"")

    async def webhook(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        body: WebhookSet = _decode(request.body, WebhookSet)
        endpoint = set_control_endpoint(acct, body.url, body.secret, body.enabled_events)
        return json_response(
            {
                "id": endpoint.id,
                "url": endpoint.url,
                "secret": endpoint.secret,
                "enabled_events": endpoint.enabled_events,
            }
        )

    async def mode(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        body: Mode = _decode(request.body, Mode)
        if body.delivery == "auto" and acct.held:
            acct.outbox.extend(acct.held)
            acct.held = []
        acct.delivery = body.delivery
        self.standin.deliverer.kick(acct)
        return json_response(self.summary(acct))

    async def complete(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        body: Complete = _decode(request.body, Complete)
        if body.card is not None and body.card not in TEST_CARDS:
            raise ControlError(422, f"card must be one of {', '.join(TEST_CARDS)} or null")
        try:
            session = complete_session(acct, session_of(acct, request.path_params["session"]), card=body.card)
        except StripeApiError as exc:
            raise ControlError(exc.status if exc.status in (402, 404) else 409, exc.message) from None
        finally:
            self.standin.deliverer.kick(acct)
        return json_response(
            {
                "id": session.id,
                "status": session.status,
                "customer": session.customer,
                "subscription": session.subscription,
                "invoice": session.invoice,
            }
        )

    async def advance(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        body: Advance = _decode(request.body, Advance)
        given = [v for v in (body.seconds, body.days, body.to, body.to_period_end) if v is not None]
        if len(given) != 1:
            raise ControlError(422, "give exactly one of seconds, days, to, to_period_end")
        if body.to_period_end is not None:
            sub = acct.subscriptions.get(body.to_period_end)
            if sub is None:
                raise ControlError(404, f"No subscription {body.to_period_end!r}")
            target = sub.trial_end if sub.status == "trialing" and sub.trial_end else sub.period_end
        elif body.to is not None:
            target = body.to
        else:
            target = acct.now + (body.seconds if body.seconds is not None else round((body.days or 0) * 86_400))
        if target < acct.now:
            raise ControlError(422, f"the clock only moves forward (now {acct.now}, asked for {target})")
        if target - acct.now > MAX_ADVANCE:
            raise ControlError(422, "advance at most ten years at a time")
        emitted = advance(acct, target)
        self.standin.deliverer.kick(acct)
        return json_response({"now": acct.now, "events": [event_json(acct.events[e]) for e in emitted]})

    async def payments(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        body: Payments = _decode(request.body, Payments)
        if body.outcome == "succeed":
            acct.script_payments(None, body.customer, None)
        else:
            acct.script_payments(body.decline_code, body.customer, body.times)
        return json_response({"payment_scripts": [asdict(s) for s in acct.payment_scripts]})

    async def events(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        wanted = _query(request).get("type")
        items = [event_json(e) for e in acct.events.values() if wanted is None or e.type == wanted]
        return json_response({"items": items, "queued": list(acct.outbox) + list(acct.held)})

    async def deliver(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        body: Deliver = _decode(request.body, Deliver)
        missing = [e for e in body.events if e not in acct.events]
        if missing:
            raise ControlError(404, f"No such events: {', '.join(missing)}")
        deliveries = await self.standin.deliverer.deliver(
            acct, body.events, times=body.times, concurrent=body.concurrent
        )
        return json_response({"deliveries": [delivery_json(d) for d in deliveries]})

    async def flush(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        deliveries = await self.standin.deliverer.flush(acct)
        return json_response({"deliveries": [delivery_json(d) for d in deliveries]})

    async def meter_events(self, request: HttpRequest) -> HttpResponse:
        acct = self.account(request)
        return json_response({"items": [describe(e) for e in acct.meter_events]})

    def routes(self) -> list[Route]:
        def guarded(handler: Any) -> Any:
            async def run(request: HttpRequest) -> HttpResponse:
                try:
                    return await handler(request)
                except ControlError as exc:
                    return problem(exc.status, exc.detail)

            return run

        a = "/accounts/{account}"
        table = [
            ("POST", "/accounts", self.create),
            ("POST", "/reset", self.reset_all),
            ("GET", a, self.get),
            ("DELETE", a, self.delete),
            ("POST", a + "/reset", self.reset),
            ("PUT", a + "/webhook", self.webhook),
            ("PUT", a + "/delivery", self.mode),
            ("POST", a + "/checkout_sessions/{session}/complete", self.complete),
            ("POST", a + "/advance", self.advance),
            ("POST", a + "/payments", self.payments),
            ("GET", a + "/events", self.events),
            ("POST", a + "/events/deliver", self.deliver),
            ("POST", a + "/events/flush", self.flush),
            ("GET", a + "/meter_events", self.meter_events),
        ]
        return [route(method, path, guarded(handler)) for method, path, handler in table]


def _query(request: HttpRequest) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(request.query.decode("latin-1")))
