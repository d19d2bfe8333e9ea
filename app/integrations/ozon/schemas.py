"""Ozon Seller API request and response bodies, field names as in the official swagger.

Ozon sends int64 ids as numbers in responses but documents request id lists as strings; requests here
send strings. Only what the product reads is required; unknown fields are ignored.
"""

from __future__ import annotations

import msgspec

# ---- /v3/product/list -------------------------------------------------------------------------------------


class ProductListFilter(msgspec.Struct):
    visibility: str = "ALL"


class ProductListRequest(msgspec.Struct):
    last_id: str
    limit: int
    filter: ProductListFilter = msgspec.field(default_factory=ProductListFilter)


class ProductListItem(msgspec.Struct):
    product_id: int
    offer_id: str
    archived: bool = False
    has_fbo_stocks: bool = False
    has_fbs_stocks: bool = False
    is_discounted: bool = False


class ProductListResult(msgspec.Struct):
    items: list[ProductListItem]
    last_id: str = ""
    total: int = 0


class ProductListResponse(msgspec.Struct):
    result: ProductListResult


# ---- /v3/product/info/list --------------------------------------------------------------------------------


class ProductInfoRequest(msgspec.Struct):
    product_id: list[str]


class ProductSource(msgspec.Struct):
    sku: int
    source: str = ""
    shipment_type: str = ""


class ModelInfo(msgspec.Struct):
    model_id: int | None = None
    count: int | None = None


class ProductInfo(msgspec.Struct):
    id: int  # the product_id
    offer_id: str
    name: str = ""
    sku: int | None = None
    barcodes: list[str] = msgspec.field(default_factory=list)
    sources: list[ProductSource] = msgspec.field(default_factory=list)
    description_category_id: int | None = None
    type_id: int | None = None
    primary_image: list[str] = msgspec.field(default_factory=list)
    images: list[str] = msgspec.field(default_factory=list)
    model_info: ModelInfo | None = None
    is_archived: bool = False
    is_autoarchived: bool = False
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def skus(self) -> list[int]:
        """Every Ozon SKU of the product (the main one and those of its sources), without repeats."""
        found = [self.sku] if self.sku else []
        found += [s.sku for s in self.sources if s.sku]
        return list(dict.fromkeys(found))


class ProductInfoResponse(msgspec.Struct):
    items: list[ProductInfo]


# ---- /v4/product/info/stocks ------------------------------------------------------------------------------


class StocksFilter(msgspec.Struct):
    visibility: str = "ALL"


class StocksRequest(msgspec.Struct):
    cursor: str
    limit: int
    filter: StocksFilter = msgspec.field(default_factory=StocksFilter)


class ProductStock(msgspec.Struct):
    type: str  # fbo, fbs, rfbs, fbp
    present: int
    reserved: int
    sku: int | None = None
    shipment_type: str = ""
    warehouse_ids: list[int | str] = msgspec.field(default_factory=list)


class ProductStocks(msgspec.Struct):
    product_id: int
    offer_id: str
    stocks: list[ProductStock] = msgspec.field(default_factory=list)


class StocksResponse(msgspec.Struct):
    items: list[ProductStocks]
    cursor: str = ""
    total: int = 0


# ---- /v2/product/info/stocks-by-warehouse/fbs, /v1/product/info/stocks-by-warehouse/fbo -------------------


class WarehouseStocksRequest(msgspec.Struct):
    cursor: str
    limit: int


class FbsWarehouseStock(msgspec.Struct):
    sku: int
    product_id: int
    warehouse_id: int
    present: int
    reserved: int
    offer_id: str = ""
    warehouse_name: str = ""
    free_stock: int | None = None


class FbsStocksResponse(msgspec.Struct):
    products: list[FbsWarehouseStock]
    cursor: str = ""
    has_next: bool = False


class FboWarehouseStock(msgspec.Struct):
    sku: int
    product_id: int
    warehouse_id: int
    present: int
    reserved: int
    offer_id: str = ""


class FboStocksResponse(msgspec.Struct):
    products: list[FboWarehouseStock]
    cursor: str = ""
    has_next: bool = False


