"""The fixed parts of an XLSX package (content types, relationships, styles, workbook) and XML helpers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from app.lib.tabular._model import Kind

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

KINDS: tuple[Kind, ...] = ("text", "int", "decimal", "date")
ROLES = ("body", "total", "low", "out")
HEADER_STYLE = 1
TITLE_STYLE = 2
_FIRST_CELL_STYLE = 3

# numFmtId per kind: 49 "@", 3 "#,##0", custom 164 "#,##0.0", custom 165 "dd.mm.yyyy"
_NUM_FMT = {"text": 49, "int": 3, "decimal": 164, "date": 165}
# fills: 0 none, 1 gray125 (both required by Excel), 2 header, 3 low, 4 out, 5 totals
_ROLE_FILL = {"body": 0, "total": 5, "low": 3, "out": 4}
_ROLE_FONT = {"body": 0, "total": 1, "low": 0, "out": 2}

_SPECIAL = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_BAD_SHEET_CHARS = set("[]:*?/\\")


def style_id(kind: Kind, role: str) -> int:
    """The cellXfs index of a body/total/low/out cell of one kind."""
    return _FIRST_CELL_STYLE + KINDS.index(kind) * len(ROLES) + ROLES.index(role)


def needs_escape(value: str) -> bool:
    return _SPECIAL.search(value) is not None


def escape_text(value: str) -> str:
    """Escape for XML text content; characters XML 1.0 cannot carry are dropped."""
    if _SPECIAL.search(value) is None:
        return value
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _ILLEGAL.sub("", value)


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def check_sheet_names(names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if not 1 <= len(name) <= 31 or _BAD_SHEET_CHARS & set(name) or name.startswith("'") or name.endswith("'"):
            raise ValueError(f"invalid sheet name {name!r}: 1-31 characters, none of []:*?/\\ and no edge quotes")
        if name.casefold() in seen:
            raise ValueError(f"duplicate sheet name {name!r}")
        seen.add(name.casefold())


def content_types(sheets: int) -> str:
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, sheets + 1)
    )
    return (
        XML_DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{overrides}</Types>"
    )


def root_rels() -> str:
    return (
        XML_DECL + f'<Relationships xmlns="{PKG_REL_NS}">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    )


def workbook_rels(sheets: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, sheets + 1)
    )
    return (
        XML_DECL + f'<Relationships xmlns="{PKG_REL_NS}">{rels}'
        f'<Relationship Id="rId{sheets + 1}" Type="{REL_NS}/styles" Target="styles.xml"/></Relationships>'
    )


def workbook(names: Sequence[str], filters: Sequence[str | None]) -> str:
    """workbook.xml; ``filters`` holds each sheet's autofilter range (A1 form) or None."""
    sheets = "".join(f'<sheet name={quoteattr(name)} sheetId="{i}" r:id="rId{i}"/>' for i, name in enumerate(names, 1))
    defined = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{escape_text(quote_sheet(names[i]))}!{absolute(ref)}</definedName>"
        for i, ref in enumerate(filters)
        if ref
    )
    return (
        XML_DECL + f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        '<bookViews><workbookView activeTab="0"/></bookViews>'
        f"<sheets>{sheets}</sheets>" + (f"<definedNames>{defined}</definedNames>" if defined else "") + "</workbook>"
    )


def quote_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def absolute(ref: str) -> str:
    """A1:C9 → $A$1:$C$9."""
    return ":".join(re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", part) for part in ref.split(":"))


def styles() -> str:
    fonts = (
        '<fonts count="3">'
        '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
        '<font><sz val="11"/><color rgb="FF9C0006"/><name val="Calibri"/><family val="2"/></font>'
        "</fonts>"
    )
    solid = '<fill><patternFill patternType="solid"><fgColor rgb="{}"/><bgColor indexed="64"/></patternFill></fill>'
    fills = (
        '<fills count="6"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill>'
        + solid.format("FFD9E1F2")
        + solid.format("FFFFEB9C")
        + solid.format("FFFFC7CE")
        + solid.format("FFF2F2F2")
        + "</fills>"
    )
    thin = '<{0} style="thin"><color indexed="64"/></{0}>'
    borders = (
        '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
        f"<border>{thin.format('left')}{thin.format('right')}{thin.format('top')}{thin.format('bottom')}"
        "<diagonal/></border></borders>"
    )
    xfs = [
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
        '<xf numFmtId="49" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" '
        'applyBorder="1" applyAlignment="1"><alignment horizontal="center" vertical="center" wrapText="1"/></xf>',
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>',
    ]
    for kind in KINDS:
        for role in ROLES:
            xfs.append(
                f'<xf numFmtId="{_NUM_FMT[kind]}" fontId="{_ROLE_FONT[role]}" fillId="{_ROLE_FILL[role]}" '
                'borderId="0" xfId="0" applyNumberFormat="1" applyFont="1" applyFill="1"/>'
            )
    return (
        XML_DECL + f'<styleSheet xmlns="{MAIN_NS}">'
        '<numFmts count="2"><numFmt numFmtId="164" formatCode="#,##0.0"/>'
        '<numFmt numFmtId="165" formatCode="dd.mm.yyyy"/></numFmts>'
        f"{fonts}{fills}{borders}"
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )
