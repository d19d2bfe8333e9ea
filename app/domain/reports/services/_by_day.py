"""Stock by day: end-of-day stock per product (× size) × date in the organization's time zone, from the history.

History holds a point per change, so a day without a change has no point of its own: each cell's value at the
end of a day is its last point at or before that moment, carried forward from the point before the range. The
retention sweep's compaction keeps exactly the last point of every cell × local day, so this reads the same
after compaction (docs/reports.md). Today's value is the latest one (the day is not over).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.reports import tables
from app.domain.reports.repositories import HistoryRepository, ProductScope, ReportRepository
from app.domain.reports.schemas import StockByDay, StockByDayMethod, StockByDayRow
from app.domain.reports.services._cover import CoverService, window_between
from app.domain.reports.services._files import MEDIA_TYPES, FileFormat, ReportFile, Separator, filename, stream_table
from app.domain.reports.services._settings import org_settings
from app.lib.clock import utcnow
from app.lib.errors import FieldError, ValidationError
from app.lib.pagination import paginate
from app.lib.tabular import Sheet

MAX_DAYS = 93
FILE_PAGE = 500


@dataclass(frozen=True, slots=True)
class StockByDayQuery:
    date_from: date
    date_to: date
    per: str = "size"
    include_cancelled: bool = False
    connection_id: uuid.UUID | None = None
    marketplace: str | None = None
    warehouse_ids: tuple[uuid.UUID, ...] = ()
    brand: str | None = None
    subject: str | None = None
    search: str | None = None

    @property
    def dates(self) -> list[date]:
        return [self.date_from + timedelta(days=i) for i in range((self.date_to - self.date_from).days + 1)]

    def scope(self) -> ProductScope:
        return ProductScope(
            connection_id=self.connection_id,
            marketplace=self.marketplace,
            brand=self.brand,
            subject=self.subject,
            search=self.search,
            warehouse_ids=self.warehouse_ids,
            since=self.date_from,
        )


def _invalid(message: str, name: str) -> ValidationError:
    return ValidationError(message, errors=[FieldError(field=name, message=message, source="query")])


class StockByDayService:
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

    async def _check(self, query: StockByDayQuery) -> str:
        """The organization's time zone, once the range is known to be sensible (else a 422 naming the field)."""
        tz = await ReportRepository(self.session, self.tenant_id).timezone()
        today = utcnow().astimezone(ZoneInfo(tz)).date()
        if query.date_from > query.date_to:
            raise _invalid("'from' is after 'to'", "from")
        if query.date_to > today:
            raise _invalid(f"'to' is after today ({today.isoformat()} in {tz})", "to")
        if (query.date_to - query.date_from).days + 1 > MAX_DAYS:
            raise _invalid(f"the range is longer than {MAX_DAYS} days", "from")
        return tz

    async def report(self, query: StockByDayQuery, cursor: str | None, limit: int) -> StockByDay:
        tz = await self._check(query)
        reports = ReportRepository(self.session, self.tenant_id)
        scope = query.scope()
        page = await paginate(
            lambda after, n: reports.products_page(after=after[0] if after else None, limit=n, scope=scope),
            cursor=cursor,
            limit=limit,
            key=lambda product: (product.id,),
            types=(uuid.UUID,),
        )
        rows = await _rows(self.session, self.tenant_id, query, tz, page.items, None)
        return StockByDay(
            method=self._method(query, tz),
            dates=query.dates,
            rows=rows,
            next_cursor=page.next_cursor,
            per=query.per,  # type: ignore[arg-type]
        )

    @staticmethod
    def _method(query: StockByDayQuery, tz: str) -> StockByDayMethod:
        return StockByDayMethod(
            timezone=tz, date_from=query.date_from, date_to=query.date_to, counts_cancelled=query.include_cancelled
        )

    async def file(self, query: StockByDayQuery, fmt: FileFormat, lang: str | None, separator: Separator) -> ReportFile:
        """The cabinet's "Остатки по дням" layout, streamed from a snapshot of its own."""
        if self.sessionmaker is None:
            raise RuntimeError("a report file needs a sessionmaker")
        tz = await self._check(query)
        language = (await org_settings(self.session, self.tenant_id)).language(lang)
        t = tables.labels(language)

        async def build(session: AsyncSession) -> Sheet:
            reports = ReportRepository(session, self.tenant_id)
            cover = CoverService(session, self.tenant_id)
            with_orders = await cover.with_orders(list((await reports.connection_names()).keys()))
            scope = query.scope()

            async def rows() -> AsyncIterator[list[Any]]:
                after: uuid.UUID | None = None
                while True:
                    products = await reports.products_page(after=after, limit=FILE_PAGE, scope=scope)
                    for row in await _rows(session, self.tenant_id, query, tz, products, with_orders):
                        yield tables.by_day_values(row, query.per)
                    if len(products) < FILE_PAGE:
                        return
                    after = products[-1].id

            title: tuple[str, ...] = ()
            if fmt == "xlsx":
                title = (t["by_day_title"].format(tz=tz, start=query.date_from, end=query.date_to),)
            return Sheet(
                t["by_day_sheet"],
                tables.by_day_columns(language, query.per, query.dates),
                rows(),
                title=title,
                freeze_columns=3,
                totals_label=t["total"],
            )

        chunks = stream_table(self.sessionmaker, self.tenant_id, fmt, separator, build)
        return ReportFile(filename("stock-by-day", fmt, utcnow()), MEDIA_TYPES[fmt], chunks)


