"""The OpenAPI document as clients read it: realistic examples that match their schemas, the responses and
headers the server really sends declared where it sends them, and a `webhooks` entry per event we send."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from app.domain.events.types import EVENT_TYPES

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
async def doc(client) -> dict[str, Any]:
    return (await client.get("/schema/openapi.json")).json()


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    # Resolve "#/components/schemas/…" against the document itself.
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


def _walk(value: Any):
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


async def test_examples_are_realistic_and_valid(doc):
    schemas = doc["components"]["schemas"]
    with_examples = {name: s for name, s in schemas.items() if s.get("examples")}
    assert {"Problem", "Product", "SyncRun", "TokenPair", "Connection", "SessionCreate"} <= set(with_examples)
    for schema in with_examples.values():
        for example in schema["examples"]:
            _validator(doc, schema).validate(example)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for status, response in op["responses"].items():
                for media in response.get("content", {}).values():
                    for example in media.get("examples", {}).values():
                        _validator(doc, media["schema"]).validate(example["value"])
                        if "problem" in str(media["schema"]):
                            assert example["value"]["status"] == int(status), (path, method, status)
    # Nothing generated is left (Litestar's random 20-letter strings).
    generated = [
        v
        for node in _walk(doc)
        for v in node.get("examples", [])
        if isinstance(v, str) and v.isalpha() and len(v) == 20
    ]
    assert generated == []


async def test_statuses_and_headers_are_declared_where_they_occur(doc):
    products = doc["paths"]["/api/v1/products"]["get"]
    assert {"200", "304", "429", "503"} <= set(products["responses"])
    assert "ETag" in products["responses"]["200"]["headers"]
    assert {"RateLimit", "RateLimit-Policy", "X-RateLimit-Remaining"} <= set(products["responses"]["200"]["headers"])
    assert "If-None-Match" in [p["name"] for p in products["parameters"]]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            responses = op["responses"]
            if "429" in responses:
                assert responses["429"]["headers"]["Retry-After"]["required"] is True, (method, path)
            if path.startswith("/api/"):
                assert "Retry-After" in responses["503"]["headers"], (method, path)
            if "304" in responses:
                assert method == "get" and "ETag" in responses["200"]["headers"], (method, path)
    # Optional enum query parameters carry no `null` (a query string cannot send one).
    for item in doc["paths"].values():
        for op in (v for k, v in item.items() if k in METHODS):
            for p in op.get("parameters", []):
                if p["in"] == "query" and "enum" in p["schema"]:
                    assert None not in p["schema"]["enum"] and p["schema"]["type"] != ["null", "string"], p


async def test_every_event_we_send_is_in_the_webhooks_section(doc):
    assert set(doc["webhooks"]) == {*EVENT_TYPES, "webhook_endpoint.test"}
    for event_type, item in doc["webhooks"].items():
        post = item["post"]
        assert {p["name"] for p in post["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        envelope = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert envelope["properties"]["type"]["const"] == event_type
        assert set(envelope["required"]) == {"id", "type", "created_at", "tenant_id", "data"}
