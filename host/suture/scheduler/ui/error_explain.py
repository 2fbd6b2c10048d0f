"""The device error codes a page shows, each with its explanation from the one table of them
(``suture/formats/error_codes.toml`` through ``suture.formats.error_codes``): codes named in a
rollout entry's detail (``error 150 (agent NO_TRIAL_TO_REVERT): ...``, as
``services/reports.py`` writes it) and codes in a device report's ``error`` object."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from suture.formats import error_codes

#: ``error N`` / ``code N`` in a detail text.
_IN_TEXT: Final = re.compile(r"\b(?:error|code)\s+(\d{1,10})\b")
#: How deep a report's detail is searched for error objects.
_DEPTH: Final = 4


def in_text(text: str) -> list[tuple[int, str]]:
    """Each error code the text names (in order, once), with its explanation."""
    return _explained(int(m.group(1)) for m in _IN_TEXT.finditer(text or ""))


def in_detail(detail: Any) -> list[tuple[int, str]]:
    """The error codes of a device event's detail: an ``error`` object's ``code``, an
    ``error_code``, at any depth up to ``_DEPTH``, and those named in its text values."""
    found: list[int] = []

    def walk(value: Any, depth: int) -> None:
        if depth > _DEPTH:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in ("code", "error_code") and type(item) is int:
                    found.append(item)
                elif isinstance(item, str):
                    found.extend(int(m.group(1)) for m in _IN_TEXT.finditer(item))
                else:
                    walk(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1)

    walk(detail, 0)
    return _explained(found)


def _explained(codes: Iterable[int]) -> list[tuple[int, str]]:
    seen: dict[int, str] = {}
    for code in codes:
        if code not in seen and 0 < code <= 0xFFFFFFFF:
            seen[code] = error_codes.explain(code)
    return list(seen.items())
