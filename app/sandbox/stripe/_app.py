"""The Stripe stand-in as two ASGI apps sharing one state: the API (with its hosted pages) and the control API."""

from __future__ import annotations

from typing import Any

from litestar import asgi
from litestar.types import Receive, Scope, Send

from app.sandbox.stripe import (
    _ops_catalog,
    _ops_checkout,
    _ops_customers,
    _ops_events,
    _ops_meters,
    _ops_schedules,
    _ops_subscriptions,
)
from app.sandbox.stripe._api import Api
from app.sandbox.stripe._control import Control, problem
from app.sandbox.stripe._http import HttpRequest, HttpResponse, Router, json_response
from app.sandbox.stripe._pages import Pages
from app.sandbox.stripe._standin import StandIn


def _unrecognized(request: HttpRequest, allowed: list[str]) -> HttpResponse:
    """Stripe answers an unknown URL, or a known one with the wrong method, with this 404."""
    message = (
        f"Unrecognized request URL ({request.method}: {request.path}). Please see https://stripe.com/docs or we "
        "can help at https://support.stripe.com/."
    )
    return json_response({"error": {"message": message, "type": "invalid_request_error"}}, 404)


def _api_crashed(request: HttpRequest) -> HttpResponse:
    message = "An unexpected error occurred in the Stripe stand-in (see the sandbox log)."
    return json_response({"error": {"message": message, "type": "api_error"}}, 500, {"Stripe-Should-Retry": "false"})


def _control_crashed(request: HttpRequest) -> HttpResponse:
    return problem(500, "Unexpected error in the Stripe stand-in (see the sandbox log)")


def _control_missing(request: HttpRequest, allowed: list[str]) -> HttpResponse:
    if allowed:
        return problem(405, f"{request.method} is not allowed here (allowed: {', '.join(sorted(set(allowed)))})")
    return problem(404, f"No control endpoint {request.path}")


def build(standin: StandIn) -> tuple[Router, Router]:
    """(API router for `/stripe`, control router for `/control/stripe`)."""
    api = Api(standin)
    api_routes = [
        *_ops_customers.routes(api),
        *_ops_catalog.routes(api),
        *_ops_events.routes(api),
        *_ops_meters.routes(api),
        *_ops_checkout.routes(api),
        *_ops_subscriptions.routes(api),
        *_ops_schedules.routes(api),
        *Pages(standin).routes(),
    ]
    return (
        Router(api_routes, _unrecognized, _api_crashed),
        Router(Control(standin).routes(), _control_missing, _control_crashed),
    )


def stripe_mounts(standin: StandIn | None = None) -> list[Any]:
    """Route handlers mounting a fresh stand-in at `/stripe` and its control API at `/control/stripe`."""
    state = standin or StandIn()
    api, control = build(state)

    @asgi("/stripe", is_mount=True, copy_scope=True)
    async def stripe_api(scope: Scope, receive: Receive, send: Send) -> None:
        await api(dict(scope), receive, send)

    @asgi("/control/stripe", is_mount=True, copy_scope=True)
    async def stripe_control(scope: Scope, receive: Receive, send: Send) -> None:
        await control(dict(scope), receive, send)

    return [stripe_api, stripe_control]
