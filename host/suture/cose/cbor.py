"""Bounded CBOR decoding for untrusted bytes.

cbor2 decodes whatever it is given: semantic tags build Python objects (dates, regular
expressions, shared references that make cycles), huge declared lengths and deep nesting cost
time and memory, and trailing bytes are silently ignored. Before cbor2 sees untrusted bytes,
:func:`check_well_formed` walks the encoded item header by header (no objects built, no
recursion) and refuses anything outside a small, predictable subset:

- definite lengths only, each no longer than the bytes that remain;
- nesting no deeper than ``max_depth``;
- tags only from ``allowed_tags`` (the caller's protocol tags, e.g. 18 for COSE_Sign1);
- simple values false, true, null and undefined, and floats; no other simple values;
- exactly one item, no trailing bytes.

:func:`loads_bounded` then decodes with cbor2 (no duplicate map keys) and turns every cbor2
failure into :class:`CborError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import cbor2

from suture.cose.errors import CoseError

# Ceilings that apply when the caller gives none.
DEFAULT_MAX_BYTES: Final = 1 << 20
DEFAULT_MAX_DEPTH: Final = 16

_MAJOR_NAMES: Final = ("uint", "nint", "bstr", "tstr", "array", "map", "tag", "simple/float")


class CborError(CoseError):
    """Bytes that are not one well-formed CBOR item within the allowed subset and limits."""


class CborLimitError(CborError):
    """Bytes over the size ceiling, or nested deeper than allowed."""


def _argument(data: bytes, pos: int, info: int, end: int) -> tuple[int, int]:
    """Decode the argument of a head whose additional info is ``info``; returns (arg, pos)."""
    if info < 24:
        return info, pos
    if info > 27:
        if info == 31:
            raise CborError(f"offset {pos - 1}: indefinite-length items are not accepted")
        raise CborError(f"offset {pos - 1}: reserved additional information value {info}")
    width = 1 << (info - 24)
    if pos + width > end:
        raise CborError(f"offset {pos - 1}: truncated item head (needs {width} more bytes)")
    return int.from_bytes(data[pos : pos + width], "big"), pos + width


def check_well_formed(
    data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, allowed_tags: Iterable[int] = ()
) -> None:
    """Raise :class:`CborError` unless ``data`` is exactly one item of the accepted subset."""
    tags = frozenset(allowed_tags)
    end = len(data)
    pos = 0
    # Items still expected in each open container; the bottom entry is the top-level item.
    pending = [1]
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        pending[-1] -= 1
        if pos >= end:
            raise CborError(f"offset {pos}: truncated: the data ends inside an item")
        head = data[pos]
        major, info = head >> 5, head & 0x1F
        start = pos
        arg, pos = _argument(data, pos + 1, info, end)
        if major in (2, 3):
            if arg > end - pos:
                raise CborError(
                    f"offset {start}: {_MAJOR_NAMES[major]} of {arg} bytes, "
                    f"but only {end - pos} bytes remain"
                )
            pos += arg
        elif major in (4, 5):
            items = arg if major == 4 else 2 * arg
            if items > end - pos:
                raise CborError(
                    f"offset {start}: {_MAJOR_NAMES[major]} of {arg} entries, "
                    f"but only {end - pos} bytes remain"
                )
            if len(pending) > max_depth:
                raise CborLimitError(f"offset {start}: nesting deeper than {max_depth} levels")
            pending.append(items)
        elif major == 6:
            if arg not in tags:
                raise CborError(f"offset {start}: CBOR tag {arg} is not accepted here")
            if len(pending) > max_depth:
                raise CborLimitError(f"offset {start}: nesting deeper than {max_depth} levels")
            pending.append(1)
        elif major == 7 and info < 20:
            raise CborError(f"offset {start}: unassigned simple value {info}")
        elif major == 7 and info == 24:
            raise CborError(f"offset {start}: simple value {arg} is not accepted")
    if pos != end:
        raise CborError(f"offset {pos}: {end - pos} trailing bytes after the CBOR item")


def loads_bounded(
    data: object,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    allowed_tags: Iterable[int] = (),
) -> Any:
    """Decode one CBOR item from untrusted ``data`` within the ceilings; only CborError escapes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CborError(f"expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > max_bytes:
        raise CborLimitError(f"{len(raw)} bytes is over the limit of {max_bytes} bytes")
    check_well_formed(raw, max_depth=max_depth, allowed_tags=allowed_tags)
    try:
        return cbor2.loads(
            raw,
            max_depth=max_depth + 2,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        )
    except RecursionError:
        raise CborLimitError("nesting too deep") from None
    except Exception as exc:  # cbor2 raises several types (ValueError, TypeError, its own)
        raise CborError(f"malformed CBOR: {exc}") from None


def describe(value: object) -> str:
    """A short CBOR-ish type name for error messages: ``uint``, ``text``, ``array``..."""
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    if isinstance(value, int):
        return "uint" if value >= 0 else "nint"
    if isinstance(value, bytes):
        return "bstr"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, float):
        return "float"
    if isinstance(value, cbor2.CBORTag):
        return f"tag {value.tag}"
    return type(value).__name__
