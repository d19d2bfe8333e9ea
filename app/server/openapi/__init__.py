"""Make the OpenAPI document say exactly what the server does, so generated SDKs and fuzzers can trust it.

* ``_constraints``: closed request bodies, numeric bounds, constraints moved into ``oneOf`` branches,
  ``security: []`` on public operations.
* ``_shapes``: optional enum query parameters without a ``null`` member, single-branch ``oneOf`` collapsed
  (both made SDK generators emit junk classes: ``ListProductsMarketplaceType2Type1`` and friends).
* ``_responses``: ``304`` with ``ETag`` on cached reads, ``503`` with ``Retry-After`` wherever the database
  is used, ``RateLimit-*`` / ``X-RateLimit-*`` on rate-limited answers, ``Retry-After`` on every ``429``,
  realistic examples instead of generated ones.
* ``_webhooks``: the ``webhooks`` section, one entry per event type we send.
"""

from __future__ import annotations

from litestar import Litestar

from app.server.openapi._constraints import ClosedStructSchemaPlugin, finish_constraints
from app.server.openapi._responses import declare_responses
from app.server.openapi._shapes import simplify_shapes
from app.server.openapi._webhooks import declare_webhooks

__all__ = ["ClosedStructSchemaPlugin", "finish_openapi"]


def finish_openapi(app: Litestar, public_paths: list[str]) -> None:
    """Apply the adjustments above to the app's document (call once, when the routes are final)."""
    document = app.openapi_schema
    finish_constraints(document, public_paths)
    simplify_shapes(document)
    declare_responses(app, document, public_paths)
    declare_webhooks(document)
