"""Ozon Seller API: ``OzonClient`` and the response Structs."""

from app.integrations.ozon.client import OzonClient
from app.integrations.ozon.schemas import (
    AnalyticsStock,
    FboPosting,
    FboWarehouseStock,
    FbsPosting,
    FbsWarehouseStock,
    PostingProduct,
    ProductInfo,
    ProductListItem,
    ProductStock,
    ProductStocks,
    Warehouse,
)

__all__ = [
    "AnalyticsStock",
    "FboPosting",
    "FboWarehouseStock",
    "FbsPosting",
    "FbsWarehouseStock",
    "OzonClient",
    "PostingProduct",
    "ProductInfo",
    "ProductListItem",
    "ProductStock",
    "ProductStocks",
    "Warehouse",
]
