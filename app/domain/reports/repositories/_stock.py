"""The statements reports are built from: products (filtered), stock cells, order lines and stock decreases."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection, OrderLine, Product, StockHistory, StockLevel, Tenant, Variant, Warehouse
from app.domain.reports.schemas import Window


@dataclass(frozen=True, slots=True)
class ProductScope:
    """Which products (and warehouses) a report covers. ``since``: order lines from this day count when a
    warehouse filter asks which products were at those warehouses."""

    connection_id: uuid.UUID | None = None
    marketplace: str | None = None
    brand: str | None = None
    subject: str | None = None
    search: str | None = None
    warehouse_ids: tuple[uuid.UUID, ...] = ()
    stock_status: str | None = None  # in_stock | low | out | low_or_out
    low_units: int = 0
    since: date | None = None


@dataclass(frozen=True, slots=True)
class FilePageSpec:
    """What every page of one report file shares: its products, its warehouse columns (in order) and how its
    flows are counted (order lines in ``window`` for ``with_orders`` connections, else stock decreases in
    [``decreases_start``, ``decreases_end``))."""

    limit: int
    scope: ProductScope
    columns: list[uuid.UUID]
    window: Window
    include_cancelled: bool
    with_orders: list[uuid.UUID]
    decreases_start: datetime
    decreases_end: datetime
    decreases: bool = True  # False: every connection has order lines (no stock history to read)
    per_size: bool = False


PRODUCT_COLUMNS = (
    Product.id,
    Product.connection_id,
    Product.marketplace,
    Product.external_id,
    Product.vendor_code,
    Product.brand,
    Product.subject,
    Product.title,
)


_BEFORE_ALL = uuid.UUID(int=0)  # a file's first page: the products after the nil UUID (no id is nil)


class ReportRepository:
    """Tenant-scoped reads of the figures reports are built from (every statement filters by tenant)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    # ---- products ---------------------------------------------------------------------------------------

    def _scoped(self, stmt: Any, scope: ProductScope) -> Any:
        tid = self.tenant_id
        stmt = stmt.where(Product.tenant_id == tid)
        if scope.connection_id is not None:
            stmt = stmt.where(Product.connection_id == scope.connection_id)
        if scope.marketplace is not None:
            stmt = stmt.where(Product.marketplace == scope.marketplace)
        if scope.brand:
            stmt = stmt.where(func.lower(Product.brand) == scope.brand.strip().lower())
        if scope.subject:
            stmt = stmt.where(func.lower(Product.subject) == scope.subject.strip().lower())
        if scope.search and scope.search.strip():
            term = scope.search.strip()
            stmt = stmt.where(
                or_(Product.external_id == term, Product.search_text.contains(term.lower(), autoescape=True))
            )
        wids = list(scope.warehouse_ids)
        if wids:
            at_stock = exists().where(
                StockLevel.tenant_id == tid, StockLevel.product_id == Product.id, StockLevel.warehouse_id.in_(wids)
            )
            ordered = [OrderLine.tenant_id == tid, OrderLine.product_id == Product.id, OrderLine.warehouse_id.in_(wids)]
            if scope.since is not None:
                ordered.append(OrderLine.order_date >= scope.since)
            stmt = stmt.where(or_(at_stock, exists().where(*ordered)))
        if scope.stock_status:
            cond = [StockLevel.tenant_id == tid, StockLevel.product_id == Product.id]
            if wids:
                cond.append(StockLevel.warehouse_id.in_(wids))
            total = select(func.coalesce(func.sum(StockLevel.quantity), 0)).where(*cond).scalar_subquery()
            low = scope.low_units
            if scope.stock_status == "out":
                stmt = stmt.where(total <= 0)
            elif scope.stock_status == "low":
                stmt = stmt.where(and_(total > 0, total < low))
            elif scope.stock_status == "low_or_out":
                stmt = stmt.where(total < low) if low > 0 else stmt.where(total <= 0)
            elif scope.stock_status == "in_stock":
                stmt = stmt.where(total >= max(low, 1))
        return stmt

    async def products_page(
        self,
        *,
        connection_id: uuid.UUID | None = None,
        after: uuid.UUID | None,
        limit: int,
        scope: ProductScope | None = None,
    ) -> list[Any]:
        """Products (the report's columns of them) by id — the report's row order — after ``after``."""
        scope = scope or ProductScope(connection_id=connection_id)
        stmt = self._scoped(select(*PRODUCT_COLUMNS), scope).order_by(Product.id).limit(limit)
        if after is not None:
            stmt = stmt.where(Product.id > after)
        return list((await self.session.execute(stmt)).all())

    async def file_pages(self, spec: FilePageSpec) -> Callable[[uuid.UUID | None], Awaitable[list[Any]]]:
        """A reader of a report file's pages: ``file_page_statement`` compiled once, each page (the products
        after a given one) fetched through the session's own asyncpg connection, in its transaction, as
        records read by position — no ORM row per product."""
        conn = await self.session.connection()
        compiled = self.file_page_statement(spec).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        raw: Any = (await conn.get_raw_connection()).driver_connection
        # What SQLAlchemy would do to each parameter on its way to the driver (enum names and the like).
        processors = compiled._bind_processors
        names, params = list(compiled.positiontup or ()), compiled.construct_params()

        async def read(after: uuid.UUID | None) -> list[Any]:
            values = {**params, "after": after or _BEFORE_ALL}
            args = [processors[n](values[n]) if n in processors else values[n] for n in names]
            return list(await raw.fetch(compiled.string, *args))

        return read

    def file_page_statement(self, spec: FilePageSpec) -> Any:
        """Up to ``spec.limit`` products by id after ``:after``: their ``PRODUCT_COLUMNS``, then per row, in this
        order (read by position; with ``per_size`` a row per product × variant it has figures for):

        - ``vid`` (the variant, with ``per_size``; else NULL), ``total`` (stock, 0 where no row),
          ``to_client`` / ``from_client`` (NULL where no stock row says), ``orders`` — every flow of the
          row, also those at no warehouse or at one outside ``columns`` (all NULL: a product without any);
        - ``cells``: the row's cells — a warehouse of ``columns`` where it holds a stock row or has flows —
          as one flat array: k 1-based places in ``columns``, then their k stock figures (NULL where no stock
          row), then their k flows (one list per row where three would be three objects to collect).

        Flows are the window's order lines (cancelled ones only with ``include_cancelled``) for products of
        ``with_orders`` connections, else stock decreases between history points (restocks excluded), as
        ``order_counts`` and ``decrease_counts`` count them. A warehouse filter keeps its warehouses only.
        """
        tid, per_size, uuids = self.tenant_id, spec.per_size, ARRAY(UUID(as_uuid=True))
        page = self._scoped(select(*PRODUCT_COLUMNS), spec.scope).order_by(Product.id).limit(spec.limit)
        page = page.where(Product.id > bindparam("after", _BEFORE_ALL, type_=UUID(as_uuid=True)))
        p = page.cte("p")
        only = list(spec.scope.warehouse_ids)
        only_ids = bindparam("only", only, type_=uuids)
        ordering = bindparam("with_orders", list(spec.with_orders), type_=uuids)
        no_variant = literal(None, UUID(as_uuid=True))
        none = literal(None, Integer)

        stock_cond = [StockLevel.tenant_id == tid, StockLevel.product_id.in_(select(p.c.id))]
        order_cond = [
            OrderLine.tenant_id == tid,
            OrderLine.product_id.in_(select(p.c.id).where(p.c.connection_id == any_(ordering))),
            OrderLine.order_date.between(spec.window.start, spec.window.end),
        ]
        if not spec.include_cancelled:
            order_cond.append(OrderLine.is_cancel.is_(False))
        if only:
            stock_cond.append(StockLevel.warehouse_id == any_(only_ids))
            order_cond.append(OrderLine.warehouse_id == any_(only_ids))
        stock = select(
            StockLevel.product_id.label("pid"),
            (StockLevel.variant_id if per_size else no_variant).label("vid"),
            StockLevel.warehouse_id.label("wid"),
            StockLevel.quantity.label("q"),
            StockLevel.in_way_to_client.label("tc"),
            StockLevel.in_way_from_client.label("fc"),
            none.label("n"),
        ).where(*stock_cond)
        orders = select(
            OrderLine.product_id,
            OrderLine.variant_id if per_size else no_variant,
            OrderLine.warehouse_id,
            none,
            none,
            none,
            cast(func.count(), Integer),
        ).where(*order_cond)
        orders = orders.group_by(OrderLine.product_id, OrderLine.warehouse_id)
        if per_size:
            orders = orders.group_by(OrderLine.variant_id)
        # Stock decreases (decrease_counts): the previous point of the same variant × warehouse before it.
        prev = func.lag(StockHistory.quantity).over(
            partition_by=(StockHistory.variant_id, StockHistory.warehouse_id),
            order_by=(StockHistory.at, StockHistory.id),
        )
        points = (
            select(
                StockHistory.product_id,
                StockHistory.variant_id,
                StockHistory.warehouse_id,
                StockHistory.at,
                StockHistory.quantity,
                prev.label("prev"),
            )
            .where(
                StockHistory.tenant_id == tid,
                StockHistory.product_id.in_(select(p.c.id).where(~(p.c.connection_id == any_(ordering)))),
                StockHistory.at < spec.decreases_end,
            )
            .subquery("h")
        )
        decrease_cond = [points.c.at >= spec.decreases_start, points.c.prev.is_not(None)]
        if only:
            decrease_cond.append(points.c.warehouse_id == any_(only_ids))
        decreases = select(
            points.c.product_id,
            points.c.variant_id if per_size else no_variant,
            points.c.warehouse_id,
            none,
            none,
            none,
            cast(func.sum(func.greatest(points.c.prev - points.c.quantity, 0)), Integer),
        ).where(*decrease_cond)
        decreases = decreases.group_by(points.c.product_id, points.c.warehouse_id)
        if per_size:
            decreases = decreases.group_by(points.c.variant_id)
        parts = (union_all(stock, orders, decreases) if spec.decreases else union_all(stock, orders)).subquery("parts")
        cells = (
            select(
                parts.c.pid,
                parts.c.vid,
                func.array_position(bindparam("columns", list(spec.columns), type_=uuids), parts.c.wid).label("pos"),
                # int4 sums (int8 accumulators; an int8 column's sum would accumulate in numeric)
                cast(func.sum(parts.c.q), Integer).label("q"),
                cast(func.sum(parts.c.tc), Integer).label("tc"),
                cast(func.sum(parts.c.fc), Integer).label("fc"),
                cast(func.coalesce(func.sum(parts.c.n), 0), Integer).label("n"),
            )
            .group_by(parts.c.pid, parts.c.vid, parts.c.wid)
            .subquery("cells")
        )
        shown = and_(cells.c.pos.is_not(None), or_(cells.c.q.is_not(None), cells.c.n != 0))
        rows = (
            select(
                cells.c.pid,
                cells.c.vid,
                cast(func.coalesce(func.sum(cells.c.q), 0), BigInteger).label("total"),
                cast(func.sum(cells.c.tc), BigInteger).label("to_client"),
                cast(func.sum(cells.c.fc), BigInteger).label("from_client"),
                cast(func.sum(cells.c.n), BigInteger).label("orders"),
                func.array_cat(
                    func.array_cat(func.array_agg(cells.c.pos).filter(shown), func.array_agg(cells.c.q).filter(shown)),
                    func.array_agg(cells.c.n).filter(shown),
                ).label("cells"),
            )
            .group_by(cells.c.pid, cells.c.vid)
            .subquery("r")
        )
        columns = [c for c in rows.c if c.name != "pid"]
        return select(*p.c, *columns).select_from(p.outerjoin(rows, rows.c.pid == p.c.id)).order_by(p.c.id)

    async def warehouse_ids(self, scope: ProductScope, window: Window, include_cancelled: bool) -> set[uuid.UUID]:
        """Every warehouse the report's rows can mention: where the products hold stock rows or had orders in
        the window (the columns of a file, known before its first row)."""
        stock = select(StockLevel.warehouse_id).where(StockLevel.tenant_id == self.tenant_id)
        cond = [
            OrderLine.tenant_id == self.tenant_id,
            OrderLine.warehouse_id.is_not(None),
            OrderLine.order_date >= window.start,
            OrderLine.order_date <= window.end,
        ]
        if scope.brand or scope.subject or scope.search or scope.stock_status:
            # Narrowed by product: the semi-join on the filtered products.
            products = select(self._scoped(select(Product.id), scope).subquery().c.id)
            stock = stock.where(StockLevel.product_id.in_(products))
            cond.append(OrderLine.product_id.in_(products))
        else:
            # Only by connection (or marketplace): the rows' own columns, no join (the whole-report case).
            connections = select(Connection.id).where(Connection.tenant_id == self.tenant_id)
            if scope.connection_id is not None:
                connections = connections.where(Connection.id == scope.connection_id)
            if scope.marketplace is not None:
                connections = connections.where(Connection.marketplace == scope.marketplace)
            stock = stock.where(StockLevel.connection_id.in_(connections))
            cond.append(OrderLine.connection_id.in_(connections))
        if not include_cancelled:
            cond.append(OrderLine.is_cancel.is_(False))
        orders = select(OrderLine.warehouse_id).where(*cond)
        if scope.warehouse_ids:
            stock = stock.where(StockLevel.warehouse_id.in_(scope.warehouse_ids))
            orders = orders.where(OrderLine.warehouse_id.in_(scope.warehouse_ids))
        rows: Any = await self.session.execute(union(stock, orders))
        return {r[0] for r in rows}

    async def has_stock(self) -> bool:
        """Whether the tenant holds any stock row at all (one index probe)."""
        stmt = select(exists().where(StockLevel.tenant_id == self.tenant_id))
        return bool((await self.session.execute(stmt)).scalar())

    async def products_with_stock(self, limit: int) -> list[Any]:
        """(id, connection_id, vendor_code, external_id, total) of products that have stock rows."""
        totals = (
            select(StockLevel.product_id, func.sum(StockLevel.quantity).label("total"))
            .where(StockLevel.tenant_id == self.tenant_id)
            .group_by(StockLevel.product_id)
            .subquery()
        )
        stmt = (
            select(Product.id, Product.connection_id, Product.vendor_code, Product.external_id, totals.c.total)
            .join(totals, totals.c.product_id == Product.id)
            .where(Product.tenant_id == self.tenant_id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).all())

    async def product_connection(self, product_id: uuid.UUID) -> Any | None:
        """(id, connection_id) of one product, or None."""
        stmt = select(Product.id, Product.connection_id).where(
            Product.tenant_id == self.tenant_id, Product.id == product_id
        )
        return (await self.session.execute(stmt)).first()

    async def connection_marketplace(self, connection_id: uuid.UUID) -> str | None:
        stmt = select(Connection.marketplace).where(
            Connection.tenant_id == self.tenant_id, Connection.id == connection_id
        )
        value = (await self.session.execute(stmt)).scalar_one_or_none()
        return None if value is None else str(value.value)

    async def timezone(self) -> str:
        row = (await self.session.execute(select(Tenant.timezone).where(Tenant.id == self.tenant_id))).first()
        return str(row[0]) if row else "Europe/Moscow"

    # ---- variants and warehouses ------------------------------------------------------------------------

    async def variants(self, product_id: uuid.UUID) -> list[Any]:
        """(id, external_id, size) of a product's variants, by external id."""
        stmt = (
            select(Variant.id, Variant.external_id, Variant.size)
            .where(Variant.tenant_id == self.tenant_id, Variant.product_id == product_id)
            .order_by(Variant.external_id)
        )
        return list((await self.session.execute(stmt)).all())

    async def variants_of(self, product_ids: list[uuid.UUID]) -> list[Any]:
        """(id, product_id, external_id, size) of the products' variants, by product then external id."""
        if not product_ids:
            return []
        stmt = (
            select(Variant.id, Variant.product_id, Variant.external_id, Variant.size)
            .where(Variant.tenant_id == self.tenant_id, Variant.product_id.in_(product_ids))
            .order_by(Variant.product_id, Variant.external_id)
        )
        return list((await self.session.execute(stmt)).all())

    async def connection_warehouses(self, connection_id: uuid.UUID) -> list[Any]:
        """(id, name, kind) of a connection's warehouses."""
        stmt = select(Warehouse.id, Warehouse.name, Warehouse.kind).where(
            Warehouse.tenant_id == self.tenant_id, Warehouse.connection_id == connection_id
        )
        return list((await self.session.execute(stmt)).all())

    async def warehouses(self, ids: set[uuid.UUID]) -> list[Any]:
        """(id, name, kind, connection_id, external_id) of the given warehouses, by kind then name (the
        report's column order)."""
        if not ids:
            return []
        stmt = (
            select(Warehouse.id, Warehouse.name, Warehouse.kind, Warehouse.connection_id, Warehouse.external_id)
            .where(Warehouse.tenant_id == self.tenant_id, Warehouse.id.in_(ids))
            .order_by(Warehouse.kind, Warehouse.name, Warehouse.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def connection_names(self) -> dict[uuid.UUID, str]:
        stmt = select(Connection.id, Connection.name).where(Connection.tenant_id == self.tenant_id)
        return {r[0]: r[1] for r in await self.session.execute(stmt)}

    # ---- stock, orders, decreases -----------------------------------------------------------------------

    async def stock_cells(self, product_ids: list[uuid.UUID]) -> list[Any]:
        """(product, variant, warehouse, quantity, in way to / from client) of the products' stock rows."""
        if not product_ids:
            return []
        # ``= ANY(array)``: one parameter however many products (an expanded IN renders one bind each).
        rows = await self.session.execute(
            text(
                "SELECT product_id, variant_id, warehouse_id, quantity, in_way_to_client, in_way_from_client "
                "FROM stock_levels WHERE tenant_id = :tid AND product_id = ANY(:pids)"
            ),
            {"tid": self.tenant_id, "pids": list(product_ids)},
        )
        return list(rows.all())

    async def connections_with_orders(self, connection_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """The connections that have stored order lines (their velocity comes from orders)."""
        # One index probe per connection (EXISTS on the connection's first line), not a pass over every line.
        has_lines = exists().where(OrderLine.tenant_id == self.tenant_id, OrderLine.connection_id == Connection.id)
        rows = await self.session.execute(
            select(Connection.id).where(
                Connection.tenant_id == self.tenant_id, Connection.id.in_(connection_ids), has_lines
            )
        )
        return {r[0] for r in rows}

    async def order_counts(self, product_ids: list[uuid.UUID], window: Window, include_cancelled: bool) -> list[Any]:
        """(product, variant, warehouse, lines) — one order line per WB srid (per unit on Ozon)."""
        cancelled = "" if include_cancelled else "AND NOT is_cancel"
        rows = await self.session.execute(
            text(
                "SELECT product_id, variant_id, warehouse_id, count(*) FROM order_lines "
                "WHERE tenant_id = :tid AND product_id = ANY(:pids) AND order_date BETWEEN :start AND :end "
                f"{cancelled} GROUP BY product_id, variant_id, warehouse_id"
            ),
            {"tid": self.tenant_id, "pids": list(product_ids), "start": window.start, "end": window.end},
        )
        return list(rows.all())

    async def decrease_counts(self, product_ids: list[uuid.UUID], start: datetime, end: datetime) -> list[Any]:
        """(product, variant, warehouse, units) that left stock in [start, end): decreases between history
        points, restocks excluded (the fallback where a connection has no order lines)."""
        rows = await self.session.execute(
            text(
                """
                SELECT product_id, variant_id, warehouse_id, sum(greatest(prev - quantity, 0))::int
                FROM (
                    SELECT product_id, variant_id, warehouse_id, at, quantity,
                           lag(quantity) OVER (PARTITION BY variant_id, warehouse_id ORDER BY at, id) AS prev
                    FROM stock_history WHERE tenant_id = :tid AND product_id = ANY(:pids) AND at < :end
                ) h
                WHERE at >= :start AND prev IS NOT NULL
                GROUP BY product_id, variant_id, warehouse_id
                """
            ),
            {"tid": self.tenant_id, "pids": product_ids, "start": start, "end": end},
        )
        return list(rows.all())
