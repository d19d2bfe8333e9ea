"""Wildberries request and response bodies, with field names exactly as the official specs spell them.

Casing differs per host and is kept as is: Content says ``nmID`` / ``chrtID``; Analytics, Marketplace and
Statistics say ``nmId`` / ``chrtId``. Only the fields the product reads are required; unknown fields are
ignored, so WB adding a field never breaks a sync.
"""

from __future__ import annotations

import msgspec

# ---- Content: POST /content/v2/get/cards/list ------------------------------------------------------------


class Cursor(msgspec.Struct, omit_defaults=True):
    """The cards/list cursor: resume after (``updatedAt``, ``nmID``); ``total`` = cards in that page."""

    updatedAt: str | None = None
    nmID: int | None = None
    total: int = 0


class CardsSort(msgspec.Struct):
    ascending: bool = True


class CardsFilter(msgspec.Struct):
    withPhoto: int = -1


class CardsCursor(msgspec.Struct, omit_defaults=True):
    limit: int  # no default: omit_defaults would drop it and WB would page by its default of 10
    updatedAt: str | None = None
    nmID: int | None = None


class CardsSettings(msgspec.Struct):
    cursor: CardsCursor
    sort: CardsSort = msgspec.field(default_factory=CardsSort)
    filter: CardsFilter = msgspec.field(default_factory=CardsFilter)


class CardsListRequest(msgspec.Struct):
    settings: CardsSettings


class Photo(msgspec.Struct):
    big: str = ""
    c246x328: str = ""
    c516x688: str = ""
    square: str = ""
    tm: str = ""


class Size(msgspec.Struct):
    chrtID: int
    techSize: str = ""
    wbSize: str = ""
    skus: list[str] = msgspec.field(default_factory=list)  # the barcodes


class Card(msgspec.Struct):
    nmID: int
    imtID: int | None = None
    nmUUID: str | None = None
    vendorCode: str = ""
    brand: str = ""
    title: str = ""
    subjectID: int | None = None
    subjectName: str = ""
    photos: list[Photo] = msgspec.field(default_factory=list)
    sizes: list[Size] = msgspec.field(default_factory=list)
    createdAt: str | None = None
    updatedAt: str | None = None


class CardsListResponse(msgspec.Struct):
    cards: list[Card]
    cursor: Cursor


# ---- Analytics: POST /api/analytics/v1/stocks-report/{wb,seller}-warehouses ------------------------------


class StocksReportRequest(msgspec.Struct, omit_defaults=True):
    limit: int
    offset: int = 0
    nmIds: list[int] = msgspec.field(default_factory=list)
    chrtIds: list[int] = msgspec.field(default_factory=list)


class StockRow(msgspec.Struct):
    """One size on one warehouse; the in-way fields exist on WB warehouses only (None = not reported)."""

    nmId: int
    chrtId: int
    warehouseId: int
    warehouseName: str
    regionName: str
    quantity: int
    inWayToClient: int | None = None
    inWayFromClient: int | None = None


class StockItems(msgspec.Struct):
    items: list[StockRow]


class StocksReportResponse(msgspec.Struct):
    data: StockItems


# ---- Marketplace: GET /api/v3/warehouses, POST /api/v3/stocks/{warehouseId} -------------------------------


class SellerWarehouse(msgspec.Struct):
    id: int
    name: str
    officeId: int | None = None
    cargoType: int | None = None  # 1 small, 2 oversize, 3 large (KGT+)
    deliveryType: int | None = None  # 1 FBS, 2 DBS, 3 DBW, 5 click & collect, 6 express DBS
    isDeleting: bool = False
    isProcessing: bool = False


class StocksRequest(msgspec.Struct):
    chrtIds: list[int]


class StockAmount(msgspec.Struct):
    chrtId: int
    amount: int


class StocksResponse(msgspec.Struct):
    stocks: list[StockAmount]


# ---- Statistics: GET /api/v1/supplier/orders ---------------------------------------------------------------

NO_DATE = "0001-01-01T00:00:00"


class OrderLine(msgspec.Struct):
    """One ordered unit (``srid``); dates are Moscow time without an offset, as WB prints them."""

    date: str
    lastChangeDate: str
    nmId: int
    srid: str
    warehouseName: str = ""
    warehouseType: str = ""
    countryName: str = ""
    oblastOkrugName: str = ""
    regionName: str = ""
    supplierArticle: str = ""
    barcode: str = ""
    category: str = ""
    subject: str = ""
    brand: str = ""
    techSize: str = ""
    incomeID: int = 0
    isSupply: bool = False
    isRealization: bool = False
    totalPrice: float = 0.0
    discountPercent: int = 0
    spp: float = 0.0
    finishedPrice: float = 0.0
    priceWithDisc: float = 0.0
    isCancel: bool = False
    cancelDate: str = NO_DATE
    sticker: str = ""
    gNumber: str = ""  # the buyer's basket: several lines share it, never use it as the order id


# ---- Any host: GET /ping -------------------------------------------------------------------------------------


class Ping(msgspec.Struct):
    Status: str
    TS: str = ""
