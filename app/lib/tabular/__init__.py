"""Tables in and out: streaming XLSX and CSV writers, a grid for one-request targets, upload readers.

Writers take a ``Sheet`` (columns + rows of plain values, ``Marked`` for highlighted cells) and yield
bytes as they are produced; nothing holds the whole file. Headers come from the caller (ru/en).
"""

from app.lib.tabular._delimited import Dialect, csv_stream
from app.lib.tabular._grid import Grid, plain, to_grid
from app.lib.tabular._model import Column, Flag, HeaderLayout, Kind, Marked, Sheet, flat_headers, header_layout
from app.lib.tabular._read import (
    TabularReadError,
    XlsxBook,
    decode_text,
    is_xlsx,
    open_xlsx,
    read_csv,
    sniff_delimiter,
)
from app.lib.tabular._xlsx import xlsx_stream

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv"  # frameworks add "; charset=utf-8" for text types

__all__ = [
    "CSV_MEDIA_TYPE",
    "XLSX_MEDIA_TYPE",
    "Column",
    "Dialect",
    "Flag",
    "Grid",
    "HeaderLayout",
    "Kind",
    "Marked",
    "Sheet",
    "TabularReadError",
    "XlsxBook",
    "csv_stream",
    "decode_text",
    "flat_headers",
    "header_layout",
    "is_xlsx",
    "open_xlsx",
    "plain",
    "read_csv",
    "sniff_delimiter",
    "to_grid",
    "xlsx_stream",
]
