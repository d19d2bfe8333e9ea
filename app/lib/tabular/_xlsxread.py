"""A streaming XLSX reader on the standard library (zipfile + ElementTree.iterparse): values only.

Reads what uploads need — sheet names, cell values (shared and inline strings, numbers, booleans, dates by
their number format, ISO dates), row numbers — about 3x faster than openpyxl's read-only mode, with rows
cleared as soon as they are yielded. Formulas give their cached value; formats, merges and the rest are
ignored. Any structural problem is a ``TabularReadError``.
"""

from __future__ import annotations

import datetime as dt
import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from typing import IO, Any, Literal
from xml.etree.ElementTree import Element, ParseError, iterparse

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
STRICT = "{http://purl.oclc.org/ooxml/spreadsheetml/main}"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_BUILTIN_DATES = set(range(14, 23)) | set(range(27, 37)) | {45, 46, 47} | set(range(50, 59))
_QUOTED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')
_CELL_REF = re.compile(r"([A-Z]+)(\d*)")


class TabularReadError(ValueError):
    """The bytes are not a readable CSV/XLSX file (or are too large once unpacked)."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _column(ref: str) -> int | None:
    match = _CELL_REF.match(ref)
    if match is None:
        return None
    n = 0
    for ch in match.group(1):
        n = n * 26 + ord(ch) - 64
    return n - 1


def _is_date_format(code: str) -> bool:
    text = _QUOTED.sub("", code).lower()
    return text not in ("general", "") and any(ch in text for ch in "dmyhs")


class XlsxBook:
    """An uploaded workbook; ``rows(name)`` yields (1-based row number, values) for non-blank rows."""

    def __init__(self, data: bytes, *, max_uncompressed: int) -> None:
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise TabularReadError(f"not a valid XLSX file ({exc})") from None
        unpacked = sum(info.file_size for info in infos)
        if unpacked > max_uncompressed:
            raise TabularReadError(f"the workbook unpacks to {unpacked} bytes, more than {max_uncompressed}")
        try:
            self._sheets, shared_path, styles_path, self._date1904 = self._workbook()
            self._shared = self._shared_strings(shared_path)
            self._date_styles = self._styles(styles_path)
        except (KeyError, ParseError, ValueError, zipfile.BadZipFile) as exc:
            raise TabularReadError(f"not a valid XLSX file ({type(exc).__name__})") from None

    # ---- package parts ----------------------------------------------------------------------------------

    def _open(self, path: str) -> _NoDoctype:
        return _NoDoctype(self._zip.open(path))

    def _workbook(self) -> tuple[dict[str, str], str | None, str | None, bool]:
        rels: dict[str, tuple[str, str]] = {}
        with self._open("xl/_rels/workbook.xml.rels") as f:
            for _event, el in _parse(f):
                if _local(el.tag) == "Relationship":
                    target = el.get("Target", "")
                    path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
                    rels[el.get("Id", "")] = (el.get("Type", "").rsplit("/", 1)[-1], path)
        sheets: dict[str, str] = {}
        date1904 = False
        with self._open("xl/workbook.xml") as f:
            for _event, el in _parse(f):
                name = _local(el.tag)
                if name == "sheet":
                    rid = el.get(f"{REL}id") or el.get("{http://purl.oclc.org/ooxml/officeDocument/relationships}id")
                    if rid in rels:
                        sheets[el.get("name", "")] = rels[rid][1]
                elif name == "workbookPr":
                    date1904 = el.get("date1904", "0") in ("1", "true")
        by_type = {kind: path for kind, path in rels.values()}
        return sheets, by_type.get("sharedStrings"), by_type.get("styles"), date1904

    def _shared_strings(self, path: str | None) -> list[str]:
        if path is None or path not in self._zip.namelist():
            return []
        out: list[str] = []
        with self._open(path) as f:
            for _event, el in _parse(f):
                if _local(el.tag) == "si":
                    out.append(_text_of(el))
                    el.clear()
        return out

    def _styles(self, path: str | None) -> set[int]:
        if path is None or path not in self._zip.namelist():
            return set()
        custom: dict[int, str] = {}
        formats: list[int] = []
        in_cell_xfs = False
        with self._open(path) as f:
            for event, el in _parse(f, ("start", "end")):
                name = _local(el.tag)
                if name == "cellXfs":
                    in_cell_xfs = event == "start"
                elif event == "end" and name == "numFmt":
                    custom[int(el.get("numFmtId", "0"))] = el.get("formatCode", "")
                elif event == "end" and name == "xf" and in_cell_xfs:
                    formats.append(int(el.get("numFmtId", "0")))
        return {
            i
            for i, fmt in enumerate(formats)
            if fmt in _BUILTIN_DATES or (fmt in custom and _is_date_format(custom[fmt]))
        }

    # ---- public -----------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self._sheets)

    def rows(self, name: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
        path = self._sheets.get(name)
        if path is None:
            raise TabularReadError(f"no sheet {name!r}")
        try:
            with self._open(path) as f:
                yield from self._rows(f)
        except (ParseError, KeyError, ValueError, IndexError, zipfile.BadZipFile) as exc:
            raise TabularReadError(f"sheet {name!r} cannot be read ({type(exc).__name__})") from None

    def _rows(self, f: _NoDoctype) -> Iterator[tuple[int, tuple[Any, ...]]]:
        number = 0
        row_tags = {f"{MAIN}row", f"{STRICT}row"}
        ns = ""  # the sheet's namespace, taken from its first row: tags are compared whole, not split
        for _event, el in _parse(f):
            if el.tag not in row_tags:
                continue
            if not ns:
                ns = el.tag[: el.tag.index("}") + 1]
            r = el.get("r")
            number = int(r) if r else number + 1
            values: list[Any] = []
            cell_tag, value_tag, inline_tag = ns + "c", ns + "v", ns + "is"
            for cell in el:
                if cell.tag != cell_tag:
                    continue
                ref = cell.get("r")
                if ref is not None:
                    column = _column(ref)
                    if column is not None and column > len(values):
                        values.extend([None] * (column - len(values)))
                kind = cell.get("t")
                if kind is None or kind == "n":
                    v = cell.find(value_tag)
                    values.append(None if v is None or v.text is None else self._number(v.text, cell.get("s")))
                elif kind == "inlineStr":
                    inline = cell.find(inline_tag)
                    values.append(None if inline is None else _text_of(inline))
                else:
                    v = cell.find(value_tag)
                    values.append(None if v is None or v.text is None else self._typed(kind, v.text))
            el.clear()
            for v in values:
                if v is not None and (type(v) is not str or v.strip()):
                    yield number, tuple(values)
                    break

    def _number(self, raw: str, style: str | None) -> Any:
        number: float | int = float(raw) if "." in raw or "e" in raw or "E" in raw else int(raw)
        if style is not None and int(style) in self._date_styles:
            epoch = dt.datetime(1904, 1, 1) if self._date1904 else dt.datetime(1899, 12, 30)
            return epoch + dt.timedelta(days=float(number))
        return number

    def _typed(self, kind: str, raw: str) -> Any:
        if kind == "s":
            return self._shared[int(raw)]
        if kind == "str":
            return raw
        if kind == "b":
            return raw.strip() in ("1", "true")
        if kind == "d":
            return dt.datetime.fromisoformat(raw.strip())
        return None  # "e": an error value such as #DIV/0!

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> XlsxBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(part: _NoDoctype, events: tuple[Literal["start", "end"], ...] = ("end",)) -> Iterator[tuple[str, Element]]:
    return iterparse(part, events=events)  # noqa: S314  (the part cannot carry a DTD: see _NoDoctype)


class _NoDoctype:
    """A part's byte stream that refuses a DOCTYPE (no OOXML part has one): with no DTD there are no entity
    definitions, so neither entity expansion ("billion laughs") nor external entities can happen. A DTD can
    only stand before the root element, so the prolog is all that is checked."""

    PROLOG = 64 * 1024

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        head = raw.read(self.PROLOG)
        root = re.search(rb"<[A-Za-z_]", head)
        if b"<!DOCTYPE" in (head if root is None else head[: root.start()]):
            raise ParseError("a DOCTYPE in a workbook part")
        if root is None and len(head) == self.PROLOG:
            raise ParseError("no root element in the first 64 KB")
        self._head = head

    def read(self, size: int = -1) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        return self._raw.read(size)

    def __enter__(self) -> _NoDoctype:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()


def _text_of(node: Element) -> str:
    """The text of a shared or inline string: its <t>, or the <t> of each rich-text run (never <rPh>)."""
    parts: list[str] = []
    for child in node:
        name = _local(child.tag)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return "".join(parts)
