"""Google Sheets v4 over httpx with a service account: token (JWT-bearer grant, cached), calls, retries.

A push is one ``spreadsheets.get`` (find the sheet), one formatting ``spreadsheets.batchUpdate`` (size,
frozen panes, merges, formats, highlights; ``addSheet`` first when the sheet is missing) and one
``values.batchUpdate`` with the whole grid — never cell by cell. 429, 5xx and network failures are
retried with backoff (``Retry-After`` honoured); a 401 refreshes the token once; a refused grant raises
``SheetsGrantRevoked``. The private key and tokens never appear in errors or logs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import jwt
import msgspec
import structlog

from app.integrations.marketplace import Retry
from app.integrations.sheets._account import parse_service_account
from app.integrations.sheets._errors import (
    SheetsCredentialsError,
    SheetsError,
    SheetsGrantRevoked,
    SheetsNotFound,
    SheetsPermissionDenied,
    SheetsUnavailable,
)
from app.integrations.sheets._format import format_requests
from app.lib.tabular import Grid

log = structlog.get_logger(__name__)

T = TypeVar("T")
SCOPE = "https://www.googleapis.com/auth/spreadsheets"
DEFAULT_API_BASE = "https://sheets.googleapis.com"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_SKEW = 60.0  # a cached token is dropped this long before Google says it expires
RETRYABLE = {429, 500, 502, 503, 504}


class GridProperties(msgspec.Struct):
    rowCount: int = 0
    columnCount: int = 0
    frozenRowCount: int = 0
    frozenColumnCount: int = 0


class SheetProperties(msgspec.Struct):
    sheetId: int
    title: str
    index: int = 0
    gridProperties: GridProperties = msgspec.field(default_factory=GridProperties)


class SheetInfo(msgspec.Struct):
    properties: SheetProperties


class Spreadsheet(msgspec.Struct):
    spreadsheetId: str
    sheets: list[SheetInfo] = msgspec.field(default_factory=list)

    def sheet(self, title: str) -> SheetProperties | None:
        return next((s.properties for s in self.sheets if s.properties.title == title), None)


class ValueRange(msgspec.Struct, omit_defaults=True):
    range: str
    values: list[list[Any]] = msgspec.field(default_factory=list)
    majorDimension: str = "ROWS"


class ValuesBatchUpdateResponse(msgspec.Struct):
    spreadsheetId: str
    totalUpdatedRows: int = 0
    totalUpdatedColumns: int = 0
    totalUpdatedCells: int = 0


class BatchUpdateResponse(msgspec.Struct):
    spreadsheetId: str
    replies: list[dict[str, Any]] = msgspec.field(default_factory=list)


class _TokenReply(msgspec.Struct):
    access_token: str
    expires_in: float = 3600.0


@dataclass(frozen=True, slots=True)
class PushResult:
    spreadsheet_id: str
    sheet_id: int
    sheet_title: str
    rows: int
    columns: int
    updated_cells: int
    format_requests: int
    marks_dropped: int


class TokenCache:
    """Access tokens by (token URL, account, key id) until shortly before they expire; share one per process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str]) -> str | None:
        entry = self._tokens.get(key)
        if entry is None or entry[1] <= self._clock():
            self._tokens.pop(key, None)
            return None
        return entry[0]

    def put(self, key: tuple[str, str, str], token: str, expires_in: float) -> None:
        self._tokens[key] = (token, self._clock() + max(0.0, expires_in - TOKEN_SKEW))

    def drop(self, key: tuple[str, str, str]) -> None:
        self._tokens.pop(key, None)


def quote_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


