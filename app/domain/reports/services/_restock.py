"""Restock recommendations per product × warehouse: velocity over 7 / 14 / 30 days (order lines, else stock
decreases with restocks excluded), days of cover, and the units to ship to reach the target cover (lead time +
safety days: the organization's, or the product's own), with every input of the formula in the answer.

Where a marketplace reports its own warehouses' stock as one aggregate (WB since 15.08.2026: "Склад WB"),
its order lines still name the real warehouse. Those orders are counted at the aggregate the product's stock
is held in — a sum of the aggregate's parts, never a split — so the aggregate gets a velocity; the row says so.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.reports import tables
from app.domain.reports.repositories import ProductScope, ReportRepository, SettingsRepository
from app.domain.reports.schemas import (
    FORMULA,
    RESTOCK_FORMULA,
    VELOCITY_FORMULA,
    RestockMethod,
    RestockReport,
    RestockRow,
    RestockTargets,
)
from app.domain.reports.services._cover import WINDOWS, CoverService, describe_source, window_for
from app.domain.reports.services._files import MEDIA_TYPES, FileFormat, ReportFile, Separator, filename, stream_table
from app.domain.reports.services._settings import OrgReportSettings, org_settings
from app.integrations.warehouses import AGGREGATED_FBO_WAREHOUSE_IDS
from app.lib.clock import utcnow
from app.lib.pagination import paginate
from app.lib.tabular import Sheet

FILE_PAGE = 500
FOLDED_NOTE = "includes orders shipped from the marketplace's warehouses it reports stock for only in this aggregate"


@dataclass(frozen=True, slots=True)
class RestockQuery:
    window: int = 30
    include_cancelled: bool = False
    connection_id: uuid.UUID | None = None
    marketplace: str | None = None
    warehouse_ids: tuple[uuid.UUID, ...] = ()
    brand: str | None = None
    subject: str | None = None
    search: str | None = None
    only_to_ship: bool = False

    def scope(self) -> ProductScope:
        return ProductScope(
            connection_id=self.connection_id,
            marketplace=self.marketplace,
            brand=self.brand,
            subject=self.subject,
            search=self.search,
            warehouse_ids=self.warehouse_ids,
            since=window_for(30).start,
        )


class RestockService:
    def __init__(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        *,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.sessionmaker = sessionmaker

    async def report(self, query: RestockQuery, cursor: str | None, limit: int) -> RestockReport:
        org = await org_settings(self.session, self.tenant_id)
        reports = ReportRepository(self.session, self.tenant_id)
        scope = query.scope()
        page = await paginate(
            lambda after, n: reports.products_page(after=after[0] if after else None, limit=n, scope=scope),
            cursor=cursor,
            limit=limit,
            key=lambda product: (product.id,),
            types=(uuid.UUID,),
        )
        rows, orders, decreases = await _rows(self.session, self.tenant_id, query, org, page.items, None)
        return RestockReport(
            method=_method(query, org, orders, decreases, bool(page.items)), rows=rows, next_cursor=page.next_cursor
        )

    async def file(self, query: RestockQuery, fmt: FileFormat, lang: str | None, separator: Separator) -> ReportFile:
        if self.sessionmaker is None:
            raise RuntimeError("a report file needs a sessionmaker")
        org = await org_settings(self.session, self.tenant_id)
        language = org.language(lang)
        t = tables.labels(language)

        async def build(session: AsyncSession) -> Sheet:
            reports = ReportRepository(session, self.tenant_id)
            with_orders = await CoverService(session, self.tenant_id).with_orders(
                list((await reports.connection_names()).keys())
            )
            scope = query.scope()

            async def rows() -> AsyncIterator[list[Any]]:
                after: uuid.UUID | None = None
                while True:
                    products = await reports.products_page(after=after, limit=FILE_PAGE, scope=scope)
                    page, _, _ = await _rows(session, self.tenant_id, query, org, products, with_orders)
                    for row in page:
                        yield tables.restock_values(row, language)
                    if len(products) < FILE_PAGE:
                        return
                    after = products[-1].id

            return Sheet(
                t["restock_sheet"], tables.restock_columns(language, query.window), rows(), freeze_columns=4,
                totals_label=t["total"],
            )  # fmt: skip

        chunks = stream_table(self.sessionmaker, self.tenant_id, fmt, separator, build)
        return ReportFile(filename("restock", fmt, utcnow()), MEDIA_TYPES[fmt], chunks)


def _method(query: RestockQuery, org: OrgReportSettings, orders: bool, decreases: bool, any_: bool) -> RestockMethod:
    source, detail = describe_source(orders, decreases, any_)
    return RestockMethod(
        formula=RESTOCK_FORMULA,
        velocity_formula=VELOCITY_FORMULA,
        days_of_cover_formula=FORMULA,
        window_days=query.window,
        windows=[window_for(d) for d in WINDOWS],
        source=source,
        source_detail=detail
        + ("; cancelled lines counted" if query.include_cancelled else "; cancelled lines excluded"),
        counts_cancelled=query.include_cancelled,
        organization=RestockTargets(lead_time_days=org.lead_time_days, safety_days=org.safety_days),
    )


async def _rows(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: RestockQuery,
    org: OrgReportSettings,
    products: Sequence[Any],
    with_orders: set[uuid.UUID] | None,
) -> tuple[list[RestockRow], bool, bool]:
    """The page's rows, and whether order lines / stock decreases were the velocity source of any."""
    if not products:
        return [], False, False
    reports = ReportRepository(session, tenant_id)
    cover = CoverService(session, tenant_id)
    pids = [p.id for p in products]
    if with_orders is None:
        with_orders = await cover.with_orders([p.connection_id for p in products])
    counts: dict[int, dict[tuple[uuid.UUID, uuid.UUID], int]] = {}
    for days in WINDOWS:
        _m, flows = await cover.method_and_flows(products, days, query.include_cancelled, with_orders=with_orders)
        per_place: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
        for (pid, _vid, wid), n in flows.items():
            if wid is not None:
                per_place[(pid, wid)] += n
        counts[days] = per_place
    available: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    for c in await reports.stock_cells(pids):
        available[(c.product_id, c.warehouse_id)] += c.quantity
    places = set(available) | {k for per in counts.values() for k in per}
    only = set(query.warehouse_ids)
    warehouses = {w.id: w for w in await reports.warehouses({w for _, w in places})}
    folded = _fold(places, available, counts, warehouses)
    overrides = await SettingsRepository(session, tenant_id).overrides(pids)
    rows: list[RestockRow] = []
    for p in products:
        lead, safety = overrides.get(p.id, (None, None))
        source = "product" if lead is not None or safety is not None else "organization"
        lead = org.lead_time_days if lead is None else lead
        safety = org.safety_days if safety is None else safety
        mine = sorted(
            (w for (pid, w) in places if pid == p.id and (pid, w) not in folded and (not only or w in only)),
            key=lambda w: (warehouses[w].kind.value, warehouses[w].name, str(w)),
        )
        for wid in mine:
            row = _row(p, warehouses[wid], available.get((p.id, wid)) if (p.id, wid) in available else None,
                       {d: counts[d].get((p.id, wid), 0) for d in WINDOWS}, query.window, lead, safety, source,
                       p.connection_id in with_orders, (p.id, wid) in folded.values())  # fmt: skip
            if not query.only_to_ship or (row.units_to_ship or 0) > 0:
                rows.append(row)
    orders = any(p.connection_id in with_orders for p in products)
    return rows, orders, any(p.connection_id not in with_orders for p in products)


