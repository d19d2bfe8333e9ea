"""Stock-report files: a 50 000-row XLSX and CSV written by our streaming writers and by the alternatives.

Each case runs in its own process so that its peak RSS is its own. Rows are generated lazily in the
stock report's shape (11 product columns, then stock / orders / days of cover per warehouse, ~10 % of the
cells highlighted as low/out, a totals row) and the output goes to a sink that only counts bytes, like a
socket. Figures: seconds, rows/s, time to the first byte, peak RSS, file size. The baseline is the naive
openpyxl workbook (normal mode, saved at the end); xlsxwriter constant_memory and openpyxl write-only are
the library candidates the hand-written writer was chosen over (docs/decisions.md).

End to end (``bench/_reports_endpoint.py``): the same report served by ``GET /api/v1/reports/stock`` from a real
API process over 50 000 products in PostgreSQL — XLSX and CSV streamed, against the JSON pages read one by one
(the same-run baseline): seconds, rows/s, time to the first byte, the API process's peak RSS.

    python -m bench.reports [--rows 50000] [--warehouses 5] [--skip-endpoint | --endpoint-only]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import peak_rss_mb, report  # noqa: E402

XLSX_CASES = ["ours", "xlsxwriter-constant-memory", "openpyxl-write-only", "openpyxl-normal"]
CSV_CASES = ["ours-comma", "ours-semicolon", "naive-in-memory"]
PRODUCT_HEADERS = [
    "Бренд", "Предмет", "Артикул продавца", "Артикул WB", "Размер", "Название",
    "В пути к клиенту", "В пути от клиента", "Заказы", "Остаток", "Дней",
]  # fmt: skip


def columns(warehouses: int) -> list[Any]:
    from app.lib.tabular import Column

    cols = [Column(h) for h in PRODUCT_HEADERS[:6]]
    cols += [Column(h, "int", total="sum") for h in PRODUCT_HEADERS[6:10]] + [Column("Дней", "decimal")]
    for w in range(warehouses):
        name = f"Склад {w + 1}"
        cols += [
            Column("Остаток", "int", group=name, total="sum"),
            Column("Заказы", "int", group=name, total="sum"),
            Column("Дней", "decimal", group=name),
        ]
    return cols


def rows(count: int, warehouses: int, *, marks: bool = True) -> Iterator[list[Any]]:
    """Cheap, deterministic rows (arithmetic, not a PRNG) so that the writers dominate the figures."""
    from app.lib.tabular import Marked

    for i in range(count):
        total = 0
        block: list[Any] = []
        for w in range(warehouses):
            stock, orders = (i * 7919 + w * 104_729) % 300, (i * 31 + w * 17) % 40
            total += stock
            cell: Any = stock
            if marks and stock < 10:
                cell = Marked(stock, "out" if stock == 0 else "low")
            block += [cell, orders, round(stock / (orders / 14), 1) if orders else None]
        yield [
            "Nordic Line", "Футболки", f"NOR-{i:06d}", str(241_000_000 + i), "M", f"Футболка хлопковая базовая {i}",
            i % 5, i % 3, i % 200, total, (i % 900) / 10, *block,
        ]  # fmt: skip


class Meter:
    """A sink that counts bytes and notes when the first one arrived."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        if data and self.first is None:
            self.first = time.perf_counter() - self.start
        self.size += len(data)


async def run_ours_xlsx(n: int, w: int, meter: Meter) -> None:
    from app.lib.tabular import Sheet, xlsx_stream

    sheet = Sheet("Остатки", columns(w), rows(n, w), freeze_columns=6, totals_label="Итого")
    async for chunk in xlsx_stream([sheet]):
        meter.write(chunk)


async def run_ours_csv(n: int, w: int, meter: Meter, dialect: Any) -> None:
    from app.lib.tabular import Sheet, csv_stream

    sheet = Sheet("Остатки", columns(w), rows(n, w), totals_label="Итого")
    async for chunk in csv_stream(sheet, dialect=dialect):
        meter.write(chunk)


def run_naive_csv(n: int, w: int, meter: Meter) -> None:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.header for c in columns(w)])
    for row in rows(n, w):
        writer.writerow([getattr(v, "value", v) for v in row])
    meter.write(("\ufeff" + buffer.getvalue()).encode())


def _plain(row: list[Any]) -> list[Any]:
    return [getattr(v, "value", v) for v in row]


def run_xlsxwriter(n: int, w: int, meter: Meter) -> None:
    import xlsxwriter

    cols = columns(w)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.xlsx")
        book = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": tmp})
        ws = book.add_worksheet("Остатки")
        header = book.add_format({"bold": True, "align": "center", "bg_color": "#D9E1F2", "border": 1})
        fmt = {"int": book.add_format({"num_format": "#,##0"}), "decimal": book.add_format({"num_format": "#,##0.0"})}
        flagged = {
            "low": book.add_format({"num_format": "#,##0", "bg_color": "#FFEB9C"}),
            "out": book.add_format({"num_format": "#,##0", "bg_color": "#FFC7CE"}),
        }
        for c, col in enumerate(cols):
            if col.group is None:
                ws.merge_range(0, c, 1, c, col.header, header)
        for c in range(11, len(cols), 3):
            ws.merge_range(0, c, 0, c + 2, cols[c].group, header)
        for c in range(11, len(cols)):
            ws.write_string(1, c, cols[c].header, header)
        ws.freeze_panes(2, 6)
        r = 2
        for row in rows(n, w):
            for c, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, tuple):  # Marked
                    ws.write_number(r, c, v[0], flagged[v[1]])
                elif isinstance(v, str):
                    ws.write_string(r, c, v)
                else:
                    ws.write_number(r, c, v, fmt.get(cols[c].kind))
            r += 1
        ws.autofilter(1, 0, r - 1, len(cols) - 1)
        book.close()
        with open(path, "rb") as f:
            while chunk := f.read(64 * 1024):
                meter.write(chunk)


