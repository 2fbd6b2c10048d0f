"""The outer shape of a COSE message (RFC 9052 section 2): bounded CBOR, the message's own tag
(or none where the type is known from context), an array of its entries."""

from __future__ import annotations

from typing import Any

import cbor2

from suture.cose.cbor import CborError, describe, loads_bounded
from suture.cose.errors import CoseError


def decode_message(where: str, data: bytes, *, tag: int, entries: int, max_bytes: int,
                   max_depth: int, tag_required: bool = False) -> tuple[list[Any], bool]:
    """``data``'s entries and whether it carried ``tag``; ``where`` names the message type in
    errors. Refuses other tags, a missing tag when ``tag_required``, and any other shape."""
    try:
        item = loads_bounded(data, max_bytes=max_bytes, max_depth=max_depth,
                             allowed_tags=(tag,))
    except CborError as exc:
        raise CoseError(f"{where}: {exc}") from None
    tagged = isinstance(item, cbor2.CBORTag)
    if tagged:
        item = item.value
    elif tag_required:
        raise CoseError(f"{where}: expected tag {tag}, got {describe(item)}")
    if not isinstance(item, list | tuple) or len(item) != entries:
        got = f"array of {len(item)}" if isinstance(item, list | tuple) else describe(item)
        raise CoseError(f"{where}: expected an array of {entries}, got {got}")
    return list(item), tagged
