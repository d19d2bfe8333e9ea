"""A zip archive written front to back (local header, deflated data, data descriptor; directory at the end).

Used instead of ``zipfile`` on an unseekable stream so that compression can run in a worker thread
(zlib releases the GIL) while the next rows are turned into XML: on two cores that hides most of the
compression time. No ZIP64: an entry or the archive past 4 GiB is refused.
"""

from __future__ import annotations

import struct
import zlib

_LIMIT = 0xFFFFFFFF
_FLAGS = 0x0808  # bit 3: sizes follow the data; bit 11: names are UTF-8
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, fixed so equal content gives equal bytes
_DOS_TIME = 0


class ZipEntry:
    """One member being written; ``feed`` returns compressed bytes (safe to call from a worker thread)."""

    def __init__(self, name: bytes, offset: int, level: int) -> None:
        self.name = name
        self.offset = offset
        self.crc = 0
        self.size = 0
        self.compressed = 0
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, -15)

    def feed(self, data: bytes) -> bytes:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        out = self._deflate.compress(data)
        self.compressed += len(out)
        return out

    def finish(self) -> bytes:
        out = self._deflate.flush()
        self.compressed += len(out)
        if self.size > _LIMIT or self.compressed > _LIMIT:
            raise ValueError(f"zip member {self.name.decode()} is larger than 4 GiB")
        return out + struct.pack("<IIII", 0x08074B50, self.crc, self.compressed, self.size)


class ZipStream:
    """Tracks offsets and members; every method returns the bytes to send next."""

    def __init__(self, level: int = 1) -> None:
        self.level = level
        self.offset = 0
        self._members: list[ZipEntry] = []

    def _emit(self, data: bytes) -> bytes:
        self.offset += len(data)
        return data

    def open(self, name: str) -> tuple[ZipEntry, bytes]:
        """Start a member: the entry to feed and its local header."""
        raw = name.encode()
        entry = ZipEntry(raw, self.offset, self.level)
        self._members.append(entry)
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, _FLAGS, 8, _DOS_TIME, _DOS_DATE, 0, 0, 0, len(raw), 0)
        return entry, self._emit(header + raw)

    def data(self, chunk: bytes) -> bytes:
        """Account for compressed bytes produced by ``ZipEntry.feed`` (returns them)."""
        return self._emit(chunk)

    def close_entry(self, entry: ZipEntry) -> bytes:
        return self._emit(entry.finish())

    def member(self, name: str, content: bytes) -> bytes:
        """A whole small member at once."""
        entry, head = self.open(name)
        return head + self.data(entry.feed(content)) + self.close_entry(entry)

    def close(self) -> bytes:
        """The central directory and its end record."""
        start = self.offset
        records = []
        for m in self._members:
            fields = (0x02014B50, 20, 20, _FLAGS, 8, _DOS_TIME, _DOS_DATE, m.crc, m.compressed, m.size)
            tail = (len(m.name), 0, 0, 0, 0, 0, m.offset)
            records.append(struct.pack("<IHHHHHHIIIHHHHHII", *fields, *tail) + m.name)
        directory = b"".join(records)
        if start + len(directory) > _LIMIT or len(self._members) > 0xFFFF:
            raise ValueError("the archive is larger than a zip without ZIP64 can describe")
        end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records), len(directory), start, 0)
        return self._emit(directory + end)
