"""Reading uploaded tables back: CSV (encoding and delimiter detected) and XLSX (``_xlsxread``).

Uploads are untrusted: an XLSX is a zip, so its declared uncompressed size is checked before anything is
parsed (a 20 MB upload must not inflate into gigabytes), and every parser failure becomes one error type.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from app.lib.tabular._xlsxread import TabularReadError, XlsxBook

MAX_UNCOMPRESSED = 256 * 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
_DELIMITERS = (";", ",", "\t")


def is_xlsx(data: bytes) -> bool:
    return data[:4] == ZIP_MAGIC


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without a BOM); a file re-saved by Russian Excel is Windows-1251."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1251")
    except UnicodeDecodeError:
        raise TabularReadError("the file is neither UTF-8 nor Windows-1251 text") from None


def sniff_delimiter(text: str, sample_lines: int = 10) -> str:
    """The delimiter that splits the first lines into the most fields (`;`, `,` or tab)."""
    sample = text.splitlines()[:sample_lines]
    best, best_fields = ",", 1
    for delimiter in _DELIMITERS:
        fields = max((len(row) for row in csv.reader(sample, delimiter=delimiter)), default=0)
        if fields > best_fields:
            best, best_fields = delimiter, fields
    return best


def read_csv(data: bytes, delimiter: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, fields) for every record; blank lines are skipped."""
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or sniff_delimiter(text), strict=True)
    line = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield line, row
            line = reader.line_num + 1
    except csv.Error as exc:
        raise TabularReadError(f"line {reader.line_num}: {exc}") from None


def open_xlsx(data: bytes, *, max_uncompressed: int = MAX_UNCOMPRESSED) -> XlsxBook:
    """An uploaded workbook, its declared unpacked size checked first."""
    return XlsxBook(data, max_uncompressed=max_uncompressed)


__all__ = ["MAX_UNCOMPRESSED", "TabularReadError", "XlsxBook", "decode_text", "is_xlsx", "open_xlsx", "read_csv"]
