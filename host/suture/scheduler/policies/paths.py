"""Path planning: which release a device installs next on its way to a target.

A device on v1, with v3 marked must-pass-through and v5 targeted, goes v1 -> v3 -> v5, one step
at a time. Recalled releases are never a step. A step whose ``requires`` (``component X >= v``)
is not met by what the device reports is preceded by the lowest release of X that meets it;
with no such release, the step is blocked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: How many dependency hops the planner follows (A requires B requires C ...).
MAX_DEPENDENCY_DEPTH = 4


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
              graph: Sequence[ReleaseNode], _depth: int = 0) -> Step:
    """The next release to install. When the step requires a component version the device
    lacks, the lowest release of that component that satisfies it (on its own path) comes
    first; with none available, the step is blocked."""
    path = plan_path(installed_versions.get(target.component, 0), target, graph)
    if not path:
        return Step(None)
    step = path[0]
    ids = tuple(r.id for r in path)
    missing = tuple(
        (comp, minimum) for comp, minimum in step.requires
        if installed_versions.get(comp, 0) < minimum
    )
    if not missing:
        return Step(step, (), ids)
    if _depth < MAX_DEPENDENCY_DEPTH:
        comp, minimum = missing[0]
        providers = sorted(
            (r for r in graph
             if r.component == comp and not r.recalled and r.sequence_number >= minimum),
            key=lambda r: r.sequence_number,
        )
        if providers:
            dep = next_step(installed_versions, providers[0], graph, _depth + 1)
            if dep.release is not None and not dep.blocked:
                return Step(dep.release, (), dep.path + ids)
    return Step(step, missing, ids)
