"""Approval before start: who counts, and how many are needed.

The number needed comes from the targeted devices' criticality *as it is when the rollout
starts* (and when a wave of critical devices opens): one approver, or two distinct approvers
when a device of criticality ``TWO_PERSON_CRITICALITY`` or more is targeted (two-person rule).
An approval counts only if it was given by an account that holds the approver role now, is not
one of the rollout's authors (who created or changed it), and approved the rollout as it is
now (its digest: release, targets, waves, policy).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

HIGHEST_CRITICALITY = 4
#: Criticality from which two distinct approvers are needed.
TWO_PERSON_CRITICALITY = HIGHEST_CRITICALITY


def required_approvals(max_target_criticality: int) -> int:
    return 2 if max_target_criticality >= TWO_PERSON_CRITICALITY else 1


def is_approved(approvers: Collection[str], required: int) -> bool:
    """Approvals count once per distinct operator."""
    return len(set(approvers)) >= required


@dataclass(frozen=True)
class Approval:
    operator: str
    digest: str


@dataclass(frozen=True)
class Tally:
    required: int
    #: The approvers that count, in order.
    counted: list[str]
    #: Approvers that do not count, and why.
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return len(self.counted) >= self.required

    def explain(self) -> str:
        why = "".join(f"; {name} does not count: {reason}"
                      for name, reason in sorted(self.ignored.items()))
        have = ", ".join(self.counted) or "none"
        return (f"needs {self.required} approval(s) from distinct approvers, has "
                f"{len(self.counted)} ({have}){why}")


def tally(approvals: Iterable[Approval], *, required: int, digest: str,
          authors: Collection[str], approvers: Collection[str]) -> Tally:
    """Which approvals count: ``approvers`` are the accounts that hold the approver role now,
    ``authors`` those who created or changed the rollout, ``digest`` what it is now."""
    counted: list[str] = []
    ignored: dict[str, str] = {}
    for a in approvals:
        if a.operator in counted:
            continue
        if a.operator in authors:
            ignored[a.operator] = "created or changed the rollout"
        elif a.operator not in approvers:
            ignored[a.operator] = "no longer an active account with the approver role"
        elif a.digest != digest:
            ignored[a.operator] = "approved the rollout before its targets or policy changed"
        else:
            counted.append(a.operator)
    return Tally(required, counted, ignored)
