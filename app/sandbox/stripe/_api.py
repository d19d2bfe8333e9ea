"""What every Stripe API call goes through: auth, bracket-notation parameters, `Idempotency-Key`, `expand[]`,
list pagination, Stripe's error body, then the webhook deliveries the call queued."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.sandbox.stripe import _forms as forms
from app.sandbox.stripe import _render as render
from app.sandbox.stripe import _render_billing as render_billing
from app.sandbox.stripe._account import API_VERSION, Account, RequestContext, Saved
from app.sandbox.stripe._errors import StripeApiError, invalid
from app.sandbox.stripe._http import HttpRequest, HttpResponse, Route, json_response, route
from app.sandbox.stripe._render_sessions import checkout_session, portal_configuration, portal_session, schedule
from app.sandbox.stripe._standin import StandIn

T = TypeVar("T")
MAX_EXPAND_DEPTH = 4


@dataclass(slots=True)
class Call:
    """One API call as an operation sees it."""

    acct: Account
    request: HttpRequest
    raw: dict[str, Any]
    expand: list[str] = field(default_factory=list)

    def read(self, fields: dict[str, forms.Spec], *, required: tuple[str, ...] = ()) -> dict[str, Any]:
        values = forms.params(fields, self.raw, required=required)
        self.expand = values.pop("expand", None) or []
        return values

    def arg(self, name: str) -> str:
        return self.request.path_params[name]


Operation = Callable[[Call], dict[str, Any]]


def render_any(acct: Account, object_id: str) -> dict[str, Any] | None:
    """Any stored object by id (what `expand` needs)."""
    found = acct.find(object_id)
    if found is None:
        return None
    kind = type(found).__name__
    if kind == "SubItem":
        sub = acct.subscriptions[acct.items[object_id][0]]
        return render_billing.subscription_item(acct, sub, found)
    renderers: dict[str, Callable[[Any], dict[str, Any]]] = {
        "Customer": lambda o: render.customer(acct, o),
        "PaymentMethod": render.payment_method,
        "Product": render.product,
        "Price": render.price,
        "Subscription": lambda o: render_billing.subscription(acct, o),
        "Invoice": lambda o: render_billing.invoice(acct, o),
        "Schedule": lambda o: schedule(acct, o),
        "CheckoutSession": lambda o: checkout_session(acct, o),
        "PortalSession": portal_session,
        "PortalConfiguration": portal_configuration,
        "Event": render.event,
        "WebhookEndpoint": render.webhook_endpoint,
        "Meter": render.meter,
    }
    renderer = renderers.get(kind)
    return renderer(found) if renderer else None


def expand(acct: Account, obj: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    for path in paths:
        parts = path.split(".")
        if len([p for p in parts if p != "data"]) > MAX_EXPAND_DEPTH:
            raise invalid("You cannot expand more than 4 levels of a property.", "expand")
        _expand(acct, obj, parts, path)
    return obj


def _expand(acct: Account, node: Any, parts: list[str], full: str) -> None:
    if isinstance(node, list):
        for element in node:
            _expand(acct, element, parts, full)
        return
    if not isinstance(node, dict) or parts[0] not in node:
        raise invalid(f"This property cannot be expanded ({full}).", "expand")
    key, rest = parts[0], parts[1:]
    value = node[key]
    if isinstance(value, str):
        expanded = render_any(acct, value)
        if expanded is None:
            raise invalid(f"This property cannot be expanded ({full}).", "expand")
        node[key] = value = expanded
    elif value is None:
        return
    elif not rest and not (isinstance(value, dict) and "id" in value):
        raise invalid(f"This property cannot be expanded ({full}).", "expand")
    if rest:
        _expand(acct, value, rest, full)


def paginate(
    c: Call, objects: list[T], url: str, to_json: Callable[[T], dict[str, Any]], key: Callable[[T], str]
) -> dict[str, Any]:
    """A list object over ``objects`` (oldest first as stored; Stripe lists newest first)."""
    values = forms.read(
        {**forms.LIST_PARAMS},
        {k: v for k, v in c.raw.items() if k in forms.LIST_PARAMS},
    )
    c.expand = values.get("expand") or []
    ordered = list(reversed(objects))
    limit = values.get("limit") or 10
    ids = [key(o) for o in ordered]
    after, before = values.get("starting_after"), values.get("ending_before")
    if after is not None:
        if after not in ids:
            raise invalid(f"No such object: '{after}'", "starting_after", "resource_missing")
        window = ordered[ids.index(after) + 1 :]
        page, more = window[:limit], len(window) > limit
    elif before is not None:
        if before not in ids:
            raise invalid(f"No such object: '{before}'", "ending_before", "resource_missing")
        window = ordered[: ids.index(before)]
        page, more = window[-limit:], len(window) > limit
    else:
        page, more = ordered[:limit], len(ordered) > limit
    return render.list_object([to_json(o) for o in page], url, has_more=more)


def list_filters(c: Call, fields: dict[str, forms.Spec]) -> dict[str, Any]:
    """A list endpoint's own filters (the pagination parameters are read by ``paginate``)."""
    return forms.read({**fields, **forms.LIST_PARAMS}, c.raw)


class Api:
    """Turns operations into route handlers."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin

    def route(self, method: str, template: str, operation: Operation) -> Route:
        async def handler(request: HttpRequest) -> HttpResponse:
            return self.call(request, operation)

        return route(method, template, handler)

    def call(self, request: HttpRequest, operation: Operation) -> HttpResponse:
        try:
            acct = self.standin.authenticate(request.header("authorization"))
        except StripeApiError as exc:
            return json_response(exc.body(), exc.status)
        if acct.public_base_from_requests:
            acct.public_base = request.base_url
        request_id = acct.request_ids.new("req_", 14)
        headers = {"Request-Id": request_id, "Stripe-Version": request.header("stripe-version") or API_VERSION}
        key = request.header("idempotency-key") if request.method == "POST" else None
        source = request.body if request.method == "POST" else request.query
        pairs = forms.decode_pairs(source)
        fingerprint = f"{request.method} {request.path} {sorted(pairs)}"
        if key is not None:
            headers["Idempotency-Key"] = key
            saved = acct.idempotency.get(key)
            if saved is not None:
                if saved.fingerprint != fingerprint:
                    error = StripeApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                    return json_response(error.body(), 400, headers)
                return json_response_raw(saved.status, saved.body, {**headers, "Idempotent-Replayed": "true"})
        acct.request = RequestContext(request_id, key)
        try:
            call = Call(acct, request, forms.nest(pairs))
            result = operation(call)
            body, status, keep = expand(acct, result, call.expand), 200, True
        except StripeApiError as exc:
            body, status, keep = exc.body(), exc.status, exc.saved
            headers.update(exc.headers or {})
        finally:
            acct.request = None
        response = json_response(body, status, headers)
        if key is not None and keep:
            acct.idempotency[key] = Saved(fingerprint, status, response.body, acct.now)
        self.standin.deliverer.kick(acct)
        return response


def json_response_raw(status: int, body: bytes, headers: dict[str, str]) -> HttpResponse:
    return HttpResponse(status, body, headers=headers)
