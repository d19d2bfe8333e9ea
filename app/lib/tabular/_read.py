"""Reading uploaded tables back: CSV (encoding and delimiter detected) and XLSX (openpyxl, read-only).

Uploads are untrusted: an XLSX is a zip, so its declared uncompressed size is checked before anything is
parsed (a 20 MB upload must not inflate into gigabytes), and every parser failure becomes one error type.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import ParseError

MAX_UNCOMPRESSED = 256 * 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
_DELIMITERS = (";", ",", "\t")


class TabularReadError(ValueError):
    """The bytes are not a readable CSV/XLSX file (or are too large once unpacked)."""


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


class XlsxBook:
    """An uploaded workbook opened read-only; ``rows(name)`` yields (row number, values)."""

    def __init__(self, data: bytes, *, max_uncompressed: int = MAX_UNCOMPRESSED) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                unpacked = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise TabularReadError(f"not a valid XLSX file ({exc})") from None
        if unpacked > max_uncompressed:
            raise TabularReadError(f"the workbook unpacks to {unpacked} bytes, more than {max_uncompressed}")
        from openpyxl import load_workbook  # imported here: only uploads need the reader

        try:
            self._book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises KeyError, ValueError, TypeError, ParseError… on bad files
            raise TabularReadError(f"not a valid XLSX file ({type(exc).__name__})") from None

    @property
    def names(self) -> list[str]:
        return list(self._book.sheetnames)

    def rows(self, name: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
        sheet = self._book[name]
        try:
            for number, row in enumerate(sheet.iter_rows(values_only=True), 1):
                if any(v is not None and (not isinstance(v, str) or v.strip()) for v in row):
                    yield number, row
        except (ParseError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise TabularReadError(f"sheet {name!r} cannot be read ({type(exc).__name__})") from None

    def close(self) -> None:
        self._book.close()

    def __enter__(self) -> XlsxBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
