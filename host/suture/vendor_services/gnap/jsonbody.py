"""GNAP request bodies: JSON objects within bounds of size and depth.

The nesting depth is checked on the raw bytes before the parser runs, so no body can drive
the parser's recursion (a ``RecursionError`` is never raised); either bound passed is
``invalid_request``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from suture.bounded_body import MAX_JSON_DEPTH, nesting_exceeds
from suture.vendor_services.gnap.errors import GnapError

#: Largest body any vendor route accepts (a grant request, an introspection request).
MAX_BODY: Final = 64 * 1024


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON object body, or ``invalid_request``."""
    if len(body) > MAX_BODY:
        raise GnapError("invalid_request", f"body larger than {MAX_BODY} bytes")
    if nesting_exceeds(body, MAX_JSON_DEPTH):
        raise GnapError("invalid_request", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(body)
    except ValueError as e:
        raise GnapError("invalid_request", f"body is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise GnapError("invalid_request", "body must be a JSON object")
    return data
