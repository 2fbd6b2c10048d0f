"""Power-cut sweeps: run an action once to count its flash operations, then again from the same
starting flash state with the supply cut after each operation, and let a check recover the
device and assert what must hold.

Cut kinds (suture.sim.device.PowerCut): clean; torn (the operation's first bytes applied: a
torn program, an erase that leaves the sector's tail un-erased); and the hard kinds: torn-tail
(its last bytes applied: an erase that leaves the head un-erased), weak (torn, and the bytes
after the applied part left weak: they read back as either value), weak-tail, and weak-clean
(nothing applied, the operation's first bytes weak). Double cuts: after a first cut, the
recovery boot is itself cut at each of its operations, then the check boots cleanly.

CI runs a deterministic sample of the hard kinds and of the double cuts (each sweep says
which); ``SUTURE_FULL_SWEEP=1`` (``pytest --full-sweep``, ``python -m bench powercut``) runs
them all."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from suture.sim.device import PowerCut, RunResult, SimBoard, SimDevice
from suture.sim.errors import SimError

Check = Callable[[SimBoard, SimDevice, PowerCut], str]
WEAK_BYTES = 8  # bytes left weak beside the applied part of a weak cut


def full_sweeps() -> bool:
    """True when sweeps run every hard cut and every double cut (SUTURE_FULL_SWEEP=1)."""
    return os.environ.get("SUTURE_FULL_SWEEP") == "1"


@dataclass
class SweepReport:
    """What a sweep covered: operations of the uncut action, cut points run, outcomes seen."""

    total_ops: int
    cut_points: int = 0
    torn_points: int = 0
    hard_points: int = 0
    double_cuts: int = 0
    double_firsts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def runs(self) -> int:
        """Every cut the sweep checked: single cuts of all kinds and double cuts."""
        return self.cut_points + self.torn_points + self.hard_points + self.double_cuts


def _clone(board: SimBoard, where: Path) -> SimBoard:
    if where.exists():
        shutil.rmtree(where)
    shutil.copytree(board.workdir, where)
    return SimBoard(where, board.board, board.identity, heapsize=board.heapsize)


def spread(n: int, m: int | None) -> list[int]:
    """m indices of range(n) spread evenly (all of them when m is None or m >= n)."""
    if m is None or m >= n:
        return list(range(n))
    return sorted({(k * n) // m + n // (2 * m) for k in range(m)})


def hard_cuts(i: int, torn: int, seed: int) -> list[PowerCut]:
    """The hard kinds of cut at operation i: torn-tail, weak, weak-tail, weak-clean."""
    return [
        PowerCut(i, torn, from_tail=True, seed=seed),
        PowerCut(i, torn, weak_bytes=WEAK_BYTES, seed=seed),
        PowerCut(i, torn, from_tail=True, weak_bytes=WEAK_BYTES, seed=seed),
        PowerCut(i, None, weak_bytes=WEAK_BYTES, seed=seed),
    ]


def _second(j: int, torn: int, seed: int) -> PowerCut:
    """The recovery boot's cut at its operation j: clean, torn, torn-tail or weak in turn."""
    kinds = [
        PowerCut(j, seed=seed),
        PowerCut(j, torn, seed=seed),
        PowerCut(j, torn, from_tail=True, seed=seed),
        PowerCut(j, torn, weak_bytes=WEAK_BYTES, seed=seed),
    ]
    return kinds[j % len(kinds)]


def sampled_operations(total: int, sample: int | None) -> tuple[list[int], list[int]]:
    """The operations cut clean and those cut torn: all of them, or a sample every k-th."""
    if not sample or sample <= 1:
        return list(range(total)), list(range(total))
    ends = {0, total - 1}
    clean = sorted(ends | set(range(0, total, sample)))
    torn = sorted(ends | set(range(sample // 2, total, sample)))
    return clean, torn


def sweep(
    device: SimDevice,
    action: Sequence[Sequence[str]],
    check: Check,
    *,
    torn_bytes: int | None = None,
    hard: bool = False,
    double: tuple[int, int] | None = None,
    recovery: Sequence[Sequence[str]] = (("boot",),),
    seed: int = 0,
    workers: int = 2,
    sample: int | None = None,
) -> SweepReport:
    """Cut ``action`` at every flash operation (and, with ``torn_bytes``, tear each one), then
    call ``check(board, device, cut)``; it recovers the device, asserts, and names the outcome.

    ``hard`` (needs ``torn_bytes``): also the hard kinds of cut; in CI one per operation in
    turn (operation i gets kind i mod 4), all four of them with SUTURE_FULL_SWEEP=1.
    ``double=(firsts, seconds)``: double cuts; ``firsts`` first cuts spread over the action
    (kind in turn: clean, torn, torn-tail, weak), each followed by ``recovery`` cut at
    ``seconds`` of its operations spread evenly; with SUTURE_FULL_SWEEP=1 every first cut
    and every operation of its recovery. ``seed`` seeds the weak bytes' reads.
    ``sample=k`` (for sweeps whose every operation is slow to replay, and whose flash
    operations another sweep already cuts one by one): in CI, a clean cut at every k-th
    operation and a torn one at every k-th operation between those, plus the first and the
    last; every operation with SUTURE_FULL_SWEEP=1.

    The device's board is left as the uncut action leaves it."""
    board = device.board
    start = board.snapshot()
    full: RunResult = device.run(*action)
    if not full.ok:
        raise SimError(f"the uncut action failed:\n{full.stdout}\n{full.stderr}")
    total = full.ops_count
    end = board.snapshot()
    report = SweepReport(total_ops=total)
    every = full_sweeps()
    base = seed * 1_000_003
    clean_at, torn_at = sampled_operations(total, None if every else sample)
    cuts = [PowerCut(i, seed=base + i) for i in clean_at]
    if torn_bytes is not None:
        cuts += [PowerCut(i, torn_bytes, seed=base + i) for i in torn_at]
        if hard:
            for i in range(total):
                kinds = hard_cuts(i, torn_bytes, base + total + i)
                cuts += kinds if every else [kinds[i % len(kinds)]]
    firsts: list[PowerCut] = []
    seconds: int | None = None
    if double is not None:
        t = torn_bytes or 16
        pick = list(range(total)) if every else spread(total, double[0])
        seconds = None if every else double[1]
        for n, i in enumerate(pick):
            kind = [PowerCut(i), PowerCut(i, t), PowerCut(i, t, from_tail=True),
                    PowerCut(i, t, weak_bytes=WEAK_BYTES)][n % 4]
            firsts.append(replace(kind, seed=base + 2 * total + i))
    n = max(1, min(workers, len(cuts)))
    origin = board.workdir
    clones = [_clone(board, origin.with_name(f"{origin.name}-w{k}")) for k in range(n)]

    def worker(k: int) -> list[tuple[PowerCut, str]]:
        b = clones[k]
        dev = SimDevice(b, lib=device.lib)
        out: list[tuple[PowerCut, str]] = []
        for cut in cuts[k::n]:
            b.restore(start)
            r = dev.run(*action, power_cut=cut)
            if not r.power_cut_happened:
                raise AssertionError(f"{cut}: the action ended before the cut:\n{r.stdout}")
            dev.seed = (cut.seed or 0) + 7919
            out.append((cut, check(b, dev, cut)))
        for first in firsts[k::n]:
            b.restore(start)
            r = dev.run(*action, power_cut=first)
            if not r.power_cut_happened:
                raise AssertionError(f"{first}: the action ended before the cut:\n{r.stdout}")
            after = b.snapshot()
            dev.seed = first.seed
            ops = dev.run(*recovery).ops_count
            for j in spread(ops, seconds):
                b.restore(after)
                second = _second(j, torn_bytes or 16, (first.seed or 0) * 31 + j)
                r = dev.run(*recovery, power_cut=second)
                if not r.power_cut_happened:
                    raise AssertionError(f"{first} then {second}: the recovery ended before "
                                         f"the cut:\n{r.stdout}")
                dev.seed = (second.seed or 0) + 7919
                both = replace(first, second=second)
                out.append((both, check(b, dev, both)))
            out.append((first, ""))  # marks a first cut that had its recoveries cut
        return out

    with ThreadPoolExecutor(max_workers=n) as pool:
        for results in pool.map(worker, range(n)):
            for cut, outcome in results:
                if not outcome:
                    report.double_firsts += 1
                    continue
                if cut.second is not None:
                    report.double_cuts += 1
                    report.kinds[f"double after {cut.kind()}"] += 1
                elif cut.torn_bytes is None and not cut.weak_bytes:
                    report.cut_points += 1
                elif cut.kind() == "torn":
                    report.torn_points += 1
                else:
                    report.hard_points += 1
                    report.kinds[cut.kind()] += 1
                report.outcomes[outcome] += 1
    for b in clones:
        shutil.rmtree(b.workdir, ignore_errors=True)
    board.restore(end)
    return report
