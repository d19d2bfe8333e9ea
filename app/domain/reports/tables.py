"""The reports as tables (``app.lib.tabular`` sheets): column headers in Russian or English, and each JSON row
turned into the cells of its table row, so every file format shows exactly what the JSON says."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from app.domain.reports.schemas import ReconciliationLine, ReportRow, RestockRow, StockByDayRow
from app.lib.tabular import Column, Marked

MARKETPLACES = {"wildberries": "Wildberries", "ozon": "Ozon"}
KINDS = {"ru": {"fbo": "склад МП", "fbs": "свой склад"}, "en": {"fbo": "marketplace", "fbs": "seller"}}

LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "stock_sheet": "Остатки",
        "by_day_sheet": "Остатки по дням",
        "restock_sheet": "Поставки",
        "reconciliation_sheet": "Сверка",
        "marketplace": "Маркетплейс",
        "brand": "Бренд",
        "subject": "Предмет",
        "vendor_code": "Артикул продавца",
        "external_id": "Артикул МП",
        "title": "Название",
        "size": "Размер",
        "size_id": "ID размера",
        "to_client": "В пути к клиенту",
        "from_client": "В пути от клиента",
        "orders": "Заказы за {days} дн",
        "stock": "Остаток",
        "days": "Дней запаса",
        "wh_stock": "Остаток",
        "wh_orders": "Заказы",
        "wh_days": "Дней",
        "total": "Итого",
        "days_out": "Дней без остатка",
        "period_orders": "Заказы за период",
        "lost_orders": "Упущенные заказы (оценка)",
        "warehouse": "Склад",
        "warehouse_kind": "Тип склада",
        "available": "Доступно",
        "orders_n": "Заказы {days} дн",
        "velocity": "Продаж в день ({days} дн)",
        "lead_time": "Срок поставки, дн",
        "safety": "Страховой запас, дн",
        "target_days": "Целевой запас, дн",
        "target_units": "Целевой остаток",
        "to_ship": "Отгрузить",
        "source": "Источник скорости",
        "note": "Примечание",
        "status": "Статус",
        "line": "Строка файла",
        "their_stock": "Остатки в кабинете",
        "our_stock": "Остатки у нас",
        "stock_diff": "Разница остатков",
        "stock_pct": "% остатки",
        "their_orders": "Заказы в кабинете",
        "our_orders": "Заказы у нас",
        "orders_diff": "Разница заказов",
        "orders_pct": "% заказы",
        "matched": "совпадает",
        "only_theirs": "только в файле",
        "only_ours": "только у нас",
        "orders_source": "заказы",
        "stock_decreases_source": "списания остатка",
        "none_source": "нет данных",
        "stock_title": "Остатки на {now} ({tz}); заказы за {days} дн по {end}",
        "by_day_title": "Остатки на конец дня ({tz}), {start} – {end}",
    },
    "en": {
        "stock_sheet": "Stock",
        "by_day_sheet": "Stock by day",
        "restock_sheet": "Restock",
        "reconciliation_sheet": "Reconciliation",
        "marketplace": "Marketplace",
        "brand": "Brand",
        "subject": "Subject",
        "vendor_code": "Vendor code",
        "external_id": "Marketplace ID",
        "title": "Title",
        "size": "Size",
        "size_id": "Size ID",
        "to_client": "In transit to customers",
        "from_client": "In transit from customers",
        "orders": "Orders, {days} d",
        "stock": "Stock",
        "days": "Days of cover",
        "wh_stock": "Stock",
        "wh_orders": "Orders",
        "wh_days": "Days",
        "total": "Total",
        "days_out": "Days out of stock",
        "period_orders": "Orders in range",
        "lost_orders": "Lost orders (estimate)",
        "warehouse": "Warehouse",
        "warehouse_kind": "Warehouse type",
        "available": "Available",
        "orders_n": "Orders {days} d",
        "velocity": "Sold per day ({days} d)",
        "lead_time": "Lead time, days",
        "safety": "Safety stock, days",
        "target_days": "Target cover, days",
        "target_units": "Target stock",
        "to_ship": "Units to ship",
        "source": "Velocity source",
        "note": "Note",
        "status": "Status",
        "line": "File line",
        "their_stock": "Cabinet stock",
        "our_stock": "Our stock",
        "stock_diff": "Stock difference",
        "stock_pct": "Stock difference, %",
        "their_orders": "Cabinet orders",
        "our_orders": "Our orders",
        "orders_diff": "Orders difference",
        "orders_pct": "Orders difference, %",
        "matched": "matched",
        "only_theirs": "only in the file",
        "only_ours": "only ours",
        "orders_source": "orders",
        "stock_decreases_source": "stock decreases",
        "none_source": "no data",
        "stock_title": "Stock at {now} ({tz}); orders over {days} days to {end}",
        "by_day_title": "End-of-day stock ({tz}), {start} – {end}",
    },
}


def labels(lang: str) -> dict[str, str]:
    return LABELS["en" if lang == "en" else "ru"]


def day_label(day: date, lang: str) -> str:
    return day.isoformat() if lang == "en" else day.strftime("%d.%m.%Y")


def mark(value: int | None, status: str | None) -> Any:
    if status == "low":
        return Marked(value, "low")
    if status == "out":
        return Marked(value, "out")
    return value


def _cover_total(stock_at: int, orders_at: int, days: int) -> Any:
    """The totals row's days of cover, from the same sums as the parts (rule 7)."""

    def derive(sums: Sequence[float | None]) -> float | None:
        stock, orders = sums[stock_at], sums[orders_at]
        if stock is None or not orders:
            return None
        return round(stock / (orders / days), 1)

    return derive