def _fold(
    places: set[tuple[uuid.UUID, uuid.UUID]],
    available: dict[tuple[uuid.UUID, uuid.UUID], int],
    counts: dict[int, dict[tuple[uuid.UUID, uuid.UUID], int]],
    warehouses: dict[uuid.UUID, Any],
) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, uuid.UUID]]:
    """Move orders of stock-less marketplace warehouses into the aggregate holding the product's stock
    (same connection); returns {folded place: the aggregate it went into}."""
    aggregates = {
        (pid, w): warehouses[w].connection_id
        for (pid, w) in available
        if warehouses[w].external_id in AGGREGATED_FBO_WAREHOUSE_IDS and warehouses[w].kind.value == "fbo"
    }
    if not aggregates:
        return {}
    by_product = {(pid, conn): (pid, w) for (pid, w), conn in aggregates.items()}
    folded: dict[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, uuid.UUID]] = {}
    for pid, w in places:
        info = warehouses[w]
        target = by_product.get((pid, info.connection_id))
        if target is None or (pid, w) in available or info.kind.value != "fbo" or target == (pid, w):
            continue
        folded[(pid, w)] = target
        for per in counts.values():
            n = per.pop((pid, w), 0)
            if n:
                per[target] = per.get(target, 0) + n
    return folded


def _row(
    p: Any,
    w: Any,
    available: int | None,
    orders: dict[int, int],
    window: int,
    lead: int,
    safety: int,
    settings_source: str,
    from_orders: bool,
    aggregate: bool,
) -> RestockRow:
    velocity = {d: round(orders[d] / d, 4) for d in WINDOWS}
    v = velocity[window]
    target_days = lead + safety
    target_units = math.ceil(orders[window] * target_days / window - 1e-9)
    notes = []
    if available is None:
        notes.append("no stock row at this warehouse (orders only): nothing to recommend")
        to_ship: int | None = None
    else:
        to_ship = max(0, target_units - available)
    if aggregate:
        notes.append(FOLDED_NOTE)
    if v == 0:
        notes.append(f"no sales in {window} days: cover is unbounded")
    return RestockRow(
        product_id=p.id,
        marketplace=p.marketplace.value,
        external_id=p.external_id,
        vendor_code=p.vendor_code,
        title=p.title,
        brand=p.brand,
        subject=p.subject,
        warehouse_id=w.id,
        warehouse_name=w.name,
        warehouse_kind=w.kind.value,
        available=available,
        orders_7=orders[7],
        orders_14=orders[14],
        orders_30=orders[30],
        velocity_7=velocity[7],
        velocity_14=velocity[14],
        velocity_30=velocity[30],
        velocity_source="orders" if from_orders else "stock_decreases",
        velocity_per_day=v,
        days_of_cover=round(available * window / orders[window], 1) if available is not None and v else None,
        lead_time_days=lead,
        safety_days=safety,
        target_days=target_days,
        settings_source=settings_source,  # type: ignore[arg-type]
        target_units=target_units,
        units_to_ship=to_ship,
        note="; ".join(notes) or None,
    )
