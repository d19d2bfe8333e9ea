"""A shop under test (an organization, its sandbox seller, a webhook endpoint, a chat) and what it received."""

from __future__ import annotations

from typing import Any

from standardwebhooks.webhooks import Webhook

STOCK_EVENTS = ["stock.low", "stock.out", "stock.restored", "stock.digest"]


class Shop:
    """One organization with a sandbox seller, a webhook endpoint on the receiver and (optionally) a chat."""

    def __init__(self, owner: Any, seller: Any, conn: Any, endpoint: Any, path: str, chat: int) -> None:
        self.owner, self.seller, self.conn, self.endpoint, self.path, self.chat = (
            owner,
            seller,
            conn,
            endpoint,
            path,
            chat,
        )
        self.h = owner["headers"]
        self.tid = owner["tenant"]["id"]
        self.cells: dict[str, list[dict[str, Any]]] = {}
        for item in seller.truth():
            self.cells.setdefault(item["product_id"], []).append(item)

    def set(self, quantities: dict[str, int], rest: int = 40) -> None:
        """Each named product's total goes to its first cell (others 0); every other product gets ``rest``."""
        items = []
        for pid, cells in self.cells.items():
            total = quantities.get(pid, rest)
            items += [{**c, "quantity": total if n == 0 else 0} for n, c in enumerate(cells)]
        self.seller.set_stocks(items)


def received(receiver: Any, shop: Shop) -> list[dict[str, Any]]:
    """The stock events this shop's endpoint received, each verified with the reference library."""
    return [Webhook(shop.endpoint["secret"]).verify(r.body, r.headers) for r in receiver.at(shop.path)]


async def products_by_external_id(api: Any, shop: Shop) -> dict[str, dict[str, Any]]:
    page = (await api.get("/api/v1/products", params={"limit": 500}, headers=shop.h)).json()
    return {p["external_id"]: p for p in page["items"]}
