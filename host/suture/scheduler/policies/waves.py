"""Waves: how a rollout's targets are split and ordered.

A wave spec is a count (``"5"``) or a percentage of the whole target (``"10%"``), rounded up
and at least one device; the last wave always takes whatever is left.
Orders: ``oldest-first`` (lowest installed version of the release's component first, then
longest registered) or ``criticality`` (least critical devices first, so the most critical
devices receive a release only once it has proved itself).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from operator import itemgetter
from typing import NamedTuple

from suture.scheduler.errors import InvalidInputError

ORDERS = ("oldest-first", "criticality")
MAX_WAVES = 50
_SPEC = re.compile(r"^(\d{1,7})(%?)$")


def parse_specs(specs: Sequence[str]) -> list[tuple[int, bool]]:
    """``["1", "10%"]`` -> ``[(1, False), (10, True)]``; raises ``InvalidInputError``."""
    if not specs:
        return [(100, True)]
    if len(specs) > MAX_WAVES:
        raise InvalidInputError(f"at most {MAX_WAVES} waves")
    parsed = []
    for spec in specs:
        m = _SPEC.match(str(spec).strip())
        if m is None:
            raise InvalidInputError(f"wave {spec!r} is neither a count nor a percentage")
        value, pct = int(m.group(1)), m.group(2) == "%"
        if value <= 0 or (pct and value > 100):
            raise InvalidInputError(f"wave {spec!r} is out of range")
        parsed.append((value, pct))
    return parsed


def wave_sizes(specs: Sequence[str], total: int) -> list[int]:
    """The size of each wave for ``total`` targets (empty waves dropped; sums to ``total``)."""
    sizes: list[int] = []
    left = total
    for value, pct in parse_specs(specs):
        if left <= 0:
            break
        size = math.ceil(total * value / 100) if pct else value
        size = max(1, min(size, left))
        sizes.append(size)
        left -= size
    if left > 0:
        if sizes:
            sizes[-1] += left
        else:
            sizes.append(left)
    return sizes


class Candidate(NamedTuple):
    device_id: str
    installed_version: int
    criticality: int
    created_at: int


#: Each order's sort key over a ``Candidate``'s fields (an ``itemgetter``: the sort of a whole
#: fleet compares tuples in C, with no Python call per device).
_ORDER_KEYS = {
    "oldest-first": itemgetter(1, 3, 0),  # installed_version, created_at, device_id
    "criticality": itemgetter(2, 1, 3, 0),  # criticality, then as oldest-first
}


def order_candidates(cands: Sequence[Candidate], order: str) -> list[Candidate]:
    key = _ORDER_KEYS.get(order)
    if key is None:
        raise InvalidInputError(f"unknown order {order!r}; use one of {', '.join(ORDERS)}")
    return sorted(cands, key=key)


def assign_waves(cands: Sequence[Candidate], specs: Sequence[str], order: str
                 ) -> list[tuple[Candidate, int]]:
    """Each candidate with its wave number (0-based), in rollout order."""
    ordered = order_candidates(cands, order)
    out: list[tuple[Candidate, int]] = []
    pos = 0
    for wave, size in enumerate(wave_sizes(specs, len(ordered))):
        out.extend((c, wave) for c in ordered[pos : pos + size])
        pos += size
    return out
