"""Reconciliation with the WB cabinet: the seller's own "История остатков" export beside our figures.

Matching never guesses: a product by its marketplace id (the file's "Артикул WB" = nmID), then the size and
the warehouse by their exact names (the file has no size or warehouse ids). The cabinet's "Маркетплейс" row
is the seller's own stock summed over its warehouses, so it is compared with the sum of our seller (FBS)
warehouses. A row that finds no counterpart is listed as only theirs / only ours with the reason, never
matched to something close. Orders are the lines placed on the period's days (Moscow time), cancelled ones
included, as the cabinet counts them. Everything is stored in the request's transaction: a file that fails
to parse (422) or is too large (413) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models.reports import Reconciliation as ReconciliationModel
from app.domain.reports import tables
from app.domain.reports.cabinet import MARKETPLACE_WAREHOUSE, CabinetExport, check_upload_size, parse_cabinet_export
from app.domain.reports.repositories import ROW_COLUMNS, ReconciliationRepository
from app.domain.reports.schemas import (
    Reconciliation,
    ReconciliationLine,
    ReconciliationLinePage,
    ReconciliationPage,
    ReconciliationPeriod,
    ReconciliationSummary,
)
from app.domain.reports.services._cover import MSK
from app.domain.reports.services._files import MEDIA_TYPES, FileFormat, ReportFile, Separator, filename, stream_table
from app.domain.reports.services._settings import org_settings
from app.lib.clock import utcnow
from app.lib.errors import FieldError, NotFoundError, ValidationError
from app.lib.pagination import paginate
from app.lib.tabular import Sheet

MAX_PERIOD_DAYS = 31
DEFAULT_PERIOD_DAYS = 7
MATCHING = (
    "products by the file's 'Артикул WB' (the marketplace id, nmID); sizes and warehouses by exact name; "
    "'Маркетплейс' is compared with the sum of our seller (FBS) warehouses; never fuzzy — unmatched rows are "
    "listed as only_theirs / only_ours with the reason"
)
FILE_PAGE = 5000

Key = tuple[str, str, str]  # (marketplace product id, size, place)


def _invalid(message: str, name: str, source: str = "body") -> ValidationError:
    return ValidationError(message, errors=[FieldError(field=name, message=message, source=source)])


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    file_name: str
    connection_id: uuid.UUID | None = None
    period_from: date | None = None
    period_to: date | None = None


def _pct(difference: int | None, theirs: int | None) -> float | None:
    if difference is None or theirs is None:
        return None
    if theirs == 0:
        return 0.0 if difference == 0 else None
    return round(100 * difference / theirs, 1)


def _line(
    position: int,
    status: str,
    key: Key,
    our: tuple[int, int] | None,
    their: Any,
    meta: Any,
    note: str | None,
    variant_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    our_stock, our_orders = our if our is not None else (None, None)
    their_stock = their.stock_units if their is not None else None
    their_orders = their.ordered_units if their is not None else None
    stock_diff = our_stock - their_stock if our_stock is not None and their_stock is not None else None
    orders_diff = our_orders - their_orders if our_orders is not None and their_orders is not None else None
    return {
        "position": position,
        "status": status,
        "line": their.line if their is not None else None,
        "external_id": key[0],
        "vendor_code": (their.vendor_code if their is not None else None) or (meta.vendor_code if meta else None),
        "title": (their.title if their is not None else None) or (meta.title if meta else None),
        "size": key[1],
        "warehouse": key[2],
        "product_id": meta.id if meta is not None else None,
        "variant_id": variant_id,
        "their_stock": their_stock,
        "our_stock": our_stock,
        "stock_difference": stock_diff,
        "stock_difference_pct": _pct(stock_diff, their_stock),
        "their_orders": their_orders,
        "our_orders": our_orders,
        "orders_difference": orders_diff,
        "orders_difference_pct": _pct(orders_diff, their_orders),
        "note": note,
    }


def _out(r: ReconciliationModel) -> Reconciliation:
    return Reconciliation(
        id=r.id,
        connection_id=r.connection_id,
        file_name=r.file_name,
        format=r.file_format,
        file_bytes=r.file_bytes,
        period=ReconciliationPeriod(
            date_from=r.period_start,
            date_to=r.period_end,
            source=r.period_source,  # type: ignore[arg-type]
        ),
        rows_total=r.rows_total,
        pseudo_rows_skipped=r.pseudo_rows_skipped,
        summary=ReconciliationSummary(**r.summary),
        matching=MATCHING,
        created_at=r.created_at,
    )


class ReconciliationService:
    def __init__(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None = None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.sessionmaker = sessionmaker
        self.repo = ReconciliationRepository(session, tenant_id)

    async def _connection(self, connection_id: uuid.UUID | None) -> uuid.UUID:
        if connection_id is not None:
            conn = await self.repo.connection(connection_id)
            if conn is None:
                raise NotFoundError("No such connection.")
            if conn.marketplace.value != "wildberries":
                raise _invalid("the cabinet's stock-history export is a Wildberries file: pick a WB connection",
                               "connection_id")  # fmt: skip
            return connection_id
        candidates = await self.repo.marketplace_connections("wildberries")
        if len(candidates) == 1:
            return candidates[0].id
        if not candidates:
            raise _invalid("there is no Wildberries connection to compare the file with", "connection_id")
        raise _invalid("several Wildberries connections: say which one with connection_id", "connection_id")

    @staticmethod
    def _period(export: CabinetExport, upload: Upload) -> tuple[date, date, str]:
        if export.period is not None:
            start, end, source = export.period[0], export.period[1], "file"
        elif upload.period_from is not None or upload.period_to is not None:
            if upload.period_from is None or upload.period_to is None:
                raise _invalid("give both period_from and period_to", "period_from")
            start, end, source = upload.period_from, upload.period_to, "form"
        else:
            end = utcnow().astimezone(MSK).date()
            start, source = end - timedelta(days=DEFAULT_PERIOD_DAYS - 1), "default"
        if start > end:
            raise _invalid("the period starts after it ends", "period_from")
        if (end - start).days + 1 > MAX_PERIOD_DAYS:
            raise _invalid(f"the period is longer than {MAX_PERIOD_DAYS} days", "period_from")
        return start, end, source

    async def create(self, upload: Upload) -> Reconciliation:
        """Parse the file, compare it with our figures, store both (422 naming the line and column for a bad
        file, 413 past 20 MB — and nothing stored)."""
        check_upload_size(len(upload.data))
        connection_id = await self._connection(upload.connection_id)
        export = await asyncio.to_thread(parse_cabinet_export, upload.data)
        start, end, source = self._period(export, upload)
        lines = await self._compare(connection_id, export, start, end)
        summary = {
            "rows_matched": sum(1 for r in lines if r["status"] == "matched"),
            "rows_only_theirs": sum(1 for r in lines if r["status"] == "only_theirs"),
            "rows_only_ours": sum(1 for r in lines if r["status"] == "only_ours"),
            "rows_with_difference": sum(
                1 for r in lines if r["status"] == "matched" and (r["stock_difference"] or r["orders_difference"])
            ),
            "total_abs_difference": sum(abs((r["our_stock"] or 0) - (r["their_stock"] or 0)) for r in lines),
        }
        row = self.repo.add(
            ReconciliationModel(
                connection_id=connection_id,
                created_by=self.user_id,
                file_name=(upload.file_name or "upload")[:300],
                file_format=export.format,
                file_bytes=len(upload.data),
                period_start=start,
                period_end=end,
                period_source=source,
                rows_total=len(lines),
                pseudo_rows_skipped=export.pseudo_rows_skipped,
                summary=summary,
            )
        )
        await self.session.flush()
        await self.repo.add_rows(row.id, lines)
        await self.session.refresh(row)
        return _out(row)

    async def _compare(
        self, connection_id: uuid.UUID, export: CabinetExport, start: date, end: date
    ) -> list[dict[str, Any]]:
        products = {p.external_id: p for p in await self.repo.products(connection_id)}
        by_id = {p.id: p for p in products.values()}
        variant_of: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        size_of: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
        for v in sorted(await self.repo.variants(connection_id), key=lambda v: v.external_id):
            variant_of.setdefault((v.product_id, v.size or ""), v.id)
            size_of[v.id] = (v.product_id, v.size or "")
        places = {w.name: w.kind.value for w in await self.repo.warehouses(connection_id)}
        has_fbs = "fbs" in places.values()
        ours: dict[Key, list[int]] = defaultdict(lambda: [0, 0])

        def our_key(variant_id: uuid.UUID | None, name: str, kind: str) -> Key | None:
            if variant_id is None or variant_id not in size_of:
                return None
            pid, size = size_of[variant_id]
            return by_id[pid].external_id, size, MARKETPLACE_WAREHOUSE if kind == "fbs" else name

        for _pid, vid, name, kind, quantity in await self.repo.our_stock(connection_id):
            key = our_key(vid, name, kind)
            if key is not None:
                ours[key][0] += quantity
        for _pid, vid, name, kind, lines in await self.repo.our_orders(connection_id, start, end):
            key = our_key(vid, name, kind)
            if key is not None:
                ours[key][1] += lines
        out: list[dict[str, Any]] = []
        seen: set[Key] = set()
        for their in export.rows:
            key = (str(their.nm_id), their.size, MARKETPLACE_WAREHOUSE if their.is_marketplace else their.warehouse)
            product = products.get(key[0])
            note = None
            if product is None:
                note = "no product with this Артикул WB in the connection"
            elif (product.id, key[1]) not in variant_of:
                note = f"the product has no size {key[1]!r}"
            elif their.is_marketplace and not has_fbs:
                note = "the connection has no seller (FBS) warehouse"
            elif not their.is_marketplace and key[2] not in places:
                note = f"no warehouse named {key[2]!r} in the connection"
            if note is not None:
                out.append(_line(len(out), "only_theirs", key, None, their, product, note))
                continue
            assert product is not None
            seen.add(key)
            our = ours.get(key, [0, 0])
            matched = variant_of[(product.id, key[1])]
            out.append(_line(len(out), "matched", key, (our[0], our[1]), their, product, None, matched))
        for key in sorted(k for k in ours if k not in seen):
            stock, orders = ours[key]
            if stock == 0 and orders == 0:
                continue  # nothing held and nothing ordered: not a difference
            product = products.get(key[0])
            variant = variant_of.get((product.id, key[1])) if product is not None else None
            out.append(_line(len(out), "only_ours", key, (stock, orders), None, product, "not in the file", variant))
        return out

    async def get(self, reconciliation_id: uuid.UUID) -> Reconciliation:
        row = await self.repo.get(reconciliation_id)
        if row is None:
            raise NotFoundError("No such reconciliation.")
        return _out(row)

    async def page(self, cursor: str | None, limit: int) -> ReconciliationPage:
        page = await paginate(
            lambda after, n: self.repo.page(after, n),
            cursor=cursor,
            limit=limit,
            key=lambda r: (r.created_at, r.id),
            types=(datetime, uuid.UUID),
        )
        return ReconciliationPage(items=[_out(r) for r in page.items], next_cursor=page.next_cursor)

    async def delete(self, reconciliation_id: uuid.UUID) -> None:
        if not await self.repo.delete(reconciliation_id):
            raise NotFoundError("No such reconciliation.")

    async def lines(
        self, reconciliation_id: uuid.UUID, cursor: str | None, limit: int, status: str | None, differences: bool
    ) -> ReconciliationLinePage:
        await self.get(reconciliation_id)
        page = await paginate(
            lambda after, n: self.repo.rows_page(
                reconciliation_id, after[0] if after else None, n, status, differences
            ),
            cursor=cursor,
            limit=limit,
            key=lambda r: (r.position,),
            types=(int,),
        )
        return ReconciliationLinePage(items=[_as_line(r) for r in page.items], next_cursor=page.next_cursor)

    async def lines_file(
        self, reconciliation_id: uuid.UUID, fmt: FileFormat, lang: str | None, separator: Separator
    ) -> ReportFile:
        """Every row (theirs beside ours), as XLSX or CSV."""
        if self.sessionmaker is None:
            raise RuntimeError("a report file needs a sessionmaker")
        await self.get(reconciliation_id)
        language = (await org_settings(self.session, self.tenant_id)).language(lang)
        t = tables.labels(language)

        async def build(session: AsyncSession) -> Sheet:
            repo = ReconciliationRepository(session, self.tenant_id)

            async def rows() -> AsyncIterator[list[Any]]:
                after: int | None = None
                while True:
                    batch = await repo.rows_page(reconciliation_id, after, FILE_PAGE, None, False)
                    for r in batch:
                        yield tables.reconciliation_values(_as_line(r), language)
                    if len(batch) < FILE_PAGE:
                        return
                    after = batch[-1].position

            return Sheet(
                t["reconciliation_sheet"], tables.reconciliation_columns(language), rows(), freeze_columns=4,
                totals_label=t["total"],
            )  # fmt: skip

        chunks = stream_table(self.sessionmaker, self.tenant_id, fmt, separator, build)
        return ReportFile(filename(f"reconciliation-{reconciliation_id}", fmt, utcnow()), MEDIA_TYPES[fmt], chunks)


def _as_line(r: Any) -> ReconciliationLine:
    return ReconciliationLine(**{name: getattr(r, name) for name in ROW_COLUMNS if name != "reconciliation_id"})
