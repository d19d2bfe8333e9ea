"""Wildberries seller API: ``WildberriesClient``, token decoding and the response Structs."""

from app.integrations.wildberries.client import WildberriesClient
from app.integrations.wildberries.schemas import (
    Card,
    Cursor,
    OrderLine,
    Ping,
    SellerWarehouse,
    Size,
    StockAmount,
    StockRow,
)
from app.integrations.wildberries.token import REQUIRED_CATEGORIES, TokenInfo, parse_token

__all__ = [
    "REQUIRED_CATEGORIES",
    "Card",
    "Cursor",
    "OrderLine",
    "Ping",
    "SellerWarehouse",
    "Size",
    "StockAmount",
    "StockRow",
    "TokenInfo",
    "WildberriesClient",
    "parse_token",
]