# ---- the stock report -----------------------------------------------------------------------------------


STOCK_FROZEN_COLUMNS = 5  # marketplace … marketplace id stay in view


def stock_product_keys(per: str) -> list[str]:
    keys = ["marketplace", "brand", "subject", "vendor_code", "external_id", "title"]
    return keys + (["size", "size_id"] if per == "size" else [])


def stock_columns(lang: str, per: str, days: int, groups: Sequence[str]) -> list[Column]:
    """Product columns, the totals (in transit, orders, stock, days), then per warehouse stock / orders / days."""
    t = labels(lang)
    cols = [Column(t[k], width=40 if k == "title" else None) for k in stock_product_keys(per)]
    first = len(cols)
    cols += [
        Column(t["to_client"], "int", total="sum"),
        Column(t["from_client"], "int", total="sum"),
        Column(t["orders"].format(days=days), "int", total="sum"),
        Column(t["stock"], "int", total="sum"),
    ]
    cols.append(Column(t["days"], "decimal", total=_cover_total(first + 3, first + 2, days)))
    for group in groups:
        at = len(cols)
        cols += [
            Column(t["wh_stock"], "int", group=group, total="sum"),
            Column(t["wh_orders"], "int", group=group, total="sum"),
            Column(t["wh_days"], "decimal", group=group, total=_cover_total(at, at + 1, days)),
        ]
    return cols


def stock_values(row: ReportRow, per: str, warehouse_ids: Sequence[uuid.UUID]) -> list[Any]:
    out: list[Any] = [
        MARKETPLACES.get(row.marketplace, row.marketplace),
        row.brand,
        row.subject,
        row.vendor_code,
        row.external_id,
        row.title,
    ]
    if per == "size":
        out += [row.size, row.variant_external_id]
    out += [
        row.in_way_to_client,
        row.in_way_from_client,
        row.orders,
        mark(row.total_stock, row.status),
        row.days_of_cover,
    ]
    cells = {c.warehouse_id: c for c in row.warehouses}
    for wid in warehouse_ids:
        cell = cells.get(wid)
        if cell is None:
            out += [None, None, None]
        else:
            out += [mark(cell.stock, cell.status), cell.orders, cell.days_of_cover]
    return out


# ---- stock by day ---------------------------------------------------------------------------------------


