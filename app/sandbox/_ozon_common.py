"""Helpers shared by the Ozon methods: body decoding, id lists, opaque cursors."""

from __future__ import annotations

import base64
import binascii
from typing import TypeVar

import msgspec

from app.sandbox._catalog import Catalog
from app.sandbox._replies import Reply, ozon_error

T = TypeVar("T")


class BadRequest(Exception):
    """A 400 with Ozon's body; raised from helpers, turned into a reply by the method."""

    def reply(self) -> Reply:
        return ozon_error(400, str(self))


def decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid request payload: {exc}") from None
    except msgspec.DecodeError:
        raise BadRequest("invalid request payload: the body is not valid JSON") from None


def ints(values: list[str | int], field: str) -> list[int]:
    """Ozon sends int64 ids as strings or numbers; accept both."""
    out = []
    for value in values:
        try:
            out.append(int(value))
        except ValueError:
            raise BadRequest(f"invalid {field}: {value!r} is not an integer") from None
    return out


def check_limit(limit: int | None, maximum: int) -> int:
    if limit is None or not 1 <= limit <= maximum:
        raise BadRequest(f"limit: value must be in range [1, {maximum}]")
    return limit


def encode_cursor(value: int) -> str:
    """`[value]` in base64, the form Ozon's own cursors take (e.g. `WzIyMzY4MTk0NV0=`)."""
    return base64.b64encode(f"[{value}]".encode()).decode()


def decode_cursor(cursor: str) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        if text.startswith("[") and text.endswith("]"):
            return int(text[1:-1])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadRequest("invalid cursor")


def select_products(
    cat: Catalog, product_ids: list[int], offer_ids: list[str], skus: list[int] | None = None
) -> list[int] | None:
    """Product indexes matching id filters (ascending); None when no filter is given (= all)."""
    if not product_ids and not offer_ids and not skus:
        return None
    found: set[int] = set()
    for pid in product_ids:
        if (i := cat.product_index(pid)) is not None:
            found.add(i)
    for offer in offer_ids:
        if (i := cat.offer_index(offer)) is not None:
            found.add(i)
    for sku in skus or ():
        if (v := cat.variant_index(sku)) is not None:
            found.add(cat.variant_product[v])
    return sorted(found)


def present_reserved(cat: Catalog, w: int, v: int) -> tuple[int, int]:
    """Ozon's `present` counts reserved units too: present = available + reserved."""
    reserved_column = cat.pending[w]
    reserved = reserved_column[v] if reserved_column is not None else 0
    return cat.quantity[w][v] + reserved, reserved
