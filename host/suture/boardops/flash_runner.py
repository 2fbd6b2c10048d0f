"""Run a flash plan (:func:`suture.boardops.flashing.flash_plan`) with a progress bar.

esptool, adafruit-nrfutil and pyocd are driven through their Python APIs (the ``boards``
extra); dfu-util, a C program, runs as a command. A tool that is missing, a board that does not
answer and a write that fails each stop the plan with one line saying which and why.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import assert_never

from suture.boardops.flashing import (
    UF2_MOUNT_ROOTS,
    CopyToVolume,
    DfuPackageBuild,
    EsptoolWrite,
    FlashCommand,
    FlashPlanError,
    FlashStep,
    FlashToolError,
    ProbeWrite,
    SerialDfu,
    find_volume,
)
from suture.boardops.toolio import StepProgress
from suture.boards.tools import ToolMissingError

# Where a flashing program that is not a Python dependency comes from.
INSTALL_HINTS = {
    "dfu-util": "apt-get install dfu-util",
}


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
        raise FlashToolError(f"{tool} failed to {step.description} (exit {proc.returncode}): "
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


def run_step(
    step: FlashStep,
    progress: StepProgress | None = None,
    *,
    uf2_roots: tuple[Path, ...] = UF2_MOUNT_ROOTS,
) -> None:
    """Run one step of a flash plan."""
    from suture.boardops import esp, nrf_dfu, probe

    try:
        if isinstance(step, FlashCommand):
            _run_command(step, progress)
        elif isinstance(step, CopyToVolume):
            _copy(step, progress, uf2_roots)
        elif isinstance(step, ProbeWrite):
            probe.program(step, progress)
        elif isinstance(step, EsptoolWrite):
            esp.write_flash(step, progress)
        elif isinstance(step, DfuPackageBuild):
            nrf_dfu.run_package_build(step)
        elif isinstance(step, SerialDfu):
            nrf_dfu.serial_dfu(step, progress)
        else:
            assert_never(step)
    except ToolMissingError as exc:
        raise FlashPlanError(f"{exc}; needed to {step.description}") from None


def run_flash_plan(
    steps: Sequence[FlashStep],
    progress: StepProgress | None = None,
    *,
    uf2_roots: tuple[Path, ...] = UF2_MOUNT_ROOTS,
) -> None:
    """Run each step in order; the first failure raises FlashPlanError with its reason."""
    for step in steps:
        run_step(step, progress, uf2_roots=uf2_roots)
