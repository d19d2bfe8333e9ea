"""Ozon Seller API: ``OzonClient`` and the response Structs."""

from app.integrations.ozon.client import OzonClient
from app.integrations.ozon.schemas import (
    AnalyticsStock,
    FboWarehouseStock,
    FbsWarehouseStock,
    ProductInfo,
    ProductListItem,
    ProductStock,
    ProductStocks,
    Warehouse,
)

__all__ = [
    "AnalyticsStock",
    "FboWarehouseStock",
    "FbsWarehouseStock",
    "OzonClient",
    "ProductInfo",
    "ProductListItem",
    "ProductStock",
    "ProductStocks",
    "Warehouse",
]
