"""Run a flash plan (:func:`suture.boardops.flashing.flash_plan`) with a progress bar."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from suture.boardops.flashing import (
    UF2_MOUNT_ROOTS,
    CopyToVolume,
    FlashCommand,
    FlashPlanError,
    FlashStep,
    find_volume,
)

# Where each flashing tool comes from, for the "not installed" message.
INSTALL_HINTS = {
    "pyocd": "pip install pyocd",
    "adafruit-nrfutil": "pip install adafruit-nrfutil",
    "esptool": "pip install esptool",
    "dfu-util": "apt-get install dfu-util",
}

StepProgress = Callable[[str, int, int], None]  # (description, done, total)


def _run_command(step: FlashCommand, progress: StepProgress | None) -> None:
    tool = step.argv[0]
    if shutil.which(tool) is None:
        hint = INSTALL_HINTS.get(tool, "install it")
        raise FlashPlanError(f"{tool} is not installed ({hint}); needed to {step.description}")
    if progress is not None:
        progress(step.description, 0, 1)
    proc = subprocess.run(list(step.argv), capture_output=True, text=True, check=False)
    if proc.returncode:
        tail = "; ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise FlashPlanError(f"{tool} failed to {step.description} (exit {proc.returncode}): "
                             f"{tail}")
    if progress is not None:
        progress(step.description, 1, 1)


def _copy(
    step: CopyToVolume, progress: StepProgress | None, roots: tuple[Path, ...]
) -> None:
    volume = find_volume(step.volume, roots)
    if volume is None:
        raise FlashPlanError(
            f"no {step.volume} drive is mounted: start the board in its UF2 bootloader "
            "(hold BOOTSEL or double-tap reset while plugging it in)"
        )
    data = step.source.read_bytes()
    total = len(data)
    with (volume / step.source.name).open("wb") as out:
        for offset in range(0, total, 64 * 1024):
            out.write(data[offset : offset + 64 * 1024])
            if progress is not None:
                progress(step.description, min(offset + 64 * 1024, total), total)


def run_flash_plan(
    steps: Sequence[FlashStep],
    progress: StepProgress | None = None,
    *,
    uf2_roots: tuple[Path, ...] = UF2_MOUNT_ROOTS,
) -> None:
    """Run each step in order; the first failure raises FlashPlanError with its reason."""
    for step in steps:
        if isinstance(step, FlashCommand):
            _run_command(step, progress)
        else:
            _copy(step, progress, uf2_roots)