def by_day_columns(lang: str, per: str, dates: Sequence[date]) -> list[Column]:
    """The cabinet's "Остатки по дням" layout: product columns, one column per date, then the derived ones."""
    t = labels(lang)
    keys = ["vendor_code", "title", "external_id", "subject", "brand"] + (["size"] if per == "size" else [])
    cols = [Column(t[k], width=40 if k == "title" else None) for k in keys]
    cols += [Column(day_label(d, lang), "int", total="sum") for d in dates]
    cols += [
        Column(t["days_out"], "int"),
        Column(t["period_orders"], "int", total="sum"),
        Column(t["lost_orders"], "decimal", total="sum"),
    ]
    return cols


def by_day_values(row: StockByDayRow, per: str) -> list[Any]:
    out: list[Any] = [row.vendor_code, row.title, row.external_id, row.subject, row.brand]
    if per == "size":
        out.append(row.size)
    out += [Marked(v, "out") if v == 0 else v for v in row.stock]
    out += [row.days_out_of_stock, row.orders, row.lost_orders_estimate]
    return out


# ---- restock --------------------------------------------------------------------------------------------


def restock_columns(lang: str, days: int) -> list[Column]:
    t = labels(lang)
    return [
        Column(t["brand"]),
        Column(t["subject"]),
        Column(t["vendor_code"]),
        Column(t["external_id"]),
        Column(t["title"], width=40),
        Column(t["warehouse"], width=24),
        Column(t["warehouse_kind"]),
        Column(t["available"], "int", total="sum"),
        Column(t["orders_n"].format(days=7), "int", total="sum"),
        Column(t["orders_n"].format(days=14), "int", total="sum"),
        Column(t["orders_n"].format(days=30), "int", total="sum"),
        Column(t["velocity"].format(days=days), "decimal"),
        Column(t["days"], "decimal"),
        Column(t["lead_time"], "int"),
        Column(t["safety"], "int"),
        Column(t["target_days"], "int"),
        Column(t["target_units"], "int", total="sum"),
        Column(t["to_ship"], "int", total="sum"),
        Column(t["source"]),
        Column(t["note"], width=40),
    ]


def restock_values(row: RestockRow, lang: str) -> list[Any]:
    t = labels(lang)
    to_ship: Any = row.units_to_ship
    if row.units_to_ship:
        to_ship = Marked(row.units_to_ship, "out" if not row.available else "low")
    return [
        row.brand,
        row.subject,
        row.vendor_code,
        row.external_id,
        row.title,
        row.warehouse_name,
        KINDS["en" if lang == "en" else "ru"].get(row.warehouse_kind, row.warehouse_kind),
        row.available,
        row.orders_7,
        row.orders_14,
        row.orders_30,
        round(row.velocity_per_day, 2),
        row.days_of_cover,
        row.lead_time_days,
        row.safety_days,
        row.target_days,
        row.target_units,
        to_ship,
        t[f"{row.velocity_source}_source"],
        row.note,
    ]


# ---- reconciliation -------------------------------------------------------------------------------------


def reconciliation_columns(lang: str) -> list[Column]:
    t = labels(lang)
    return [
        Column(t["status"]),
        Column(t["line"], "int"),
        Column(t["vendor_code"]),
        Column(t["external_id"]),
        Column(t["title"], width=40),
        Column(t["size"]),
        Column(t["warehouse"], width=24),
        Column(t["their_stock"], "int", total="sum"),
        Column(t["our_stock"], "int", total="sum"),
        Column(t["stock_diff"], "int", total="sum"),
        Column(t["stock_pct"], "decimal"),
        Column(t["their_orders"], "int", total="sum"),
        Column(t["our_orders"], "int", total="sum"),
        Column(t["orders_diff"], "int", total="sum"),
        Column(t["orders_pct"], "decimal"),
        Column(t["note"], width=40),
    ]


def reconciliation_values(row: ReconciliationLine, lang: str) -> list[Any]:
    t = labels(lang)

    def flagged(value: int | None) -> Any:
        return Marked(value, "out") if value else value

    return [
        t[row.status],
        row.line,
        row.vendor_code,
        row.external_id,
        row.title,
        row.size,
        row.warehouse,
        row.their_stock,
        row.our_stock,
        flagged(row.stock_difference),
        row.stock_difference_pct,
        row.their_orders,
        row.our_orders,
        flagged(row.orders_difference),
        row.orders_difference_pct,
        row.note,
    ]
