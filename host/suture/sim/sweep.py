"""Power-cut sweeps: run an action once to count its flash operations, then again from the same
starting flash state with the supply cut after each operation (clean and torn), and let a check
recover the device and assert what must hold."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from suture.sim.device import PowerCut, RunResult, SimBoard, SimDevice, SimError

Check = Callable[[SimBoard, SimDevice, PowerCut], str]


@dataclass
class SweepReport:
    """What a sweep covered: operations of the uncut action, cut points run, outcomes seen."""

    total_ops: int
    cut_points: int = 0
    torn_points: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


def _clone(board: SimBoard, where: Path) -> SimBoard:
    if where.exists():
        shutil.rmtree(where)
    shutil.copytree(board.workdir, where)
    return SimBoard(where, board.board, board.identity, heapsize=board.heapsize)


def sweep(
    device: SimDevice,
    action: Sequence[Sequence[str]],
    check: Check,
    *,
    torn_bytes: int | None = None,
    workers: int = 2,
) -> SweepReport:
    """Cut ``action`` at every flash operation (and, with ``torn_bytes``, tear each one), then
    call ``check(board, device, cut)``; it recovers the device, asserts, and names the outcome.

    The device's board is left as the uncut action leaves it."""
    board = device.board
    start = board.snapshot()
    full: RunResult = device.run(*action)
    if not full.ok:
        raise SimError(f"the uncut action failed:\n{full.stdout}\n{full.stderr}")
    total = full.ops_count
    end = board.snapshot()
    report = SweepReport(total_ops=total)
    cuts = [PowerCut(i) for i in range(total)]
    if torn_bytes is not None:
        cuts += [PowerCut(i, torn_bytes) for i in range(total)]
    n = max(1, min(workers, len(cuts)))
    base = board.workdir
    clones = [_clone(board, base.with_name(f"{base.name}-w{k}")) for k in range(n)]

    def worker(k: int) -> list[tuple[PowerCut, str]]:
        b = clones[k]
        dev = SimDevice(b, lib=device.lib)
        out: list[tuple[PowerCut, str]] = []
        for cut in cuts[k::n]:
            b.restore(start)
            r = dev.run(*action, power_cut=cut)
            if not r.power_cut_happened:
                raise AssertionError(f"{cut}: the action ended before the cut:\n{r.stdout}")
            out.append((cut, check(b, dev, cut)))
        return out

    with ThreadPoolExecutor(max_workers=n) as pool:
        for results in pool.map(worker, range(n)):
            for cut, outcome in results:
                if cut.torn_bytes is None:
                    report.cut_points += 1
                else:
                    report.torn_points += 1
                report.outcomes[outcome] += 1
    for b in clones:
        shutil.rmtree(b.workdir, ignore_errors=True)
    board.restore(end)
    return report
