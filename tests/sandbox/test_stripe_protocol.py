"""The Stripe stand-in speaks Stripe's protocol over HTTP: bearer keys, bracket-notation form bodies,
Stripe's error body and statuses, `Idempotency-Key`, list pagination, `expand[]`, lookup keys, search."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.sandbox_server import StripeStandIn


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
async def account(http: httpx.AsyncClient, sandbox_url: str) -> AsyncIterator[StripeStandIn]:
    made = await StripeStandIn.create(http, sandbox_url.removesuffix("/sandbox"), seed=3)
    yield made
    await made.delete()


class Api:
    def __init__(self, http: httpx.AsyncClient, account: StripeStandIn) -> None:
        self.http = http
        self.account = account

    async def __call__(
        self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        all_headers = {**self.account.headers, **(headers or {})}
        url = self.account.api_base + path
        if method in ("GET", "DELETE"):
            return await self.http.request(method, url, params=data, headers=all_headers)
        return await self.http.post(url, data=data, headers=all_headers)


@pytest.fixture
def api(http: httpx.AsyncClient, account: StripeStandIn) -> Api:
    return Api(http, account)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


async def test_keys_are_checked_like_stripe(http: httpx.AsyncClient, account: StripeStandIn, sandbox_url: str) -> None:
    url = account.api_base + "/v1/customers"
    missing = await http.get(url)
    assert missing.status_code == 401
    assert "did not provide an API key" in error_of(missing)["message"]
    wrong_key = "sk_test_" + "x" * 30
    wrong = await http.get(url, headers={"Authorization": f"Bearer {wrong_key}"})
    assert wrong.status_code == 401
    assert error_of(wrong) == {
        "message": "Invalid API Key provided: sk_test_" + "*" * 26 + "xxxx",
        "type": "invalid_request_error",
    }
    assert wrong_key not in wrong.text
    basic = base64.b64encode(f"{account.secret_key}:".encode()).decode()
    assert (await http.get(url, headers={"Authorization": f"Basic {basic}"})).status_code == 200

    other = await StripeStandIn.create(http, sandbox_url.removesuffix("/sandbox"))
    created = await http.post(url, data={"email": "a@example.com"}, headers=account.headers)
    foreign = await http.get(f"{other.api_base}/v1/customers/{created.json()['id']}", headers=other.headers)
    assert foreign.status_code == 404  # accounts are separate worlds
    await other.delete()


async def test_bracket_notation_and_metadata(api: Api) -> None:
    created = await api(
        "POST", "/v1/customers", {"email": "o@example.com", "metadata[tenant_id]": "t1", "metadata[x]": "1"}
    )
    assert created.status_code == 200
    customer = created.json()
    assert customer["metadata"] == {"tenant_id": "t1", "x": "1"}
    updated = (await api("POST", f"/v1/customers/{customer['id']}", {"metadata[x]": "", "metadata[y]": "2"})).json()
    assert updated["metadata"] == {"tenant_id": "t1", "y": "2"}  # an empty value removes the key
    cleared = (await api("POST", f"/v1/customers/{customer['id']}", {"metadata": ""})).json()
    assert cleared["metadata"] == {}


@pytest.mark.parametrize(
    ("path", "data", "status", "expected"),
    [
        (
            "/v1/customers",
            {"foo": "1"},
            400,
            {"code": "parameter_unknown", "param": "foo", "message": "Received unknown parameter: foo"},
        ),
        (
            "/v1/customers",
            {"invoice_settings[bogus]": "1"},
            400,
            {"code": "parameter_unknown", "param": "invoice_settings[bogus]"},
        ),
        (
            "/v1/products",
            {},
            400,
            {"code": "parameter_missing", "param": "name", "message": "Missing required param: name."},
        ),
        ("/v1/products", {"name": ""}, 400, {"code": "parameter_invalid_empty", "param": "name"}),
        (
            "/v1/prices",
            {"currency": "usd", "product_data[name]": "P", "unit_amount": "ten"},
            400,
            {"code": "parameter_invalid_integer", "message": "Invalid integer: ten"},
        ),
        (
            "/v1/prices",
            {"currency": "usd", "product_data[name]": "P", "unit_amount": "10", "recurring[interval]": "fortnight"},
            400,
            {
                "param": "recurring[interval]",
                "message": "Invalid recurring[interval]: must be one of day, week, month, or year",
            },
        ),
        (
            "/v1/checkout/sessions",
            {"mode": "subscription", "customer": "cus_nope"},
            404,
            {"code": "resource_missing", "param": "customer"},
        ),
    ],
)
async def test_bad_parameters_get_stripes_errors(
    api: Api, path: str, data: dict[str, str], status: int, expected: dict[str, str]
) -> None:
    response = await api("POST", path, data)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert expected.items() <= error.items(), error
    if "code" in error:
        assert error["doc_url"] == f"https://stripe.com/docs/error-codes/{error['code']}"


async def test_missing_objects_and_unknown_urls(api: Api) -> None:
    missing = await api("GET", "/v1/customers/cus_nope")
    assert missing.status_code == 404
    assert error_of(missing) == {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource_missing",
        "message": "No such customer: 'cus_nope'",
        "param": "id",
        "type": "invalid_request_error",
    }
    for method, path in (("GET", "/v1/nothing"), ("DELETE", "/v1/prices/price_x")):
        unknown = await api(method, path)
        assert unknown.status_code == 404
        assert error_of(unknown)["message"].startswith(f"Unrecognized request URL ({method}: {path})")


async def test_idempotency_keys_replay_or_refuse(api: Api) -> None:
    first = await api("POST", "/v1/customers", {"email": "a@example.com"}, {"Idempotency-Key": "k-1"})
    again = await api("POST", "/v1/customers", {"email": "a@example.com"}, {"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    listed = (await api("GET", "/v1/customers")).json()
    assert [c["id"] for c in listed["data"]] == [first.json()["id"]]

    other = await api("POST", "/v1/customers", {"email": "b@example.com"}, {"Idempotency-Key": "k-1"})
    assert other.status_code == 400
    assert error_of(other)["type"] == "idempotency_error"

    refused = await api("POST", "/v1/customers", {"bogus": "1"}, {"Idempotency-Key": "k-2"})
    assert refused.status_code == 400  # refused while validating: not kept under the key
    fixed = await api("POST", "/v1/customers", {"email": "c@example.com"}, {"Idempotency-Key": "k-2"})
    assert fixed.status_code == 200


async def test_lists_page_newest_first(api: Api) -> None:
    ids = [(await api("POST", "/v1/products", {"name": f"P{i}"})).json()["id"] for i in range(5)]
    newest_first = list(reversed(ids))
    page = (await api("GET", "/v1/products", {"limit": 2})).json()
    assert page["object"] == "list" and page["url"] == "/v1/products"
    assert [p["id"] for p in page["data"]] == newest_first[:2] and page["has_more"] is True
    nxt = (await api("GET", "/v1/products", {"limit": 2, "starting_after": newest_first[1]})).json()
    assert [p["id"] for p in nxt["data"]] == newest_first[2:4] and nxt["has_more"] is True
    last = (await api("GET", "/v1/products", {"limit": 2, "starting_after": newest_first[3]})).json()
    assert [p["id"] for p in last["data"]] == newest_first[4:] and last["has_more"] is False
    back = (await api("GET", "/v1/products", {"limit": 2, "ending_before": newest_first[4]})).json()
    assert [p["id"] for p in back["data"]] == newest_first[2:4]
    assert (await api("GET", "/v1/products", {"limit": 101})).status_code == 400


async def test_prices_by_lookup_key_and_key_transfer(api: Api) -> None:
    base = {"currency": "usd", "product_data[name]": "Pro", "recurring[interval]": "month"}
    old = (await api("POST", "/v1/prices", {**base, "unit_amount": "2990", "lookup_key": "pro_monthly"})).json()
    clash = await api("POST", "/v1/prices", {**base, "unit_amount": "3490", "lookup_key": "pro_monthly"})
    assert clash.status_code == 400
    assert error_of(clash)["message"] == f"A price (`{old['id']}`) already uses that lookup key."
    new = (
        await api(
            "POST",
            "/v1/prices",
            {**base, "unit_amount": "3490", "lookup_key": "pro_monthly", "transfer_lookup_key": "true"},
        )
    ).json()
    for query in ({"lookup_keys[]": "pro_monthly"}, {"lookup_keys[0]": "pro_monthly"}):
        found = (await api("GET", "/v1/prices", query)).json()["data"]
        assert [p["id"] for p in found] == [new["id"]]
    assert (await api("GET", f"/v1/prices/{old['id']}")).json()["lookup_key"] is None


async def test_expand_replaces_ids_with_objects(api: Api, account: StripeStandIn) -> None:
    customer = (await api("POST", "/v1/customers", {"email": "e@example.com"})).json()
    price = (
        await api(
            "POST",
            "/v1/prices",
            {"currency": "usd", "product_data[name]": "S", "unit_amount": "990", "recurring[interval]": "month"},
        )
    ).json()
    session = (
        await api(
            "POST",
            "/v1/checkout/sessions",
            {
                "mode": "subscription",
                "customer": customer["id"],
                "line_items[0][price]": price["id"],
                "line_items[0][quantity]": "1",
            },
        )
    ).json()
    sub_id = (await account.complete_checkout(session["id"]))["subscription"]
    sub = (await api("GET", f"/v1/subscriptions/{sub_id}", {"expand[]": ["customer", "latest_invoice"]})).json()
    assert sub["customer"]["object"] == "customer" and sub["latest_invoice"]["object"] == "invoice"
    listed = (await api("GET", "/v1/subscriptions", {"expand[0]": "data.customer"})).json()
    assert listed["data"][0]["customer"]["id"] == customer["id"]
    nested = (await api("GET", f"/v1/checkout/sessions/{session['id']}", {"expand[]": "subscription.customer"})).json()
    assert nested["subscription"]["customer"]["email"] == "e@example.com"
    bad = await api("GET", f"/v1/subscriptions/{sub_id}", {"expand[]": "status"})
    assert bad.status_code == 400 and error_of(bad)["message"] == "This property cannot be expanded (status)."


async def test_customer_search(api: Api) -> None:
    a = (await api("POST", "/v1/customers", {"email": "a@example.com", "metadata[tenant_id]": "t-a"})).json()
    b = (await api("POST", "/v1/customers", {"email": "b@example.com", "metadata[tenant_id]": "t-b"})).json()

    async def search(query: str) -> list[str]:
        response = await api("GET", "/v1/customers/search", {"query": query})
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "search_result"
        return [c["id"] for c in response.json()["data"]]

    assert await search("metadata['tenant_id']:'t-b'") == [b["id"]]
    assert await search('email:"a@example.com"') == [a["id"]]
    assert set(await search("email:'a@example.com' OR metadata['tenant_id']:'t-b'")) == {a["id"], b["id"]}
    assert await search("email:'a@example.com' AND metadata['tenant_id']:'t-b'") == []
    assert (await api("GET", "/v1/customers/search", {"query": "balance>3"})).status_code == 400
