"""Days of cover for one product, and the stock report: as JSON pages, as a streamed CSV/XLSX file, as a grid.

A report row is a product (or, with ``per=size``, a size) with its totals, then a cell per warehouse where it
holds a stock row or had orders. JSON pages list the warehouses their rows mention; a file's columns are every
warehouse of the whole report, read first in the file's own snapshot (``_files.py``), so the header can be
written before the first row and the rows are read page by page behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.alerts.services import tenant_low_units
from app.domain.reports import tables
from app.domain.reports.repositories import FilePageSpec, ProductScope, ReportRepository
from app.domain.reports.schemas import (
    DaysOfCover,
    ReportCell,
    ReportRow,
    ReportWarehouse,
    StockReport,
    StockStatus,
    VariantCover,
    WarehouseCover,
    Window,
)
from app.domain.reports.services._cover import CoverService, Flows, cover, decrease_range, window_for
from app.domain.reports.services._files import (
    MEDIA_TYPES,
    FileFormat,
    ReportFile,
    Separator,
    filename,
    stream_table,
)
from app.domain.reports.services._settings import org_settings
from app.lib.clock import utcnow
from app.lib.errors import NotFoundError
from app.lib.pagination import paginate
from app.lib.tabular import Grid, Marked, Sheet, to_grid

FILE_PAGE = 2000  # products per statement of a file (a page's rows are all that is held)
YIELD_EVERY = 250  # rows of a file between two turns of the event loop


@dataclass(frozen=True, slots=True)
class StockReportQuery:
    """Which products the stock report covers and how its figures are computed."""

    window: int = 30
    include_cancelled: bool = False
    connection_id: uuid.UUID | None = None
    marketplace: str | None = None
    warehouse_ids: tuple[uuid.UUID, ...] = ()
    brand: str | None = None
    subject: str | None = None
    search: str | None = None
    stock_status: str | None = None  # in_stock | low | out | low_or_out
    per: str = "product"  # product | size


def status_of(stock: int | None, low_units: int) -> StockStatus | None:
    if stock is None:
        return None
    if stock <= 0:
        return "out"
    return "low" if stock < low_units else "in_stock"


@dataclass(slots=True)
class _Plan:
    """What every page of one report shares: the threshold, the window, the warehouses and their order."""

    query: StockReportQuery
    low_units: int
    window: Window
    scope: ProductScope
    with_orders: set[uuid.UUID] | None = None
    warehouses: dict[uuid.UUID, Any] = field(default_factory=dict)  # id → (id, name, kind, connection, ext)


class ReportService:
    def __init__(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        *,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        default_low_units: int = 5,
        file_page: int = FILE_PAGE,
    ) -> None:
        self.session = session
        self.file_page = file_page
        self.tenant_id = tenant_id
        self.sessionmaker = sessionmaker
        self.default_low_units = default_low_units
        self.reports = ReportRepository(session, tenant_id)
        self.cover = CoverService(session, tenant_id)

    async def days_of_cover(self, product_id: uuid.UUID, days: int, include_cancelled: bool) -> DaysOfCover:
        """A product's days of cover, and per variant and per warehouse, with the formula's inputs."""
        product = await self.reports.product_connection(product_id)
        if product is None:
            raise NotFoundError("No such product.")
        method, flows = await self.cover.method_and_flows([product], days, include_cancelled)
        cells = await self.reports.stock_cells([product_id])
        variants = await self.reports.variants(product_id)
        warehouses = await self.reports.connection_warehouses(product.connection_id)
        stock_by_v: dict[uuid.UUID, int] = defaultdict(int)
        stock_by_w: dict[uuid.UUID, int] = defaultdict(int)
        for c in cells:
            stock_by_v[c.variant_id] += c.quantity
            stock_by_w[c.warehouse_id] += c.quantity
        orders_by_v: dict[uuid.UUID | None, int] = defaultdict(int)
        orders_by_w: dict[uuid.UUID | None, int] = defaultdict(int)
        for (_, vid, wid), n in flows.items():
            orders_by_v[vid] += n
            orders_by_w[wid] += n
        relevant_w = {c.warehouse_id for c in cells} | {w for w in orders_by_w if w is not None}
        return DaysOfCover(
            product_id=product_id,
            method=method,
            product=cover(sum(c.quantity for c in cells), sum(flows.values()), days),
            variants=[
                VariantCover(
                    variant_id=v.id,
                    external_id=v.external_id,
                    size=v.size,
                    cover=cover(stock_by_v.get(v.id, 0), orders_by_v.get(v.id, 0), days),
                )
                for v in variants
            ],
            warehouses=[
                WarehouseCover(
                    warehouse_id=w.id,
                    name=w.name,
                    kind=w.kind.value,
                    cover=cover(stock_by_w.get(w.id) if w.id in stock_by_w else None, orders_by_w.get(w.id, 0), days),
                )
                for w in warehouses
                if w.id in relevant_w
            ],
        )

    # ---- JSON pages ---------------------------------------------------------------------------------------

    async def _plan(self, query: StockReportQuery, reports: ReportRepository, session: AsyncSession) -> _Plan:
        low = await tenant_low_units(session, self.tenant_id, self.default_low_units)
        window = window_for(query.window)
        scope = ProductScope(
            connection_id=query.connection_id,
            marketplace=query.marketplace,
            brand=query.brand,
            subject=query.subject,
            search=query.search,
            warehouse_ids=query.warehouse_ids,
            stock_status=query.stock_status,
            low_units=low,
            since=window.start,
        )
        return _Plan(query, low, window, scope)

    async def stock_report(self, query: StockReportQuery, cursor: str | None, limit: int) -> StockReport:
        """One page of the stock report: up to ``limit`` products (by id) after ``cursor``."""
        plan = await self._plan(query, self.reports, self.session)
        page = await paginate(
            lambda after, n: self.reports.products_page(after=after[0] if after else None, limit=n, scope=plan.scope),
            cursor=cursor,
            limit=limit,
            key=lambda product: (product.id,),
            types=(uuid.UUID,),
        )
        report = await self._page(plan, self.reports, self.cover, page.items)
        return msgspec.structs.replace(report, next_cursor=page.next_cursor)

    async def stock_report_pages(self, query: StockReportQuery, page_size: int = 500) -> AsyncIterator[StockReport]:
        """Every page of the stock report in order (each with the warehouses its rows mention)."""
        cursor: str | None = None
        while True:
            page = await self.stock_report(query, cursor, page_size)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def _page(
        self, plan: _Plan, reports: ReportRepository, cover_service: CoverService, products: Sequence[Any]
    ) -> StockReport:
        """The rows of these products: totals, then a block per warehouse holding stock or having orders.

        Totals are sums of exactly the cells of the row (rule 7); a warehouse without a stock row shows
        ``stock: null``, never 0 (rule 5). A warehouse filter keeps only those warehouses' cells, and the
        totals are theirs.
        """
        query, days = plan.query, plan.query.window
        method, flows = await cover_service.method_and_flows(
            products, days, query.include_cancelled, with_orders=plan.with_orders, window=plan.window
        )
        only = set(query.warehouse_ids)
        cells = [c for c in await reports.stock_cells([p.id for p in products]) if not only or c.warehouse_id in only]
        if only:
            flows = {k: n for k, n in flows.items() if k[2] in only}
        mentioned = {c.warehouse_id for c in cells} | {k[2] for k in flows if k[2] is not None}
        known = plan.warehouses or {w.id: w for w in await reports.warehouses(mentioned)}
        order = [w for w in known.values() if w.id in mentioned]
        variants: dict[uuid.UUID, list[Any]] = defaultdict(list)
        if query.per == "size":
            for v in await reports.variants_of([p.id for p in products]):
                variants[v.product_id].append(v)
        rows = _rows(products, cells, flows, order, variants, query.per, days, plan.low_units)
        return StockReport(
            method=method,
            warehouses=[
                ReportWarehouse(warehouse_id=w.id, name=w.name, kind=w.kind.value, connection_id=w.connection_id)
                for w in order
            ],
            rows=rows,
            per=query.per,  # type: ignore[arg-type]
            low_units=plan.low_units,
        )

    # ---- files --------------------------------------------------------------------------------------------

    async def stock_report_file(
        self, query: StockReportQuery, fmt: FileFormat, lang: str | None, separator: Separator = "comma"
    ) -> ReportFile:
        """The whole report as CSV or XLSX, streamed: read page by page in a snapshot of its own."""
        if self.sessionmaker is None:
            raise RuntimeError("a report file needs a sessionmaker (it outlives the request's session)")
        org = await org_settings(self.session, self.tenant_id)
        language = org.language(lang)
        now = utcnow()

        async def build(session: AsyncSession) -> Sheet:
            return await self._sheet(session, query, fmt, language, org.timezone, now)

        chunks = stream_table(self.sessionmaker, self.tenant_id, fmt, separator, build)
        return ReportFile(filename("stock-report", fmt, now), MEDIA_TYPES[fmt], chunks)

    async def stock_report_grid(self, query: StockReportQuery, lang: str | None) -> Grid:
        """The whole report materialised (one request writes it: the Google Sheets push)."""
        org = await org_settings(self.session, self.tenant_id)
        sheet = await self._sheet(self.session, query, "grid", org.language(lang), org.timezone, utcnow())
        try:
            return await to_grid(sheet)
        finally:  # (on an error half-way: the read-ahead statement stops before the session goes on)
            await sheet.rows.aclose()  # type: ignore[union-attr]

    async def _sheet(
        self, session: AsyncSession, query: StockReportQuery, fmt: str, lang: str, tz: str, now: datetime
    ) -> Sheet:
        reports = ReportRepository(session, self.tenant_id)
        cover_service = CoverService(session, self.tenant_id)
        plan = await self._plan(query, reports, session)
        connections = list((await reports.connection_names()).keys())
        plan.with_orders = await cover_service.with_orders(connections)
        ids = await reports.warehouse_ids(plan.scope, plan.window, query.include_cancelled)
        warehouses = await reports.warehouses(ids)
        plan.warehouses = {w.id: w for w in warehouses}
        groups = _group_labels(warehouses, await reports.connection_names())
        order = [w.id for w in warehouses]
        t = tables.labels(lang)
        title: tuple[str, ...] = ()
        if fmt == "xlsx":
            local = now.astimezone(ZoneInfo(tz))
            title = (
                t["stock_title"].format(
                    now=f"{local:%d.%m.%Y %H:%M}", tz=tz, days=query.window, end=f"{plan.window.end:%d.%m.%Y}"
                ),
            )

        start, end = decrease_range(plan.window)
        spec = FilePageSpec(
            limit=self.file_page,
            scope=plan.scope,
            columns=order,
            window=plan.window,
            include_cancelled=query.include_cancelled,
            with_orders=sorted(plan.with_orders),
            decreases_start=start,
            decreases_end=end,
            decreases=any(c not in plan.with_orders for c in connections),
            per_size=query.per == "size",
        )

        async def rows() -> AsyncIterator[list[Any]]:
            read = await reports.file_pages(spec)

            def fetch(after: uuid.UUID | None) -> asyncio.Task[list[Any]]:
                return asyncio.ensure_future(read(after))

            # The next page's statement runs in the database while this page's rows are written: the session
            # serves one statement at a time (the next is sent once this page's own reads are done).
            pending: asyncio.Task[list[Any]] | None = fetch(None)
            try:
                while pending is not None:
                    page = await pending
                    more = (len(page) if query.per != "size" else len({r[0] for r in page})) == self.file_page
                    # Per size this page's rows read the sizes first; per product the next page goes at once.
                    pending = fetch(page[-1][0]) if more and query.per != "size" else None
                    batch = await _file_rows(plan, reports, page, len(order))
                    if more and pending is None:
                        pending = fetch(page[-1][0])
                    for i, row in enumerate(batch):
                        if i % YIELD_EVERY == 0:
                            # Let the loop run: the next page's statement is sent, and its result read as it
                            # comes, while the writer turns these rows into bytes (which never awaits).
                            await asyncio.sleep(0)
                        yield row
                    del batch
            finally:
                if pending is not None and not pending.done():
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending

        return Sheet(
            t["stock_sheet"],
            tables.stock_columns(lang, query.per, query.window, groups),
            rows(),
            title=title,
            freeze_columns=tables.STOCK_FROZEN_COLUMNS,
            totals_label=t["total"],
        )


async def _file_rows(plan: _Plan, reports: ReportRepository, page: Sequence[Any], width: int) -> list[list[Any]]:
    """A file's rows for one ``file_page`` (``width`` warehouse columns), with no ``ReportRow`` in between: the
    values ``tables.stock_values`` gives for the JSON report's rows — totals and cells as ``_rows`` has them
    (rules 5 and 7), worked out by the statement; here only the marks and the days of cover (the file tests
    hold the two paths equal, across page boundaries and with every filter)."""
    days, low, blank, labels = plan.query.window, plan.low_units, [None] * (3 * width), tables.MARKETPLACES
    out: list[list[Any]] = []
    if plan.query.per != "size":
        for _id, _c, mp, external_id, vendor_code, brand, subject, title, _v, *figures in page:
            values = [labels.get(mp, mp), brand, subject, vendor_code, external_id, title]
            _fill(values, figures, blank, days, low)
            out.append(values)
        return out
    # A row per size, by its external id; then one for order lines not tied to a size (or a product without
    # sizes). A product without figures comes as one row with NULL figures: it is not a size.
    sizes: dict[uuid.UUID, list[Any]] = {}
    for v in await reports.variants_of(list(dict.fromkeys(r[0] for r in page))):
        sizes.setdefault(v.product_id, []).append(v)
    by_key = {(r[0], r[8]): r[9:] for r in page if r[12] is not None}
    none: list[Any] = [None] * 5
    for r in {r[0]: r for r in page}.values():
        pid, _c, mp, external_id, vendor_code, brand, subject, title = r[:8]
        head = [labels.get(mp, mp), brand, subject, vendor_code, external_id, title]
        variants: list[Any] = sizes.get(pid, [])
        if (pid, None) in by_key or not variants:
            variants = [*variants, None]
        for v in variants:
            if v is None:
                values = [*head, None, None]
                figures = by_key.get((pid, None), none)
            else:
                values = [*head, v.size, v.external_id]
                figures = by_key.get((pid, v.id), none)
            _fill(values, figures, blank, days, low)
            out.append(values)
    return out


def _fill(values: list[Any], figures: Sequence[Any], blank: list[None], days: int, low: int) -> None:
    """Append a file row's totals and warehouse cells (``figures``: ``file_page``'s columns from ``total``)."""
    total, to_client, from_client, orders, cells = figures
    if orders is None:  # no stock row and no flows at all
        total = orders = 0
    at = len(values) + 2  # a cell's three values start at at + 3 × its 1-based column
    values += (
        to_client,
        from_client,
        orders,
        Marked(total, "out") if total <= 0 else Marked(total, "low") if total < low else total,
        round(total / (orders / days), 1) if orders else None,
    )
    values += blank
    if cells is not None:
        k = len(cells) // 3  # k places, their stock, their flows
        for j in range(k):
            i, stock, n = at + 3 * cells[j], cells[k + j], cells[2 * k + j]
            values[i + 1] = n
            if stock is not None:
                values[i] = Marked(stock, "out") if stock <= 0 else Marked(stock, "low") if stock < low else stock
                if n:
                    values[i + 2] = round(stock / (n / days), 1)


def _group_labels(warehouses: Sequence[Any], connections: dict[uuid.UUID, str]) -> list[str]:
    """A warehouse block's title: its name, with its connection's where two connections share a name."""
    counts: dict[str, int] = defaultdict(int)
    for w in warehouses:
        counts[w.name] += 1
    return [w.name if counts[w.name] == 1 else f"{w.name} · {connections.get(w.connection_id, '')}" for w in warehouses]


def _days(available: int | None, orders: int, days: int) -> float | None:
    """Days of cover as ``cover()`` computes it (the hot loop of a file: no intermediate struct)."""
    if available is None or not orders:
        return None
    return round(available / (orders / days), 1)


def _rows(
    products: Sequence[Any],
    cells: Sequence[Any],
    flows: Flows,
    warehouses: Sequence[Any],
    variants: dict[uuid.UUID, list[Any]],
    per: str,
    days: int,
    low: int,
) -> list[ReportRow]:
    # (product, variant or None) → per-warehouse stock / orders and in-transit sums
    key_of = (lambda pid, vid: (pid, vid)) if per == "size" else (lambda pid, vid: (pid, None))
    stock: dict[tuple[Any, Any], dict[uuid.UUID, int]] = defaultdict(dict)
    to_client: dict[tuple[Any, Any], int] = {}
    from_client: dict[tuple[Any, Any], int] = {}
    for c in cells:
        key = key_of(c.product_id, c.variant_id)
        stock[key][c.warehouse_id] = stock[key].get(c.warehouse_id, 0) + c.quantity
        if c.in_way_to_client is not None:
            to_client[key] = to_client.get(key, 0) + c.in_way_to_client
        if c.in_way_from_client is not None:
            from_client[key] = from_client.get(key, 0) + c.in_way_from_client
    orders: dict[tuple[Any, Any], dict[uuid.UUID | None, int]] = defaultdict(lambda: defaultdict(int))
    for (pid, vid, wid), n in flows.items():
        orders[key_of(pid, vid)][wid] += n
    out: list[ReportRow] = []
    warehouse_ids = [w.id for w in warehouses]
    for p in products:
        if per == "size":
            keys: list[tuple[Any, Any]] = [(p.id, v.id) for v in variants.get(p.id, [])]
            if (p.id, None) in orders or (p.id, None) in stock or not keys:
                keys.append((p.id, None))  # order lines not tied to a size (or a product without sizes)
            sizes = {v.id: v for v in variants.get(p.id, [])}
        else:
            keys, sizes = [(p.id, None)], {}
        for key in keys:
            s, o = stock.get(key, {}), orders.get(key, {})
            row_cells = []
            for wid in warehouse_ids:
                ws, wo = s.get(wid), o.get(wid, 0)
                if ws is None and wo == 0:
                    continue
                row_cells.append(ReportCell(wid, ws, wo, _days(ws, wo, days), status_of(ws, low)))
            total, total_orders = sum(s.values()), sum(o.values())
            variant = sizes.get(key[1]) if key[1] is not None else None
            out.append(
                ReportRow(
                    product_id=p.id,
                    marketplace=p.marketplace.value,
                    external_id=p.external_id,
                    vendor_code=p.vendor_code,
                    brand=p.brand,
                    subject=p.subject,
                    title=p.title,
                    in_way_to_client=to_client.get(key),
                    in_way_from_client=from_client.get(key),
                    orders=total_orders,
                    total_stock=total,
                    days_of_cover=_days(total, total_orders, days),
                    warehouses=row_cells,
                    status=status_of(total, low) or "out",
                    variant_id=variant.id if variant is not None else None,
                    variant_external_id=variant.external_id if variant is not None else None,
                    size=variant.size if variant is not None else None,
                )
            )
    return out
