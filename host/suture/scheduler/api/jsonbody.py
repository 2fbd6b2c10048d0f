"""JSON bodies parsed only within bounds: the nesting depth is checked on the raw bytes first,
so no body can drive the parser's recursion (a ``RecursionError`` is never raised)."""

from __future__ import annotations

import json
from typing import Any, Final

from suture.scheduler.errors import NestingTooDeepError

#: Deepest nesting of arrays and objects accepted in a JSON body.
MAX_JSON_DEPTH: Final = 32
_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


def nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``data`` (outside strings) nest deeper than ``limit``."""
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def loads(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` after the depth check: ``NestingTooDeepError`` (400) past ``max_depth``,
    ``ValueError`` for what is not JSON."""
    if nesting_exceeds(body, max_depth):
        raise NestingTooDeepError(
            f"JSON nested deeper than {max_depth} levels (arrays and objects)")
    return json.loads(body)
