"""The API docs pages load pinned script and style versions with Subresource Integrity, never `@latest`."""

from __future__ import annotations

import re

import pytest

_TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE)
_PINNED = re.compile(r"@\d+\.\d+\.\d+/")


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_docs_assets_are_pinned_with_sri(client, path):
    resp = await client.get(path)
    assert resp.status_code == 200
    page = resp.text
    assert "@latest" not in page and "@main" not in page
    tags = [m.group(0) for m in _TAG.finditer(page) if re.search(r"(src|href)=\"https?://", m.group(0))]
    assert tags, page
    for tag in tags:
        url = re.search(r"(?:src|href)=\"([^\"]+)\"", tag).group(1)
        assert _PINNED.search(url), tag
        assert re.search(r'integrity="sha384-[A-Za-z0-9+/]{64}"', tag), tag
        assert 'crossorigin="anonymous"' in tag, tag