def run_openpyxl(n: int, w: int, meter: Meter, write_only: bool) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    cols = columns(w)
    book = Workbook(write_only=write_only)
    ws = book.create_sheet("Остатки") if write_only else book.active
    if not write_only:
        ws.title = "Остатки"
    bold = Font(bold=True)
    fills = {"low": PatternFill("solid", fgColor="FFEB9C"), "out": PatternFill("solid", fgColor="FFC7CE")}
    ws.freeze_panes = "G3"
    top = [c.group or c.header for c in cols]
    bottom = [c.header if c.group else None for c in cols]
    ws.append(top)
    ws.append(bottom)
    count = 2
    for row in rows(n, w):
        if write_only:
            out: list[Any] = []
            for v in row:
                if isinstance(v, tuple):
                    cell = WriteOnlyCell(ws, value=v[0])
                    cell.fill = fills[v[1]]
                    out.append(cell)
                else:
                    out.append(v)
            ws.append(out)
        else:
            ws.append(_plain(row))
            count += 1
            for c, v in enumerate(row):
                if isinstance(v, tuple):
                    ws.cell(count, c + 1).fill = fills[v[1]]
    if not write_only:
        for c in range(1, 12):
            ws.cell(1, c).font = bold
            ws.merge_cells(start_row=1, start_column=c, end_row=2, end_column=c)
        for c in range(12, len(cols) + 1, 3):
            ws.merge_cells(start_row=1, start_column=c, end_row=1, end_column=c + 2)
        ws.auto_filter.ref = f"A2:{get_column_letter(len(cols))}{count}"
    buffer = io.BytesIO()
    book.save(buffer)
    meter.write(buffer.getvalue())


def one(case: str, fmt: str, n: int, w: int) -> dict[str, Any]:
    """Run one case in this process and return its figures."""
    import openpyxl  # noqa: F401
    import xlsxwriter  # noqa: F401

    import app.lib.tabular  # noqa: F401  (imports are not part of the measurement)

    rss_before = peak_rss_mb()
    meter = Meter()
    if fmt == "xlsx" and case == "ours":
        asyncio.run(run_ours_xlsx(n, w, meter))
    elif fmt == "xlsx" and case == "xlsxwriter-constant-memory":
        run_xlsxwriter(n, w, meter)
    elif fmt == "xlsx" and case.startswith("openpyxl"):
        run_openpyxl(n, w, meter, write_only=case == "openpyxl-write-only")
    elif fmt == "csv" and case.startswith("ours-"):
        asyncio.run(run_ours_csv(n, w, meter, case.removeprefix("ours-")))
    elif fmt == "csv" and case == "naive-in-memory":
        run_naive_csv(n, w, meter)
    elif case == "rows-only":  # generating the rows alone: subtracted to get each writer's own rate
        for _ in rows(n, w):
            pass
    else:
        raise SystemExit(f"unknown case {fmt}/{case}")
    seconds = time.perf_counter() - meter.start
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(n / seconds),
        "first_byte_ms": round((meter.first or seconds) * 1000, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(rss_before, 1),
        "size_mb": round(meter.size / 1e6, 2),
    }


def _run(fmt: str, case: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.reports", "--rows", str(args.rows)]
    cmd += ["--warehouses", str(args.warehouses), "--one", fmt, case]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--warehouses", type=int, default=5)
    parser.add_argument("--one", nargs=2, metavar=("FORMAT", "CASE"))
    parser.add_argument("--skip-endpoint", action="store_true", help="only the writers (no database needed)")
    parser.add_argument("--endpoint-only", action="store_true", help="only the API end to end")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[1], args.one[0], args.rows, args.warehouses)))
        return
    if args.endpoint_only:
        endpoint(args)
        return
    figures: dict[str, Any] = {"rows": args.rows, "columns": 11 + 3 * args.warehouses}
    generation = _run("gen", "rows-only", args)["seconds"]
    figures["generating the rows alone"] = f"{generation:.2f} s (subtracted for 'writer rows/s')"
    for fmt, cases in (("xlsx", XLSX_CASES), ("csv", CSV_CASES)):
        for case in cases:
            result = _run(fmt, case, args)
            result["writer_rows_per_s"] = round(args.rows / max(1e-9, result["seconds"] - generation))
            figures[f"{fmt} {case}"] = (
                f"{result['seconds']:.2f} s, {result['rows_per_s']:,} rows/s (writer alone "
                f"{result['writer_rows_per_s']:,}), first byte {result['first_byte_ms']} ms, "
                f"peak RSS {result['peak_rss_mb']} MB (start {result['rss_before_mb']}), {result['size_mb']} MB"
            )
            figures[f"_{fmt}_{case}"] = result
    base = figures["_xlsx_openpyxl-normal"]["seconds"]
    figures["xlsx speed-up vs openpyxl normal"] = f"{base / figures['_xlsx_ours']['seconds']:.1f}x"
    report("reports", {k: v for k, v in figures.items() if not k.startswith("_")})
    if not args.skip_endpoint:
        endpoint(args)


def endpoint(args: argparse.Namespace) -> None:
    from bench._reports_endpoint import run

    figures = run(args.rows)
    report("reports-endpoint", {k: v for k, v in figures.items() if not k.startswith("_")})


if __name__ == "__main__":
    main()