def _carry(base: int | None, points: list[tuple[datetime, int]], ends: list[datetime]) -> list[int | None]:
    """End-of-day values of one cell: its value just before each day end, carried forward."""
    values: list[int | None] = []
    current, i = base, 0
    for at, quantity in points:
        while i < len(ends) and at >= ends[i]:
            values.append(current)
            i += 1
        current = quantity
    values.extend([current] * (len(ends) - i))
    return values


async def _rows(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: StockByDayQuery,
    tz: str,
    products: Sequence[Any],
    with_orders: set[uuid.UUID] | None,
) -> list[StockByDayRow]:
    if not products:
        return []
    zone = ZoneInfo(tz)
    dates = query.dates
    ends = [datetime.combine(d + timedelta(days=1), time(), zone) for d in dates]
    start = datetime.combine(dates[0], time(), zone)
    pids = [p.id for p in products]
    history = HistoryRepository(session, tenant_id)
    per_size = query.per == "size"
    points: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[datetime, int]]] = defaultdict(list)
    for _pid, vid, wid, at, quantity in await history.points(pids, query.warehouse_ids, start, ends[-1]):
        points[(vid, wid)].append((at, quantity))
    sums: dict[tuple[uuid.UUID, uuid.UUID | None], list[int | None]] = {}
    for pid, vid, wid, base in await history.baselines(pids, query.warehouse_ids, start):
        values = _carry(base, points.get((vid, wid), []), ends)
        key = (pid, vid if per_size else None)
        total = sums.get(key)
        sums[key] = values if total is None else [_add(a, b) for a, b in zip(total, values, strict=True)]
    window = window_between(query.date_from, query.date_to)
    _method, flows = await CoverService(session, tenant_id).method_and_flows(
        products, window.days, query.include_cancelled, with_orders=with_orders, window=window
    )
    only = set(query.warehouse_ids)
    orders: dict[tuple[uuid.UUID, uuid.UUID | None], int] = defaultdict(int)
    for (pid, vid, wid), n in flows.items():
        if not only or wid in only:
            orders[(pid, vid if per_size else None)] += n
    variants: dict[uuid.UUID, list[Any]] = defaultdict(list)
    if per_size:
        for v in await ReportRepository(session, tenant_id).variants_of(pids):
            variants[v.product_id].append(v)
    empty: list[int | None] = [None] * len(dates)
    out: list[StockByDayRow] = []
    for p in products:
        targets = [(v.id, v) for v in variants.get(p.id, [])] if per_size else [(None, None)]
        for vid, variant in targets:
            stock = sums.get((p.id, vid), empty)
            n = orders.get((p.id, vid), 0)
            out.append(_row(p, variant, stock, n))
    return out


def _add(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else a + b


def _row(p: Any, variant: Any, stock: list[int | None], orders: int) -> StockByDayRow:
    out_days = sum(1 for v in stock if v == 0)
    in_days = sum(1 for v in stock if v is not None and v > 0)
    if out_days == 0:
        lost: float | None = 0.0
    elif in_days == 0:
        lost = None  # no day with stock to observe a velocity on
    else:
        lost = round(out_days * orders / in_days, 1)
    return StockByDayRow(
        product_id=p.id,
        marketplace=p.marketplace.value,
        external_id=p.external_id,
        vendor_code=p.vendor_code,
        title=p.title,
        brand=p.brand,
        subject=p.subject,
        stock=list(stock),
        days_out_of_stock=out_days,
        days_in_stock=in_days,
        days_unknown=sum(1 for v in stock if v is None),
        orders=orders,
        lost_orders_estimate=lost,
        variant_id=variant.id if variant is not None else None,
        variant_external_id=variant.external_id if variant is not None else None,
        size=variant.size if variant is not None else None,
    )


__all__ = ["MAX_DAYS", "StockByDayQuery", "StockByDayService"]
