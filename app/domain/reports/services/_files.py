"""Report files: a format chosen by ``?format=`` or ``Accept``, written as a stream from a consistent snapshot.

A file is written after the request's own transaction has ended (the response streams on), so each file
reads in a transaction of its own: REPEATABLE READ and read-only, so its columns, rows and totals all come
from one snapshot even when a sync commits half-way through a 50 000-row report.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import TENANT_KEY
from app.lib.errors import AppError
from app.lib.tabular import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Dialect, Sheet, csv_stream, xlsx_stream

Format = Literal["json", "csv", "xlsx"]
FileFormat = Literal["csv", "xlsx"]
Separator = Literal["comma", "semicolon"]
JSON_MEDIA_TYPE = "application/json"
MEDIA_TYPES = {"json": JSON_MEDIA_TYPE, "csv": CSV_MEDIA_TYPE, "xlsx": XLSX_MEDIA_TYPE}
_BY_MEDIA_TYPE = {
    JSON_MEDIA_TYPE: "json",
    "text/csv": "csv",
    XLSX_MEDIA_TYPE: "xlsx",
    "application/vnd.ms-excel": "xlsx",
}


class UnsupportedReportFormat(AppError):
    status_code = 406
    code = "not_acceptable"
    title = "Not acceptable"


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report as bytes still to be written: hand ``chunks`` to a streaming response."""

    filename: str
    media_type: str
    chunks: AsyncIterator[bytes]


def negotiate(fmt: Format | None, accept: str | None) -> Format:
    """``?format=`` wins; else the first media type of ``Accept`` we serve (by q-value); else JSON."""
    if fmt is not None:
        return fmt
    if not accept:
        return "json"
    offers: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offers.append((-q, index, media.lower()))
    for neg_q, _index, media in sorted(offers):
        if neg_q >= 0:  # q=0: "not this one"
            continue
        if media in _BY_MEDIA_TYPE:
            return _BY_MEDIA_TYPE[media]  # type: ignore[return-value]
        if media in ("*/*", "application/*", "text/*"):
            return "json" if media != "text/*" else "csv"
    raise UnsupportedReportFormat(
        "Accept names no format this report is served in (application/json, text/csv, "
        f"{XLSX_MEDIA_TYPE}); or use ?format=json|csv|xlsx.",
        errors=[{"field": "Accept", "message": "unsupported media type", "source": "header"}],
    )


def filename(stem: str, fmt: FileFormat, now: datetime) -> str:
    return f"{stem}-{now:%Y-%m-%d}.{fmt}"


@asynccontextmanager
async def snapshot_session(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID
) -> AsyncIterator[AsyncSession]:
    """A read-only REPEATABLE READ transaction scoped to the tenant (rolled back at the end: it wrote nothing)."""
    async with sessionmaker() as session:
        session.info[TENANT_KEY] = tenant_id
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})
        try:
            yield session
        finally:
            await session.rollback()


def write(sheet: Sheet, fmt: FileFormat, separator: Separator) -> AsyncIterator[bytes]:
    if fmt == "xlsx":
        return xlsx_stream([sheet])
    dialect: Dialect = separator
    return csv_stream(sheet, dialect=dialect)


async def stream_table(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    fmt: FileFormat,
    separator: Separator,
    build: Callable[[AsyncSession], Awaitable[Sheet]],
) -> AsyncIterator[bytes]:
    """Open a snapshot, build the sheet in it (its rows read lazily, page by page) and write it out.

    The rows are closed before the snapshot ends, also when the client goes away half-way: a rows generator
    reading ahead (the stock report's next page) stops its statement before the transaction is rolled back."""
    async with snapshot_session(sessionmaker, tenant_id) as session:
        sheet = await build(session)
        try:
            async for chunk in write(sheet, fmt, separator):
                yield chunk
        finally:
            close = getattr(sheet.rows, "aclose", None)
            if close is not None:
                await close()


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    """A whole file in memory (for a Telegram upload: bounded by what Telegram accepts anyway)."""
    return b"".join([chunk async for chunk in chunks])
