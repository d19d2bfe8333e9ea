"""The Google stand-in's memory: service accounts and their keys, access tokens, spreadsheets and grids."""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

DEFAULT_ROWS = 1000
DEFAULT_COLUMNS = 26
TOKEN_TTL = 3599
MAX_CELLS = 10_000_000  # Google's limit per spreadsheet


@dataclass(slots=True)
class Key:
    id: str
    public: RSAPublicKey
    revoked: bool = False


@dataclass(slots=True)
class Account:
    email: str
    client_id: str
    keys: dict[str, Key] = field(default_factory=dict)
    tokens_issued: int = 0


@dataclass(slots=True)
class Token:
    email: str
    key_id: str
    expires_at: float


@dataclass(slots=True)
class SheetState:
    sheet_id: int
    title: str
    rows: int = DEFAULT_ROWS
    columns: int = DEFAULT_COLUMNS
    frozen_rows: int = 0
    frozen_columns: int = 0
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)
    merges: list[dict[str, int]] = field(default_factory=list)
    basic_filter: dict[str, Any] | None = None

    def properties(self, index: int) -> dict[str, Any]:
        grid: dict[str, Any] = {"rowCount": self.rows, "columnCount": self.columns}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        if self.frozen_columns:
            grid["frozenColumnCount"] = self.frozen_columns
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }

    def truncate(self) -> None:
        self.cells = {k: v for k, v in self.cells.items() if k[0] < self.rows and k[1] < self.columns}

    def values(self) -> list[list[Any]]:
        """The grid as rows, trailing empty cells and rows trimmed (as values.get answers)."""
        if not self.cells:
            return []
        height = max(r for r, _ in self.cells) + 1
        out: list[list[Any]] = [[] for _ in range(height)]
        for (r, c), value in sorted(self.cells.items()):
            row = out[r]
            row.extend([""] * (c - len(row)))
            row.append(value)
        return out


@dataclass(slots=True)
class Spreadsheet:
    id: str
    title: str
    sheets: list[SheetState]
    editors: set[str]
    faults: deque[int] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    value_batches: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    def sheet_by_title(self, title: str) -> SheetState | None:
        return next((s for s in self.sheets if s.title == title), None)

    def sheet_by_id(self, sheet_id: int) -> SheetState | None:
        return next((s for s in self.sheets if s.sheet_id == sheet_id), None)


class GoogleState:
    """One per sandbox app."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, str] = {}  # key id → account email
        self.tokens: dict[str, Token] = {}
        self.spreadsheets: dict[str, Spreadsheet] = {}

    def new_spreadsheet(self, title: str, sheet_titles: list[str], editors: set[str]) -> Spreadsheet:
        sid = secrets.token_urlsafe(33)[:44]
        sheets = [SheetState(sheet_id=0 if i == 0 else 1_000 + i, title=t) for i, t in enumerate(sheet_titles)]
        book = Spreadsheet(sid, title, sheets, editors)
        self.spreadsheets[sid] = book
        return book

    def issue_token(self, email: str, key_id: str) -> tuple[str, int]:
        token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        self.tokens[token] = Token(email, key_id, self.clock() + TOKEN_TTL)
        self.accounts[email].tokens_issued += 1
        return token, TOKEN_TTL

    def revoke_key(self, key_id: str) -> bool:
        email = self.keys.get(key_id)
        if email is None:
            return False
        self.accounts[email].keys[key_id].revoked = True
        for token, info in list(self.tokens.items()):
            if info.key_id == key_id:
                del self.tokens[token]
        return True

    def expire_tokens(self, email: str) -> int:
        gone = [t for t, info in self.tokens.items() if info.email == email]
        for token in gone:
            del self.tokens[token]
        return len(gone)


def external_url(scope: Any, base_url: str) -> str:
    """The URL the client called (without the query), whatever mounts the sandbox sits under: the ASGI
    `raw_path` keeps the full path where a mount has shortened `path`."""
    raw = scope.get("raw_path") or scope.get("path", "").encode()
    origin = base_url.split("://", 1)
    host = origin[1].split("/", 1)[0] if len(origin) == 2 else ""
    return f"{origin[0]}://{host}{raw.decode('latin-1').split('?', 1)[0]}"


# ---- A1 notation ------------------------------------------------------------------------------------------

_CELL = re.compile(r"^([A-Za-z]*)(\d*)$")


class RangeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class A1:
    """A parsed range: sheet title (None = first sheet) and 0-based bounds; ends are exclusive, None = open."""

    sheet: str | None
    row0: int
    col0: int
    row1: int | None
    col1: int | None


def column_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def column_letters(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _cell_parts(cells: str) -> list[tuple[int | None, int | None]] | None:
    """[(column, row)] (0-based, None = open) of "A1", "A1:C9", "A:C", "2:5"; None when it is not cells."""
    parts = cells.split(":")
    if len(parts) > 2:
        return None
    out: list[tuple[int | None, int | None]] = []
    for part in parts:
        match = _CELL.match(part)
        if match is None or not any(match.groups()):
            return None
        letters, digits = match.groups()
        if digits and int(digits) < 1:
            return None
        out.append((column_index(letters) if letters else None, int(digits) - 1 if digits else None))
    return out


def parse_a1(text: str) -> A1:
    """`Sheet1!A1:C9`, `'My ''quoted'' sheet'!A1`, `A1:C9` (first sheet), `Sheet1` (the whole sheet)."""
    text = text.strip()
    if not text:
        raise RangeError("Unable to parse range: ")
    sheet: str | None = None
    cells = text
    if text.startswith("'"):
        title: list[str] = []
        i = 1
        while i < len(text):
            if text[i] == "'":
                if text[i + 1 : i + 2] == "'":
                    title.append("'")
                    i += 2
                    continue
                break
            title.append(text[i])
            i += 1
        else:
            raise RangeError(f"Unable to parse range: {text}")
        sheet, rest = "".join(title), text[i + 1 :]
        if rest and not rest.startswith("!"):
            raise RangeError(f"Unable to parse range: {text}")
        cells = rest[1:]
    elif "!" in text:
        sheet, cells = text.rsplit("!", 1)
    elif _cell_parts(text) is None:
        return A1(text, 0, 0, None, None)  # a bare sheet title
    if not cells:
        return A1(sheet, 0, 0, None, None)
    bounds = _cell_parts(cells)
    if bounds is None:
        raise RangeError(f"Unable to parse range: {text}")
    c0, r0 = bounds[0]
    c1, r1 = bounds[-1]
    return A1(sheet, r0 or 0, c0 or 0, None if r1 is None else r1 + 1, None if c1 is None else c1 + 1)


def a1_text(title: str, row0: int, col0: int, row1: int, col1: int) -> str:
    quoted = "'" + title.replace("'", "''") + "'"
    return f"{quoted}!{column_letters(col0)}{row0 + 1}:{column_letters(col1 - 1)}{row1}"