# ---- /v2/warehouse/list -----------------------------------------------------------------------------------


class WarehouseListRequest(msgspec.Struct):
    cursor: str
    limit: int


class Warehouse(msgspec.Struct):
    warehouse_id: int
    name: str
    status: str = ""
    warehouse_type: str = ""
    is_rfbs: bool = False
    is_express: bool = False
    is_kgt: bool = False


class WarehouseListResponse(msgspec.Struct):
    warehouses: list[Warehouse]
    cursor: str = ""
    has_next: bool = False


# ---- /v1/analytics/stocks ---------------------------------------------------------------------------------


class AnalyticsStocksRequest(msgspec.Struct):
    skus: list[str]


class AnalyticsStock(msgspec.Struct):
    """FBO stock per SKU × Ozon warehouse/cluster, with Ozon's days of cover (``idc``); absent = None."""

    sku: int
    warehouse_id: int | None = None
    warehouse_name: str = ""
    cluster_id: int | None = None
    cluster_name: str = ""
    offer_id: str = ""
    name: str = ""
    available_stock_count: int | None = None
    valid_stock_count: int | None = None
    transit_stock_count: int | None = None
    requested_stock_count: int | None = None
    return_from_customer_stock_count: int | None = None
    return_to_seller_stock_count: int | None = None
    other_stock_count: int | None = None
    ads: float | None = None
    ads_cluster: float | None = None
    idc: float | None = None
    idc_cluster: float | None = None
    days_without_sales: int | None = None
    turnover_grade: str = ""


class AnalyticsStocksResponse(msgspec.Struct):
    items: list[AnalyticsStock]


# ---- /v2/posting/fbo/list, /v3/posting/fbs/list ---------------------------------------------------------


class PostingFilter(msgspec.Struct, omit_defaults=True):
    since: str
    to: str
    status: str = ""


class PostingWith(msgspec.Struct):
    analytics_data: bool = True
    financial_data: bool = False


class PostingListRequest(msgspec.Struct):
    filter: PostingFilter
    limit: int
    offset: int
    dir: str = "ASC"
    with_: PostingWith = msgspec.field(default_factory=PostingWith, name="with")


class PostingProduct(msgspec.Struct):
    sku: int
    quantity: int
    offer_id: str = ""
    name: str = ""
    price: str = ""  # a decimal string, e.g. "1390.000000"
    currency_code: str = ""


class FboAnalytics(msgspec.Struct):
    warehouse_id: int | None = None
    warehouse_name: str = ""
    region: str = ""
    city: str = ""
    delivery_type: str = ""


class FboPosting(msgspec.Struct):
    """One FBO posting (shipped from an Ozon warehouse); ``created_at`` is when the order was placed."""

    posting_number: str
    status: str
    products: list[PostingProduct]
    order_id: int | None = None
    order_number: str = ""
    cancel_reason_id: int | None = None
    created_at: str | None = None
    in_process_at: str | None = None
    analytics_data: FboAnalytics | None = None

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


class FboPostingListResponse(msgspec.Struct):
    result: list[FboPosting]


class DeliveryMethod(msgspec.Struct):
    warehouse_id: int | None = None
    warehouse: str = ""
    id: int | None = None
    name: str = ""


class Cancellation(msgspec.Struct):
    cancel_reason_id: int | None = None
    cancel_reason: str = ""
    cancellation_type: str = ""
    cancellation_initiator: str = ""
    cancelled_after_ship: bool = False


class FbsPosting(msgspec.Struct):
    """One FBS/rFBS posting (shipped from the seller's warehouse named in ``delivery_method``)."""

    posting_number: str
    status: str
    products: list[PostingProduct]
    order_id: int | None = None
    order_number: str = ""
    substatus: str = ""
    in_process_at: str | None = None
    shipment_date: str | None = None
    delivering_date: str | None = None
    delivery_method: DeliveryMethod | None = None
    cancellation: Cancellation | None = None

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


class FbsPostingListResult(msgspec.Struct):
    postings: list[FbsPosting]
    has_next: bool = False


class FbsPostingListResponse(msgspec.Struct):
    result: FbsPostingListResult
