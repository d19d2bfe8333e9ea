"""A simulated seller's catalogue, warehouses and stock, generated deterministically from a seed.

Everything is columnar (lists and `array`s indexed by product / variant / warehouse number) so that a
100 000-product seller is built in about a second and rows are rendered only when a page asks for them.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Literal

from app.sandbox._names import (
    BRANDS,
    OZON_FBO_WAREHOUSES,
    OZON_FBS_WAREHOUSES,
    SUBJECTS,
    WB_SELLER_WAREHOUSES,
    numbered,
)

Marketplace = Literal["wildberries", "ozon"]
WarehouseKind = Literal["fbw", "fbo", "fbs"]

WB_FBW_ID = -999999
WB_FBW_NAME = "Склад WB"
NO_ROW = -1


@dataclass(slots=True)
class Warehouse:
    index: int
    id: int
    name: str
    kind: WarehouseKind
    region: str
    office_id: int = 0
    cluster_id: int = 0
    cluster_name: str = ""


class Catalog:
    """Products, their variants (WB sizes / Ozon SKUs) and per-warehouse stock rows."""

    def __init__(self, marketplace: Marketplace) -> None:
        self.marketplace: Marketplace = marketplace
        self.prefix = ""
        # products
        self.product_ids: list[int] = []
        self.group_ids: list[int] = []  # WB imtID / Ozon model_id
        self.subject = bytearray()
        self.brand = bytearray()
        self.descriptor = bytearray()
        self.price = array("i")
        self.created_us: list[int] = []
        self.updated_us: list[int] = []
        self.var_start = array("q", [0])
        # variants
        self.variant_ids: list[int] = []
        self.variant_product = array("i")
        self.variant_size = bytearray()
        self.daily_rate: list[float] = []
        # warehouses and stock; quantity NO_ROW means "no row for this variant in this warehouse"
        self.warehouses: list[Warehouse] = []
        self.quantity: list[array[int]] = []
        self.pending: list[array[int] | None] = []  # WB FBW inWayToClient / Ozon reserved
        self.returning: list[array[int] | None] = []  # WB FBW inWayFromClient
        self.rows_version = 0
        self.archived: set[int] = set()  # Ozon products archived (or deleted) by the seller: listed no more
        self._row_cache: dict[str, array[int]] = {}
        self._row_cache_version = 0
        self._offer_index: dict[str, int] | None = None
        self._update_order: list[int] | None = None

    # ---- sizes -------------------------------------------------------------------------------------------

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def n_variants(self) -> int:
        return len(self.variant_ids)

    def variants_of(self, product: int) -> range:
        return range(self.var_start[product], self.var_start[product + 1])

    # ---- lookups (ids are generated ascending, so bisect finds them without a dict) -----------------------

    def product_index(self, product_id: int) -> int | None:
        i = bisect_left(self.product_ids, product_id)
        return i if i < len(self.product_ids) and self.product_ids[i] == product_id else None

    def variant_index(self, variant_id: int) -> int | None:
        i = bisect_left(self.variant_ids, variant_id)
        return i if i < len(self.variant_ids) and self.variant_ids[i] == variant_id else None

    def warehouse_by_id(self, warehouse_id: int) -> Warehouse | None:
        for wh in self.warehouses:
            if wh.id == warehouse_id:
                return wh
        return None

    def offer_id(self, product: int) -> str:
        return f"{self.prefix}-{product + 1:06d}"

    def offer_index(self, offer_id: str) -> int | None:
        if self._offer_index is None:
            self._offer_index = {self.offer_id(i): i for i in range(self.n_products)}
        return self._offer_index.get(offer_id)

    # ---- products ordered by (updatedAt, id): the WB content cursor -----------------------------------------

    def update_key(self, product: int) -> tuple[int, int]:
        return self.updated_us[product], self.product_ids[product]

    def update_order(self) -> list[int]:
        if self._update_order is None:
            self._update_order = sorted(range(self.n_products), key=self.update_key)
        return self._update_order

    def touch(self, product: int, when_us: int) -> int:
        """Mark a product as edited at `when_us` (never earlier than its last edit); returns the new stamp."""
        order = self.update_order()
        del order[bisect_left(order, self.update_key(product), key=self.update_key)]
        self.updated_us[product] = max(when_us, self.updated_us[product] + 1)
        insort(order, product, key=self.update_key)
        return self.updated_us[product]

    # ---- rows ----------------------------------------------------------------------------------------------

    def warehouses_of_kind(self, *kinds: WarehouseKind) -> list[Warehouse]:
        return [wh for wh in self.warehouses if wh.kind in kinds]

    def rows(self, kind: str) -> array[int]:
        """Packed keys `variant * W + warehouse` of every row of warehouses of one kind, ascending."""
        if self._row_cache_version != self.rows_version:
            self._row_cache.clear()
            self._row_cache_version = self.rows_version
        cached = self._row_cache.get(kind)
        if cached is None:
            width = len(self.warehouses)
            members = [wh.index for wh in self.warehouses if wh.kind == kind]
            qty = self.quantity
            cached = array(
                "q",
                (v * width + w for v in range(self.n_variants) for w in members if qty[w][v] != NO_ROW),
            )
            self._row_cache[kind] = cached
        return cached

    def archive(self, product: int) -> None:
        """The seller archives (or deletes) a product: it leaves the product list and every stock report."""
        self.archived.add(product)
        for v in self.variants_of(product):
            for column in self.quantity:
                column[v] = NO_ROW
        self.rows_version += 1

    def set_quantity(self, variant: int, warehouse: int, value: int) -> bool:
        """Set a row's available quantity; returns True when the row did not exist before."""
        created = self.quantity[warehouse][variant] == NO_ROW
        self.quantity[warehouse][variant] = value
        if created:
            self.rows_version += 1
        return created


