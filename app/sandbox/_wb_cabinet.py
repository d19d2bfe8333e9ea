"""`GET /control/sellers/{id}/cabinet-export?format=csv|xlsx&from=&to=`: the WB cabinet's "История
остатков" export for a simulated seller, its own truth in the cabinet's format and column headers.

Rows mirror what the sandbox's own APIs say at the same instant, so a tracker that synced just before
reconciles to zero differences:
- stock rows come from the stock APIs: FBW under "Склад WB" (the aggregate `wb-warehouses` returns), the
  seller's warehouses summed under the cabinet's "Маркетплейс" pseudo-warehouse;
- "Заказали шт" counts order lines placed on the period's days (Moscow time), cancelled ones included,
  under the warehouse the order feed names: FBW lines under their shipping warehouse (stock 0 there, as
  the cabinet prints a row it has no stock for), FBS lines under "Маркетплейс";
- "Остатки по дням" is each article × size's end-of-day stock over all warehouses, worked out backwards
  from the current stock through the simulator's stock log.
The other columns are derived from the same figures (sums at the discounted price, turnover as "Nд Mч").
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response, get
from litestar.response import Stream

from app.lib.tabular import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Column, Sheet, csv_stream, xlsx_stream
from app.sandbox._catalog import NO_ROW
from app.sandbox._gate import to_response
from app.sandbox._names import BRANDS, SUBJECTS
from app.sandbox._replies import problem
from app.sandbox._seller import Sandbox, Seller
from app.sandbox._timeutil import MSK
from app.sandbox._wb_content import title_of
from app.sandbox._wb_orders import order_line

TITLE = "Остатки по КТ по размерам"
MARKETPLACE = "Маркетплейс"
MAX_DAYS = 31
MONTHS = (
    "январь", "февраль", "март", "апрель", "май", "июнь",
    "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
)  # fmt: skip
PRODUCT_HEADERS = ["Артикул продавца", "Название", "Артикул WB", "Предмет", "Бренд", "Размер"]


def detail_headers(month: str) -> list[str]:
    return [
        *PRODUCT_HEADERS, "Регион", "Склад", "Доступность", "Заказали шт", "Заказали на сумму ₽",
        "Выкупили шт", "Выкупили на сумму ₽", "Процент выкупа", f"Заказы в среднем за {month} шт",
        "Общее среднее кол-во заказов шт", "Остатки на текущий день шт", "Стоимость остатков на текущий день ₽",
        "Оборачиваемость текущих остатков", "Оборачиваемость средних остатков", "В пути к клиенту шт",
        "В пути от клиента шт", "Текущая цена с учетом скидок ₽", "Время отсутствия товара на складе",
        "Упущенные заказы шт", "Сумма упущенных заказов ₽", "Упущенные выкупы шт", "Сумма упущенных выкупов ₽",
    ]  # fmt: skip


METRICS = [
    ("Заказали шт", "Заказы, оформленные за период (с отменёнными)"),
    ("Выкупили шт", "Заказы за период, доставленные покупателю и не отменённые"),
    ("Остатки на текущий день шт", "Остаток на складе на момент выгрузки"),
    ("Оборачиваемость текущих остатков", "Остаток ÷ среднее число заказов в день, в днях и часах"),
    ("Время отсутствия товара на складе", "Дни периода, закончившиеся с нулевым остатком"),
]


@dataclass(slots=True)
class _Orders:
    count: int = 0
    amount: float = 0.0
    bought: int = 0
    bought_amount: float = 0.0


@dataclass(slots=True)
class _Snapshot:
    """Everything the export reads, copied at one instant (the stream must not see a later `advance`)."""

    dates: list[dt.date]
    quantity: list[list[int]]
    pending: list[list[int] | None]
    returning: list[list[int] | None]
    orders: dict[tuple[int, str], _Orders]
    order_places: dict[int, set[str]]  # variant → warehouse names its orders were placed under
    month_orders: dict[int, int]
    day_stock: dict[int, list[int]] = field(default_factory=dict)  # variant → end-of-day total per date
    row_zero_days: dict[tuple[int, str], int] = field(default_factory=dict)


def _period(seller: Seller, request: Request) -> tuple[dt.date, dt.date] | str:
    today = dt.datetime.fromtimestamp(seller.now, MSK).date()
    try:
        raw_to, raw_from = request.query_params.get("to"), request.query_params.get("from")
        end = dt.date.fromisoformat(raw_to) if raw_to else today
        start = dt.date.fromisoformat(raw_from) if raw_from else end - dt.timedelta(days=6)
    except ValueError:
        return "from/to must be dates (YYYY-MM-DD)"
    if start > end:
        return "from is after to"
    if end > today:
        return f"to is after the seller's today ({today.isoformat()})"
    if (end - start).days + 1 > MAX_DAYS:
        return f"the period is longer than {MAX_DAYS} days"
    return start, end


def _day_end(day: dt.date) -> float:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), MSK).timestamp()


def _snapshot(seller: Seller, start: dt.date, end: dt.date) -> _Snapshot:
    cat, book, now = seller.catalog, seller.sim.orders, seller.now
    dates = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    snap = _Snapshot(
        dates=dates,
        quantity=[list(column) for column in cat.quantity],
        pending=[list(c) if c is not None else None for c in cat.pending],
        returning=[list(c) if c is not None else None for c in cat.returning],
        orders=defaultdict(_Orders),
        order_places=defaultdict(set),
        month_orders=defaultdict(int),
    )
    begin = dt.datetime.combine(start, dt.time(), MSK).timestamp()
    for o in book.placed_between(begin, _day_end(end)):
        line = order_line(seller, o)
        v = book.variant[o]
        kind = cat.warehouses[book.warehouse[o]].kind
        place = line.warehouseName if kind == "fbw" else MARKETPLACE
        snap.order_places[v].add(place)
        agg = snap.orders[(v, place)]
        agg.count += 1
        agg.amount += line.priceWithDisc
        if not line.isCancel and book.deliver[o] <= now:
            agg.bought += 1
            agg.bought_amount += line.priceWithDisc
    for o in book.placed_between(_day_end(end) - 30 * 86400, _day_end(end)):
        snap.month_orders[book.variant[o]] += 1
    _rebuild_days(seller, snap)
    return snap


def _rebuild_days(seller: Seller, snap: _Snapshot) -> None:
    """End-of-day stock per variant (all warehouses) and zero-stock days per export row, backwards from now."""
    cat, log = seller.catalog, seller.sim.stock_log
    ends = [_day_end(d) for d in snap.dates]
    after: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * len(ends))
    for i in range(len(log.ts)):
        t = log.ts[i]
        if t < ends[0]:
            continue
        key = (log.variant[i], log.warehouse[i])
        for j, e in enumerate(ends):  # a change at or after day j's end is not in day j's figure
            if t >= e:
                after[key][j] += log.delta[i]
    for v in range(cat.n_variants):
        totals = [0] * len(ends)
        rows: dict[str, list[int]] = {}
        for wh in cat.warehouses:
            current = snap.quantity[wh.index][v]
            shift = after.get((v, wh.index))
            if current == NO_ROW and shift is None:
                continue
            current = max(0, current)
            days = [current - (shift[j] if shift else 0) for j in range(len(ends))]
            totals = [a + b for a, b in zip(totals, days, strict=True)]
            name = wh.name if wh.kind == "fbw" else MARKETPLACE
            rows[name] = [a + b for a, b in zip(rows.get(name, [0] * len(ends)), days, strict=True)]
        snap.day_stock[v] = totals
        for name, days in rows.items():
            snap.row_zero_days[(v, name)] = sum(1 for q in days if q <= 0)


def _duration(days: float | None) -> str:
    if days is None:
        return "-"
    hours = round(days * 24)
    return f"{hours // 24}д {hours % 24}ч"


def _availability(cover: float | None, ordered: int) -> str:
    if not ordered or cover is None:
        return "Не рассчитано"
    if cover < 7:
        return "Дефицит"
    if cover < 30:
        return "Актуальный"
    if cover < 60:
        return "Баланс"
    return "Неактуальный" if cover < 120 else "Неликвид"


def _detail_rows(seller: Seller, snap: _Snapshot) -> Iterator[list[Any]]:
    cat = seller.catalog
    n_days = len(snap.dates)
    fbs = [wh.index for wh in cat.warehouses if wh.kind == "fbs"]
    for p in range(cat.n_products):
        nm = cat.product_ids[p]
        subject = SUBJECTS[cat.subject[p]]
        price = round(cat.price[p] * (100 - (10 + nm % 41)) / 100, 2)
        common = [cat.offer_id(p), title_of(cat, p), nm, subject.name, BRANDS[cat.brand[p]]]
        for v in cat.variants_of(p):
            size = subject.sizes[cat.variant_size[v]][0]
            places: dict[str, tuple[int | None, int, int, str]] = {}  # name → (stock, to client, from client, region)
            for wh in cat.warehouses:
                q = snap.quantity[wh.index][v]
                if wh.kind == "fbw" and q != NO_ROW:
                    to_c, from_c = snap.pending[wh.index], snap.returning[wh.index]
                    places[wh.name] = (q, to_c[v] if to_c else 0, from_c[v] if from_c else 0, wh.region)
            fbs_rows = [snap.quantity[w][v] for w in fbs if snap.quantity[w][v] != NO_ROW]
            if fbs_rows or (v, MARKETPLACE) in snap.orders:
                places[MARKETPLACE] = (sum(fbs_rows), 0, 0, "")
            for name in snap.order_places.get(v, ()):
                places.setdefault(name, (None, 0, 0, ""))
            for name in sorted(places):
                stock, to_client, from_client, region = places[name]
                agg = snap.orders.get((v, name)) or _Orders()
                avg = agg.count / n_days
                cover = (stock or 0) / avg if avg else None
                zero_days = snap.row_zero_days.get((v, name)) if stock is not None else None
                lost = round((zero_days or 0) * avg, 2)
                buyout = round(100 * agg.bought / agg.count) if agg.count else 0
                yield [
                    *common, size, region, name, _availability(cover, agg.count), agg.count, round(agg.amount, 2),
                    agg.bought, round(agg.bought_amount, 2), buyout, round(snap.month_orders[v] / 30, 2),
                    round(avg, 2), stock or 0, round((stock or 0) * price, 2), _duration(cover),
                    _duration(_average_cover(snap, v, avg)), to_client, from_client, price,
                    _duration(zero_days) if zero_days is not None else "-", lost, round(lost * price, 2),
                    round(lost * buyout / 100, 2), round(lost * buyout / 100 * price, 2),
                ]  # fmt: skip


def _average_cover(snap: _Snapshot, v: int, avg: float) -> float | None:
    days = snap.day_stock.get(v)
    return sum(days) / len(days) / avg if days and avg else None


def _by_day_rows(seller: Seller, snap: _Snapshot) -> Iterator[list[Any]]:
    cat = seller.catalog
    for p in range(cat.n_products):
        subject = SUBJECTS[cat.subject[p]]
        common = [cat.offer_id(p), title_of(cat, p), cat.product_ids[p], subject.name, BRANDS[cat.brand[p]]]
        for v in cat.variants_of(p):
            days = snap.day_stock.get(v)
            if days is not None:
                yield [*common, subject.sizes[cat.variant_size[v]][0], *days]


def _kind(header: str) -> Any:
    if header.endswith("₽") or header.startswith(("Процент", "Заказы в среднем", "Общее среднее", "Упущенные")):
        return "decimal"
    return "int" if header.endswith("шт") or header == "Артикул WB" else "text"


def workbook(seller: Seller, snap: _Snapshot, start: dt.date, end: dt.date) -> list[Sheet]:
    month = MONTHS[end.month - 1]
    detail = [Column(h, _kind(h)) for h in detail_headers(month)]
    span = f"{start:%d.%m.%Y} - {end:%d.%m.%Y}"
    info = [["Период", span], ["Склады", "Все"], ["Бренды", "Все"], ["Предметы", "Все"]]
    info.append(["Дата формирования", dt.datetime.fromtimestamp(seller.now, MSK).strftime("%d.%m.%Y %H:%M")])
    by_day = [Column(h) for h in PRODUCT_HEADERS] + [Column(f"{d:%d.%m.%Y}", "int") for d in snap.dates]
    return [
        Sheet("Общая информация", [Column("Параметр"), Column("Значение")], info, autofilter=False),
        Sheet("Метрики", [Column("Метрика"), Column("Описание")], [list(m) for m in METRICS], autofilter=False),
        Sheet("Остатки по дням", by_day, _by_day_rows(seller, snap), freeze_columns=1),
        Sheet("Детальная информация", detail, _detail_rows(seller, snap), title=[TITLE], freeze_columns=1),
    ]


@get("/control/sellers/{seller_id:str}/cabinet-export")
async def cabinet_export(seller_id: str, request: Request, sandbox: Sandbox) -> Response[Any]:
    seller = sandbox.sellers.get(seller_id)
    if seller is None:
        return to_response(problem(404, f"No seller {seller_id!r}"))
    if seller.marketplace != "wildberries":
        return to_response(problem(409, "The cabinet stock-history export exists for Wildberries sellers only"))
    fmt = request.query_params.get("format", "xlsx")
    if fmt not in ("csv", "xlsx"):
        return to_response(problem(422, "format must be csv or xlsx"))
    period = _period(seller, request)
    if isinstance(period, str):
        return to_response(problem(422, period))
    start, end = period
    snap = _snapshot(seller, start, end)
    name = f"stock-history-{start:%Y%m%d}-{end:%Y%m%d}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        sheet = workbook(seller, snap, start, end)[-1]
        stream = csv_stream(sheet, guard_formulas=False)
        return Stream(stream, media_type=CSV_MEDIA_TYPE, headers=headers)
    return Stream(xlsx_stream(workbook(seller, snap, start, end)), media_type=XLSX_MEDIA_TYPE, headers=headers)


ROUTES = [cabinet_export]
