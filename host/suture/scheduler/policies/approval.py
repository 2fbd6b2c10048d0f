"""Approval before start: one operator, or two distinct operators when the rollout reaches a
device of the highest criticality (two-person rule)."""

from __future__ import annotations

from collections.abc import Collection

HIGHEST_CRITICALITY = 4


def required_approvals(max_target_criticality: int) -> int:
    return 2 if max_target_criticality >= HIGHEST_CRITICALITY else 1


def is_approved(approvers: Collection[str], required: int) -> bool:
    """Approvals count once per distinct operator."""
    return len(set(approvers)) >= required
