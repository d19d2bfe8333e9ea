"""What the report endpoints share: the file response, the multi-format 200 in the OpenAPI document, and the
query parameters every report takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Response
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.params import Parameter
from litestar.response import Stream

from app.domain.reports.services import ReportFile
from app.lib.tabular import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE

FormatParam = Annotated[
    Literal["json", "csv", "xlsx"] | None,
    Parameter(query="format", description="json, csv or xlsx; without it the Accept header decides (JSON by default)"),
]
LangParam = Annotated[
    Literal["ru", "en"] | None, Parameter(description="Column headers' language (default: the organization's locale)")
]
SeparatorParam = Annotated[
    Literal["comma", "semicolon"],
    Parameter(description="CSV only: `semicolon` for Russian-locale Excel (`;` between fields, `,` in decimals)"),
]
SearchParam = Annotated[str | None, Parameter(max_length=200)]
NameParam = Annotated[str | None, Parameter(max_length=300)]
CursorParam = Annotated[str | None, Parameter(max_length=200)]
LimitParam = Annotated[int, Parameter(ge=1, le=1000)]


def file_response(report: ReportFile) -> Response[Any]:
    """A streamed download (the body is written as it is read; nothing holds the whole file)."""
    headers = {
        "Content-Disposition": f'attachment; filename="{report.filename}"',
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return Stream(report.chunks, media_type=report.media_type, headers=headers)


@dataclass
class TabularOperation(Operation):
    """The 200 of a report in all three formats: the JSON schema, plus CSV text and an XLSX workbook."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = dict(ok.content or {})
            ok.content[CSV_MEDIA_TYPE] = OpenAPIMediaType(
                schema=Schema(type="string", description="UTF-8 with a BOM; `separator` picks `,` or `;`")  # type: ignore[arg-type]
            )
            ok.content[XLSX_MEDIA_TYPE] = OpenAPIMediaType(
                schema=Schema(type="string", format="binary", description="An Excel workbook")  # type: ignore[arg-type]
            )


@dataclass
class FileOperation(Operation):
    """A 200 that is only a file (CSV or XLSX)."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                CSV_MEDIA_TYPE: OpenAPIMediaType(schema=Schema(type="string")),  # type: ignore[arg-type]
                XLSX_MEDIA_TYPE: OpenAPIMediaType(schema=Schema(type="string", format="binary")),  # type: ignore[arg-type]
            }
