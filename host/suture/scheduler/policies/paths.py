"""Path planning: which release a device installs next on its way to a target.

A device on v1, with v3 marked must-pass-through and v5 targeted, goes v1 -> v3 -> v5, one step
at a time. Recalled releases are never a step. A step whose ``requires`` (``component X >= v``)
is not met by what the device reports is blocked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReleaseNode:
    id: int
    component: str
    sequence_number: int
    must_pass_through: bool
    recalled: bool
    requires: tuple[tuple[str, int], ...] = field(default=())


@dataclass(frozen=True)
class Step:
    """The next release to install (``release`` None: already at or past the target)."""

    release: ReleaseNode | None
    blocked_by: tuple[tuple[str, int], ...] = ()
    #: The whole remaining path including the step.
    path: tuple[int, ...] = ()

    @property
    def done(self) -> bool:
        return self.release is None

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_by)


def plan_path(
    installed: int, target: ReleaseNode, graph: Sequence[ReleaseNode]
) -> list[ReleaseNode]:
    """The ordered releases still to install to reach ``target`` from ``installed``."""
    if installed >= target.sequence_number:
        return []
    hops = sorted(
        (
            r for r in graph
            if r.component == target.component
            and r.must_pass_through
            and not r.recalled
            and installed < r.sequence_number < target.sequence_number
        ),
        key=lambda r: r.sequence_number,
    )
    return [*hops, target]


def next_step(installed_versions: Mapping[str, int], target: ReleaseNode,
              graph: Sequence[ReleaseNode]) -> Step:
    path = plan_path(installed_versions.get(target.component, 0), target, graph)
    if not path:
        return Step(None)
    step = path[0]
    missing = tuple(
        (comp, minimum) for comp, minimum in step.requires
        if installed_versions.get(comp, 0) < minimum
    )
    return Step(step, missing, tuple(r.id for r in path))