class SheetsClient:
    """One service account's access to Sheets."""

    def __init__(
        self,
        service_account_json: bytes | str,
        *,
        http: httpx.AsyncClient,
        api_base: str = "",
        token_url: str = "",
        retry: Retry | None = None,
        tokens: TokenCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account, self._key = parse_service_account(service_account_json)
        self._http = http
        self._api = (api_base or DEFAULT_API_BASE).rstrip("/") + "/v4/spreadsheets"
        self._token_url = token_url or self.account.token_uri or DEFAULT_TOKEN_URL
        self._retry = retry or Retry(attempts=5, base=0.5, cap=8.0)
        self._tokens = tokens or TokenCache(clock)
        self._clock = clock
        self._cache_key = (self._token_url, self.account.client_email, self.account.private_key_id)

    # ---- token ------------------------------------------------------------------------------------------

    async def access_token(self) -> str:
        """A cached access token, or a new one from the token endpoint (JWT-bearer grant)."""
        cached = self._tokens.get(self._cache_key)
        if cached is not None:
            return cached
        now = int(self._clock())
        claims = {
            "iss": self.account.client_email,
            "scope": SCOPE,
            "aud": self._token_url,
            "iat": now,
            "exp": now + 3600,
        }
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.account.private_key_id})
        form = {"grant_type": GRANT_TYPE, "assertion": assertion}
        response = await self._send("token", lambda: self._http.post(self._token_url, data=form))
        if response.status_code >= 400:
            error, description = _oauth_error(response)
            if error == "invalid_grant":
                raise SheetsGrantRevoked(f"the service account was refused: {description}", status=response.status_code)
            raise SheetsCredentialsError(
                f"the token endpoint answered {error}: {description}", status=response.status_code
            )
        reply = _decode(response, _TokenReply, "token")
        self._tokens.put(self._cache_key, reply.access_token, reply.expires_in)
        return reply.access_token

    # ---- calls ------------------------------------------------------------------------------------------

    async def get_spreadsheet(self, spreadsheet_id: str) -> Spreadsheet:
        params = {"fields": "spreadsheetId,sheets.properties"}
        response = await self._call("GET", f"/{quote(spreadsheet_id)}", params=params)
        return _decode(response, Spreadsheet, "spreadsheets.get")

    async def batch_update(self, spreadsheet_id: str, requests: Sequence[dict[str, Any]]) -> BatchUpdateResponse:
        response = await self._call("POST", f"/{quote(spreadsheet_id)}:batchUpdate", body={"requests": list(requests)})
        return _decode(response, BatchUpdateResponse, "spreadsheets.batchUpdate")

    async def values_batch_update(
        self, spreadsheet_id: str, data: Sequence[ValueRange], *, input_option: str = "RAW"
    ) -> ValuesBatchUpdateResponse:
        body = {"valueInputOption": input_option, "data": list(data)}
        response = await self._call("POST", f"/{quote(spreadsheet_id)}/values:batchUpdate", body=body)
        return _decode(response, ValuesBatchUpdateResponse, "values.batchUpdate")

    async def values_get(self, spreadsheet_id: str, range_: str, *, render: str = "UNFORMATTED_VALUE") -> ValueRange:
        path = f"/{quote(spreadsheet_id)}/values/{quote(range_, safe='')}"
        response = await self._call("GET", path, params={"valueRenderOption": render})
        return _decode(response, ValueRange, "values.get")

    async def push(self, spreadsheet_id: str, grid: Grid, *, sheet_title: str | None = None) -> PushResult:
        """Write a report grid to one sheet: one formatting batchUpdate, then one values.batchUpdate."""
        title = sheet_title or grid.name
        book = await self.get_spreadsheet(spreadsheet_id)
        existing = book.sheet(title)
        requests: list[dict[str, Any]] = []
        if existing is None:
            sheet_id = max((s.properties.sheetId for s in book.sheets), default=0) + 1
            requests.append({"addSheet": {"properties": {"sheetId": sheet_id, "title": title}}})
        else:
            sheet_id = existing.sheetId
        formats, dropped = format_requests(grid, sheet_id)
        requests += formats
        await self.batch_update(spreadsheet_id, requests)
        rows = [["" if v is None else v for v in row] for row in grid.values]
        written = await self.values_batch_update(spreadsheet_id, [ValueRange(f"{quote_sheet(title)}!A1", rows)])
        return PushResult(
            spreadsheet_id, sheet_id, title, len(rows), grid.width, written.totalUpdatedCells, len(requests), dropped
        )

    # ---- transport --------------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        content = None if body is None else msgspec.json.encode(body)
        refreshed = False
        while True:
            token = await self.access_token()
            headers = {"Authorization": f"Bearer {token}"}
            if content is not None:
                headers["Content-Type"] = "application/json"

            def send(headers: dict[str, str] = headers) -> Any:
                return self._http.request(method, self._api + path, content=content, params=params, headers=headers)

            response = await self._send(path, send)
            if response.status_code == 401 and not refreshed:  # expired or revoked token: one fresh try
                self._tokens.drop(self._cache_key)
                refreshed = True
                continue
            if response.status_code < 400:
                return response
            message = _api_error(response)
            if response.status_code == 403:
                raise SheetsPermissionDenied(message, status=403)
            if response.status_code == 404:
                raise SheetsNotFound(message, status=404)
            raise SheetsError(message, status=response.status_code)

    async def _send(self, what: str, send: Callable[[], Any]) -> httpx.Response:
        """One request with retries on 429/5xx/network errors; other answers are returned as they are."""
        attempt = 0
        while True:
            attempt += 1
            response: httpx.Response | None = None
            try:
                response = await send()
            except httpx.TransportError as exc:
                outcome = type(exc).__name__
            else:
                if response.status_code not in RETRYABLE:
                    return response
                outcome = str(response.status_code)
            if attempt >= self._retry.attempts:
                status = None if response is None else response.status_code
                raise SheetsUnavailable(f"sheets {what}: {outcome} after {attempt} attempts", status=status)
            delay = _retry_after(response) or self._retry.delay(attempt)
            log.info("sheets.retry", call=what, outcome=outcome, attempt=attempt, delay=round(delay, 3))
            await asyncio.sleep(delay)


def _retry_after(response: httpx.Response | None) -> float | None:
    raw = None if response is None else response.headers.get("Retry-After")
    try:
        return min(60.0, max(0.0, float(raw))) if raw else None
    except ValueError:
        return None


def _decode(response: httpx.Response, kind: type[T], what: str) -> T:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SheetsError(f"sheets {what}: unexpected response body ({exc})", status=response.status_code) from None


def _oauth_error(response: httpx.Response) -> tuple[str, str]:
    try:
        data = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return "error", f"HTTP {response.status_code}"
    if not isinstance(data, dict):
        return "error", f"HTTP {response.status_code}"
    return str(data.get("error", "error")), str(data.get("error_description", ""))[:300]


def _api_error(response: httpx.Response) -> str:
    try:
        data = msgspec.json.decode(response.content)
        message = data["error"]["message"]
    except (msgspec.DecodeError, KeyError, TypeError):
        message = response.text[:300]
    return f"sheets answered {response.status_code}: {str(message)[:300]}"
