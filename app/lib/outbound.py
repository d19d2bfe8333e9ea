"""The one outbound HTTP client per process (connection pooling across every marketplace call)."""

from __future__ import annotations

import httpx

USER_AGENT = "stock-tracker/0.1 (+self-hosted)"


def marketplace_http_client() -> httpx.AsyncClient:
    """Short connect timeout, generous read timeout (large stock reports), no redirects followed."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=5.0, read=120.0, write=30.0, pool=30.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )
