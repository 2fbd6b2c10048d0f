"""Success and error thresholds: when a wave is done, when the rollout must stop.

- The current wave has succeeded when ``succeeded / size >= success_threshold``; the next wave
  then opens automatically.
- The rollout trips its error threshold when, over all opened waves,
  ``failed / (succeeded + failed) >= error_threshold`` and at least ``min_sample`` devices have
  finished (so one early failure does not stop a large rollout).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.StrEnum):
    HOLD = "hold"  # keep going, nothing to change
    ADVANCE = "advance"  # open the next wave
    COMPLETE = "complete"  # last wave done and nothing in flight
    TRIP = "trip"  # error threshold reached: pause or abort per the rollout


@dataclass(frozen=True)
class Progress:
    wave_size: int
    wave_succeeded: int
    wave_open_entries: int  # entries of the current wave not in a terminal state
    opened_succeeded: int  # over all opened waves
    opened_failed: int
    is_last_wave: bool


@dataclass(frozen=True)
class Thresholds:
    success: float
    error: float
    min_sample: int


def evaluate(p: Progress, t: Thresholds) -> Verdict:
    finished = p.opened_succeeded + p.opened_failed
    if finished >= max(1, t.min_sample) and p.opened_failed / finished >= t.error:
        return Verdict.TRIP
    if p.is_last_wave:
        return Verdict.COMPLETE if p.wave_open_entries == 0 else Verdict.HOLD
    if p.wave_size == 0 or p.wave_succeeded / p.wave_size >= t.success:
        return Verdict.ADVANCE
    return Verdict.HOLD


def validate(t: Thresholds) -> list[str]:
    problems = []
    if not 0.0 < t.success <= 1.0:
        problems.append("success threshold must be in (0, 1]")
    if not 0.0 < t.error <= 1.0:
        problems.append("error threshold must be in (0, 1]")
    if not 1 <= t.min_sample <= 1_000_000:
        problems.append("error minimum sample must be 1..1000000")
    return problems
