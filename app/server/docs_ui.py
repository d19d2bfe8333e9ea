"""The API docs pages (Scalar at /schema, Swagger UI at /schema/swagger) load pinned script and style
versions with Subresource Integrity: a CDN that served anything else would be refused by the browser.

The hashes are SHA-384 of the files in the npm packages of these exact versions (jsDelivr serves npm
files unchanged). To move a version: ``npm pack <package>@<version>``, then
``openssl dgst -sha384 -binary <file> | openssl base64 -A`` for each file, and update the table below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

_CDN = "https://cdn.jsdelivr.net/npm"


@dataclass(frozen=True, slots=True)
class Asset:
    url: str
    integrity: str

    def script(self) -> str:
        return f'<script src="{self.url}" integrity="{self.integrity}" crossorigin="anonymous"></script>'

    def stylesheet(self) -> str:
        return f'<link rel="stylesheet" href="{self.url}" integrity="{self.integrity}" crossorigin="anonymous">'


SCALAR_VERSION = "1.76.4"
SWAGGER_UI_VERSION = "5.18.2"
SCALAR_JS = Asset(
    f"{_CDN}/@scalar/api-reference@{SCALAR_VERSION}/dist/browser/standalone.js",
    "sha384-hwB9WroDTpZaI38gr+u9CXA6ksz5gUYgD2GxXazKl/agT1L2GWUiRFWGJYNiFu4Q",
)
SWAGGER_JS = Asset(
    f"{_CDN}/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui-bundle.js",
    "sha384-NXtFPpN61oWCuN4D42K6Zd5Rt2+uxeIT36R7kpXBuY9tLnZorzrJ4ykpqwJfgjpZ",
)
SWAGGER_PRESET_JS = Asset(
    f"{_CDN}/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui-standalone-preset.js",
    "sha384-qr68CD0cvHa88PmVu7e1a58Ego4qvKtcvcLdS2a8Mo5zILI01gyIV9jVwJk7X2NU",
)
SWAGGER_CSS = Asset(
    f"{_CDN}/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui.css",
    "sha384-rcbEi6xgdPk0iWkAQzT2F3FeBJXdG+ydrawGlfHAFIZG7wU6aKbQaRewysYpmrlW",
)


class PinnedScalar(ScalarRenderPlugin):
    """Scalar from a pinned version with SRI; no unpinned theme stylesheet or favicon."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(js_url=SCALAR_JS.url, css_url="", favicon="", **kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = openapi_schema["info"]["title"]
        return f"""<!DOCTYPE html>
<html>
  <head>
    <title>{title}</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
  </head>
  <body>
    <noscript>The API reference needs JavaScript; the document itself is at /schema/openapi.json.</noscript>
    <script id="api-reference" data-url="{self.get_openapi_json_route(request)}"></script>
    {SCALAR_JS.script()}
  </body>
</html>
""".encode()


class PinnedSwagger(SwaggerRenderPlugin):
    """Swagger UI from a pinned version with SRI (Litestar's own page, its asset tags replaced)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            js_url=SWAGGER_JS.url,
            css_url=SWAGGER_CSS.url,
            standalone_preset_js_url=SWAGGER_PRESET_JS.url,
            favicon="",
            **kwargs,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        page = super().render(request, openapi_schema).decode()
        for asset in (SWAGGER_JS, SWAGGER_PRESET_JS):
            page = page.replace(f'<script src="{asset.url}" crossorigin></script>', asset.script())
        page = page.replace(f'<link href="{SWAGGER_CSS.url}" rel="stylesheet">', SWAGGER_CSS.stylesheet())
        return page.encode()
