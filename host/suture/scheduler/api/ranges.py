"""HTTP Range (RFC 9110 §14) for downloads: one ``bytes=`` range, strong ETags, If-Range."""

from __future__ import annotations

import re
from dataclasses import dataclass

from suture.scheduler.errors import SchedulerError

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class UnsatisfiableRangeError(SchedulerError):
    """The range lies outside the representation (416)."""

    status_code = 416
    code = "range_not_satisfiable"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """None: serve the whole representation (absent or unsupported range, per RFC 9110 a
    server may ignore a Range it does not support)."""
    if header is None:
        return None
    m = _RANGE.match(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise UnsatisfiableRangeError
        return ByteRange(max(0, size - suffix), size - 1) if size else None
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise UnsatisfiableRangeError
    return ByteRange(start, end)