def build_catalog(rng: random.Random, marketplace: Marketplace, products: int, seller_warehouses: int) -> Catalog:
    """Generate a seller's catalogue and stock; the same arguments always give the same result."""
    cat = Catalog(marketplace)
    brands = rng.sample(range(len(BRANDS)), k=1 + rng.randrange(4))
    cat.prefix = "".join(ch for ch in BRANDS[brands[0]].upper() if ch.isalpha())[:3] + str(rng.randrange(10, 99))
    _build_warehouses(cat, rng, seller_warehouses)
    if marketplace == "wildberries":
        _build_wb_products(cat, rng, products, brands)
    else:
        _build_ozon_products(cat, rng, products, brands)
    _build_stock(cat, rng)
    return cat


def _build_warehouses(cat: Catalog, rng: random.Random, count: int) -> None:
    if cat.marketplace == "wildberries":
        cat.warehouses.append(Warehouse(0, WB_FBW_ID, WB_FBW_NAME, "fbw", WB_FBW_NAME))
        next_id = 1_000_000 + rng.randrange(900_000)
        for i in range(count):
            _, region, office = WB_SELLER_WAREHOUSES[i % len(WB_SELLER_WAREHOUSES)]
            name = numbered(tuple(n for n, _, _ in WB_SELLER_WAREHOUSES), i)
            cat.warehouses.append(Warehouse(i + 1, next_id, name, "fbs", region, office_id=office))
            next_id += 1 + rng.randrange(5000)
        return
    fbo = 3 if count < 3 else len(OZON_FBO_WAREHOUSES)
    for i, (wid, name, cluster, cluster_name) in enumerate(OZON_FBO_WAREHOUSES[:fbo]):
        cat.warehouses.append(
            Warehouse(i, wid, name, "fbo", cluster_name, cluster_id=cluster, cluster_name=cluster_name)
        )
    next_id = 23_000_000_000_000 + rng.randrange(10**12)
    for i in range(count):
        name = numbered(OZON_FBS_WAREHOUSES, i)
        cat.warehouses.append(Warehouse(fbo + i, next_id, name, "fbs", ""))
        next_id += 1_000 * (1 + rng.randrange(10**6))


def _product_common(cat: Catalog, rng: random.Random, brands: list[int], now_us: int) -> float:
    """Append one product's descriptive columns; returns its popularity (orders/day across variants)."""
    cat.subject.append(rng.randrange(len(SUBJECTS)))
    cat.brand.append(brands[rng.randrange(len(brands))])
    cat.descriptor.append(rng.randrange(12))
    cat.price.append(290 + 10 * rng.randrange(500))
    created = now_us - rng.randrange(400 * 86_400_000_000)
    cat.created_us.append(created)
    cat.updated_us.append(min(now_us, created + rng.randrange(90 * 86_400_000_000)))
    e = rng.expovariate(1.0)
    return 0.15 * e * e


# Fixed reference instant for generated catalogue dates; the simulated clock starts later than all of them.
CATALOG_EPOCH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def _build_wb_products(cat: Catalog, rng: random.Random, products: int, brands: list[int]) -> None:
    nm = 100_000_000 + rng.randrange(300_000_000)
    imt = 80_000_000 + rng.randrange(200_000_000)
    chrt = 100_000_000 + rng.randrange(700_000_000)
    rate_append = cat.daily_rate.append
    for p in range(products):
        popularity = _product_common(cat, rng, brands, CATALOG_EPOCH_US)
        cat.product_ids.append(nm)
        nm += 1 + rng.randrange(40)
        if p == 0 or rng.random() < 0.7:  # ~30 % of cards are merged with the previous one
            imt += 1 + rng.randrange(40)
        cat.group_ids.append(imt)
        sizes = SUBJECTS[cat.subject[p]].sizes
        k = 1 if len(sizes) == 1 else 1 + rng.randrange(min(4, len(sizes)))
        first = rng.randrange(len(sizes) - k + 1)
        for s in range(first, first + k):
            cat.variant_ids.append(chrt)
            chrt += 1 + rng.randrange(20)
            cat.variant_product.append(p)
            cat.variant_size.append(s)
            rate_append(popularity / k)
        cat.var_start.append(len(cat.variant_ids))


def _build_ozon_products(cat: Catalog, rng: random.Random, products: int, brands: list[int]) -> None:
    # Since Ozon unified FBO/FBS SKUs one product has exactly one SKU; sizes are separate products that
    # share a model (`model_info.model_id`).
    pid = 200_000_000 + rng.randrange(600_000_000)
    sku = 1_000_000_000 + rng.randrange(900_000_000)
    model = 100_000_000 + rng.randrange(100_000_000)
    left_in_model = 0
    size = 0
    for p in range(products):
        popularity = _product_common(cat, rng, brands, CATALOG_EPOCH_US)
        sizes = SUBJECTS[cat.subject[p]].sizes
        if left_in_model == 0 or size + 1 >= len(sizes):
            model += 1 + rng.randrange(1000)
            left_in_model = 1 if len(sizes) == 1 else 1 + rng.randrange(min(4, len(sizes)))
            size = rng.randrange(len(sizes) - left_in_model + 1)
        else:
            size += 1
            cat.subject[p] = cat.subject[p - 1]
            cat.brand[p] = cat.brand[p - 1]
            cat.descriptor[p] = cat.descriptor[p - 1]
        left_in_model -= 1
        cat.product_ids.append(pid)
        pid += 1 + rng.randrange(60)
        cat.group_ids.append(model)
        cat.variant_ids.append(sku)
        sku += 1 + rng.randrange(60)
        cat.variant_product.append(p)
        cat.variant_size.append(size)
        cat.daily_rate.append(popularity)
        cat.var_start.append(p + 1)


def _build_stock(cat: Catalog, rng: random.Random) -> None:
    n = cat.n_variants
    wbs = cat.marketplace == "wildberries"
    for wh in cat.warehouses:
        cat.quantity.append(array("i", [NO_ROW]) * n)
        tracked = not wbs or wh.kind == "fbw"  # in-transit is known for WB FBW rows and all Ozon rows
        cat.pending.append(array("i", [0]) * n if tracked else None)
        cat.returning.append(array("i", [0]) * n if wbs and wh.kind == "fbw" else None)
    market = [wh.index for wh in cat.warehouses if wh.kind in ("fbw", "fbo")]
    seller = [wh.index for wh in cat.warehouses if wh.kind == "fbs"]
    random_ = rng.random
    rate = cat.daily_rate
    qty = cat.quantity
    for v in range(n):
        lam = rate[v]
        has_market = not seller or random_() < 0.8
        if has_market:
            count = 1 if len(market) == 1 else 1 + int(random_() * min(3, len(market)))
            start = int(random_() * len(market))
            for j in range(count):
                w = market[(start + j) % len(market)]
                qty[w][v] = 0 if random_() < 0.1 else int(lam * random_() * 60) + int(random_() * 6)
        if seller and (not has_market or random_() < 0.45):
            count = 1 + (random_() < 0.25) + (random_() < 0.1)
            start = int(random_() * len(seller))
            for j in range(min(count, len(seller))):
                w = seller[(start + j) % len(seller)]
                qty[w][v] = 0 if random_() < 0.2 else int(lam * random_() * 30) + int(random_() * 4)
