"""Pure policy functions: waves, thresholds, windows, paths, approval."""

from __future__ import annotations

import pytest
from suture.scheduler.errors import InvalidInputError
from suture.scheduler.policies import approval, paths, thresholds, waves
from suture.scheduler.policies.windows import WindowPolicy

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(("specs", "total", "sizes"), [
    (["1", "10%", "100%"], 100, [1, 10, 89]),
    (["5"], 3, [3]),
    (["50%"], 3, [3]),
    ([], 7, [7]),
    (["1", "1", "1"], 2, [1, 1]),
    (["10%", "10%"], 10, [1, 9]),
])
def test_wave_sizes(specs: list[str], total: int, sizes: list[int]) -> None:
    assert waves.wave_sizes(specs, total) == sizes
    assert sum(sizes) == total


@pytest.mark.parametrize("bad", ["0", "101%", "-1", "ten", "5%%", ""])
def test_bad_wave_spec(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        waves.parse_specs([bad])


def test_orders() -> None:
    cands = [waves.Candidate("a", 3, 4, 10), waves.Candidate("b", 1, 1, 20),
             waves.Candidate("c", 1, 4, 5), waves.Candidate("d", 2, 2, 1)]
    assert [c.device_id for c in waves.order_candidates(cands, "oldest-first")] == \
        ["c", "b", "d", "a"]
    assert [c.device_id for c in waves.order_candidates(cands, "criticality")] == \
        ["b", "d", "c", "a"]


def test_thresholds() -> None:
    t = thresholds.Thresholds(success=0.8, error=0.5, min_sample=4)
    p = thresholds.Progress
    assert thresholds.evaluate(p(10, 8, 2, 8, 0, False), t) == thresholds.Verdict.ADVANCE
    assert thresholds.evaluate(p(10, 7, 3, 7, 0, False), t) == thresholds.Verdict.HOLD
    assert thresholds.evaluate(p(10, 1, 7, 1, 2, False), t) == thresholds.Verdict.HOLD  # 3 < 4
    assert thresholds.evaluate(p(10, 2, 6, 2, 2, False), t) == thresholds.Verdict.TRIP
    assert thresholds.evaluate(p(5, 5, 0, 20, 0, True), t) == thresholds.Verdict.COMPLETE
    assert thresholds.evaluate(p(5, 4, 1, 19, 0, True), t) == thresholds.Verdict.HOLD


def test_window_open_and_next() -> None:
    w = WindowPolicy("0 2 * * *", 7200, "UTC")
    inside = w.window_at(T0 + 3 * 3600)
    assert (inside.not_before, inside.not_after) == (T0 + 2 * 3600, T0 + 4 * 3600)
    assert inside.contains(T0 + 3 * 3600)
    at_start = w.window_at(T0 + 2 * 3600)
    assert at_start.not_before == T0 + 2 * 3600
    after = w.window_at(T0 + 5 * 3600)
    assert after.not_before == T0 + 86400 + 2 * 3600
    assert not after.contains(T0 + 5 * 3600)


def test_window_follows_local_time_across_dst() -> None:
    w = WindowPolicy("0 2 * * *", 3600, "Europe/Paris")
    winter = w.window_at(T0)  # January: UTC+1 -> 01:00Z
    assert winter.not_before % 86400 == 3600
    summer = w.window_at(T0 + 200 * 86400)  # July: UTC+2 -> 00:00Z
    assert summer.not_before % 86400 == 0


@pytest.mark.parametrize(("cron", "dur", "tz"), [
    ("not cron", 3600, "UTC"), ("0 2 * * *", 10, "UTC"), ("0 2 * * *", 3600, "Mars/Base"),
    ("0 0 2 * * * *", 3600, "UTC"),
])
def test_bad_windows(cron: str, dur: int, tz: str) -> None:
    with pytest.raises(InvalidInputError):
        WindowPolicy(cron, dur, tz)


def node(i: int, seq: int, mpt: bool = False, recalled: bool = False,
         requires: tuple[tuple[str, int], ...] = ()) -> paths.ReleaseNode:
    return paths.ReleaseNode(i, "app", seq, mpt, recalled, requires)


def test_path_through_must_pass_releases() -> None:
    graph = [node(1, 1), node(2, 2), node(3, 3, mpt=True), node(4, 4, mpt=True, recalled=True),
             node(5, 5)]
    assert [r.sequence_number for r in paths.plan_path(1, graph[4], graph)] == [3, 5]
    assert [r.sequence_number for r in paths.plan_path(3, graph[4], graph)] == [5]
    assert paths.plan_path(5, graph[4], graph) == []
    step = paths.next_step({"app": 1}, graph[4], graph)
    assert step.release == graph[2]
    assert step.path == (3, 5)


def test_step_blocked_by_requirement() -> None:
    target = node(2, 2, requires=(("loader", 3),))
    step = paths.next_step({"app": 1, "loader": 2}, target, [target])
    assert step.blocked_by == (("loader", 3),)
    assert not paths.next_step({"app": 1, "loader": 3}, target, [target]).blocked


def test_step_through_dependency_release() -> None:
    loader = [paths.ReleaseNode(10, "loader", 2, False, False),
              paths.ReleaseNode(11, "loader", 3, False, True),  # recalled
              paths.ReleaseNode(12, "loader", 4, False, False)]
    target = node(2, 2, requires=(("loader", 3),))
    step = paths.next_step({"app": 1, "loader": 1}, target, [target, *loader])
    assert step.release == loader[2]
    assert step.path == (12, 2)
    looping = node(3, 3, requires=(("app", 3),))  # requires itself: blocked, not a loop
    assert paths.next_step({"app": 1}, looping, [looping]).blocked


def test_approval_counts_distinct_operators() -> None:
    assert approval.required_approvals(4) == 2
    assert approval.required_approvals(3) == 1
    assert not approval.is_approved(["bob", "bob"], 2)
    assert approval.is_approved(["bob", "carol"], 2)
