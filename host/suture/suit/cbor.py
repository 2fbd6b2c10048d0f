"""CBOR helpers for the SUIT decoder: bounded decoding and type checks that raise SuitError."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from suture.cose.cbor import CborError, CborLimitError, describe, loads_bounded
from suture.suit import limits
from suture.suit.errors import SuitDecodeError, SuitLimitError, SuitStructureError

__all__ = [
    "decode_bytes",
    "describe",
    "expect_array",
    "expect_bool",
    "expect_bstr",
    "expect_int",
    "expect_map",
    "expect_tstr",
    "expect_uint",
    "expect_uuid",
]


def decode_bytes(
    data: object,
    where: str,
    *,
    max_bytes: int = limits.MAX_MANIFEST_BYTES,
    allowed_tags: Iterable[int] = (),
) -> Any:
    """Decode one bounded CBOR item; any failure becomes a SuitError naming ``where``."""
    try:
        return loads_bounded(
            data, max_bytes=max_bytes, max_depth=limits.MAX_DEPTH, allowed_tags=allowed_tags
        )
    except CborLimitError as exc:
        raise SuitLimitError(f"{where}: {exc}") from None
    except CborError as exc:
        raise SuitDecodeError(f"{where}: {exc}") from None


def _fail(where: str, expected: str, value: object) -> SuitStructureError:
    return SuitStructureError(f"{where}: expected {expected}, got {describe(value)}")


def expect_bstr(value: object, where: str) -> bytes:
    if not isinstance(value, bytes):
        raise _fail(where, "bstr", value)
    return value


def expect_tstr(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, "text", value)
    return value


def expect_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, "int", value)
    return value


def expect_uint(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, "uint", value)
    if value >= 1 << 64:
        raise SuitStructureError(f"{where}: {value} does not fit in 64 bits")
    return value


def expect_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "bool", value)
    return value


def expect_array(value: object, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _fail(where, "array", value)
    return list(value)


def expect_map(value: object, where: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, "map", value)
    return value


def expect_uuid(value: object, where: str) -> UUID:
    raw = expect_bstr(value, where)
    if len(raw) != 16:
        raise SuitStructureError(f"{where}: expected a 16-byte UUID, got {len(raw)} bytes")
    return UUID(bytes=raw)
