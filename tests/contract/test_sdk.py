"""An SDK generated from /schema/openapi.json by openapi-python-client is importable, has no junk classes, and
does the integrator's whole journey against the running service: register, log in, create an API key,
connect a marketplace, trigger a sync, page through products (and get 304 for an unchanged page), read the
stock report."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.conftest import unique_email
from tests.contract.support import serve_api
from tests.helpers import PASSWORD
from tests.sync_support import make_seller, run_worker

PACKAGE = "stock_tracker_sdk"
PRODUCTS = 7


@pytest.fixture(scope="module")
def api_url(settings) -> Iterator[str]:
    with serve_api(settings) as url:
        yield url


@pytest.fixture(scope="module")
def sdk(api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("sdk")
    schema = root / "openapi.json"
    schema.write_text(json.dumps(httpx.get(f"{api_url}/schema/openapi.json").json()))
    config = root / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))
    generator = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(schema),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # every operation and schema made it into the SDK
    # No junk classes: nullable enums and single-branch unions used to come out as `…Type1`, `…Type2Type1`,
    # `…Type0Item` (13 of them before issue 15 §6).
    junk = sorted(p.stem for p in (root / PACKAGE / "models").glob("*.py") if re.search(r"_type_\d", p.stem))
    assert junk == [], junk
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


async def test_the_generated_sdk_does_the_integrators_journey(sdk, api_url, settings, marketplace_sandbox):
    api_keys = importlib.import_module(f"{PACKAGE}.api.api_keys.create_api_key")
    register = importlib.import_module(f"{PACKAGE}.api.auth.register")
    login = importlib.import_module(f"{PACKAGE}.api.auth.login")
    get_me = importlib.import_module(f"{PACKAGE}.api.auth.get_me")
    create_connection = importlib.import_module(f"{PACKAGE}.api.connections.create_connection")
    trigger_sync = importlib.import_module(f"{PACKAGE}.api.syncs.trigger_sync")
    get_sync = importlib.import_module(f"{PACKAGE}.api.syncs.get_sync")
    list_products = importlib.import_module(f"{PACKAGE}.api.products.list_products")
    get_stock_report = importlib.import_module(f"{PACKAGE}.api.analytics.get_stock_report")
    get_product = importlib.import_module(f"{PACKAGE}.api.products.get_product")
    models = importlib.import_module(f"{PACKAGE}.models")

    anonymous = sdk.Client(base_url=api_url, raise_on_unexpected_status=True)
    email = unique_email("sdk")
    registered = await register.asyncio(
        client=anonymous, body=models.RegistrationCreate(email=email, password=PASSWORD, organization_name="SDK Shop")
    )
    assert isinstance(registered, models.Registration), registered
    tokens = await login.asyncio(client=anonymous, body=models.SessionCreate(email=email, password=PASSWORD))
    assert isinstance(tokens, models.TokenPair), tokens
    owner = sdk.AuthenticatedClient(base_url=api_url, token=tokens.access_token, raise_on_unexpected_status=True)
    me = await get_me.asyncio(client=owner)
    assert isinstance(me, models.Me) and me.user.email == email and me.tenant.id == registered.tenant.id

    # Problems come back typed, too.
    wrong = await login.asyncio_detailed(client=anonymous, body=models.SessionCreate(email=email, password="nope-nope"))
    assert wrong.status_code == 401 and isinstance(wrong.parsed, models.Problem) and wrong.parsed.code == "unauthorized"

    created = await api_keys.asyncio(
        client=owner,
        body=models.ApiKeyCreate(
            name="sdk", scopes=[models.ApiKeyCreateScopesItem.READ, models.ApiKeyCreateScopesItem.WRITE]
        ),
    )
    assert isinstance(created, models.ApiKeyWithSecret) and created.key.startswith("stk_")
    integrator = sdk.AuthenticatedClient(base_url=api_url, token=created.key, raise_on_unexpected_status=True)

    seller = make_seller(marketplace_sandbox, "wildberries", products=PRODUCTS, warehouses=1, seed=41)
    try:
        connection = await create_connection.asyncio(
            client=integrator,
            body=models.WildberriesConnectionCreate(
                marketplace="wildberries",
                name="SDK",
                credentials=models.WildberriesCredentials(token=seller.credentials["token"]),
            ),
        )
        assert isinstance(connection, models.Connection), connection
        accepted = await trigger_sync.asyncio(connection.id, client=integrator)
        assert isinstance(accepted, models.SyncRunAccepted), accepted
        await run_worker(settings)
        run = await get_sync.asyncio(accepted.id, client=integrator)
        assert isinstance(run, models.SyncRun) and run.status.value == "succeeded"

        seen: list[uuid.UUID] = []
        cursor = None
        while True:
            page = await list_products.asyncio(client=integrator, limit=3, cursor=cursor if cursor else sdk.types.UNSET)
            assert isinstance(page, models.ProductPage), page
            assert len(page.items) <= 3
            seen += [item.id for item in page.items]
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == PRODUCTS
        detail = await get_product.asyncio(seen[0], client=integrator)
        assert isinstance(detail, models.ProductDetail) and detail.id == seen[0] and detail.variants

        # The declared 304: the same page again with its ETag costs no body.
        first = await list_products.asyncio_detailed(client=integrator, limit=3)
        assert first.status_code == 200 and first.headers.get("etag"), first.headers
        assert "ratelimit" in {k.lower() for k in first.headers}
        again = await list_products.asyncio_detailed(client=integrator, limit=3, if_none_match=first.headers["etag"])
        assert again.status_code == 304 and again.parsed is None

        report = await get_stock_report.asyncio(client=integrator, window=models.GetStockReportWindow.VALUE_7)
        assert isinstance(report, models.StockReport), report
        assert {row.product_id for row in report.rows} == set(seen)
        assert all(row.total_stock >= 0 and row.warehouses for row in report.rows) and report.warehouses
    finally:
        seller.delete()
