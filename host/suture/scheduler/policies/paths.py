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


def unmet(requires: Sequence[tuple[str, int]], installed_versions: Mapping[str, int]
          ) -> tuple[tuple[str, int], ...]:
    """The requirements (``component >= version``) that the installed versions do not meet; a
    component the device does not report counts as version 0."""
    return tuple((comp, minimum) for comp, minimum in requires
                 if installed_versions.get(comp, 0) < minimum)


def blocked_reason(step: Step, installed_versions: Mapping[str, int],
                   graph: Sequence[ReleaseNode]) -> str:
    """Why a blocked step waits, for operators: what it requires, what the device has, and why
    no release of the required component can be installed first."""
    assert step.release is not None
    parts = []
    for comp, minimum in step.blocked_by:
        providers = [r for r in graph if r.component == comp and r.sequence_number >= minimum]
        if not providers:
            why = f"no {comp} release >= {minimum} is imported"
        elif all(r.recalled for r in providers):
            why = f"every {comp} release >= {minimum} is recalled"
        else:
            lowest = min((r for r in providers if not r.recalled),
                         key=lambda r: r.sequence_number)
            why = (f"{comp} #{lowest.sequence_number} (release {lowest.id}) cannot be "
                   f"installed first")
            if lowest.requires:
                why += ": it requires " + ", ".join(f"{c} >= {v}" for c, v in lowest.requires)
        parts.append(f"requires {comp} >= {minimum} (device has "
                     f"{installed_versions.get(comp, 0)}): {why}")
    return (f"{step.release.component} #{step.release.sequence_number} (release "
            f"{step.release.id}) " + "; ".join(parts))


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
    missing = unmet(step.requires, installed_versions)
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
