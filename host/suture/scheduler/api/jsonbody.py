"""JSON bodies parsed only within bounds: the nesting depth is checked on the raw bytes first,
so no body can drive the parser's recursion (a ``RecursionError`` is never raised)."""

from __future__ import annotations

import json
from typing import Any

from suture.bounded_body import MAX_JSON_DEPTH, nesting_exceeds
from suture.scheduler.errors import NestingTooDeepError


def loads(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` after the depth check: ``NestingTooDeepError`` (400) past ``max_depth``,
    ``ValueError`` for what is not JSON."""
    if nesting_exceeds(body, max_depth):
        raise NestingTooDeepError(
            f"JSON nested deeper than {max_depth} levels (arrays and objects)")
    return json.loads(body)
