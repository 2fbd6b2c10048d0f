"""A debug probe through pyocd's Python API: the one session `suture board …` opens on a probe,
and flash writes with pyocd's ``FileProgrammer``.

The probe is chosen without asking (pyocd's own chooser prompts on a terminal): the one
connected, or the one whose unique id contains ``--probe``. The target must be one pyocd has
here, built in or from an installed CMSIS pack, before a probe is looked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from suture.boardops.flashing import (
    FlashPlanError,
    FlashToolError,
    FlashUnreachableError,
    ProbeWrite,
)
from suture.boardops.toolio import StepProgress, ToolLog, captured_logs
from suture.boards.tools import ToolMissingError, pyocd_builtin_targets, pyocd_pack_targets


class ProbeAbsentError(FlashUnreachableError):
    """No debug probe (or none with the unique id asked for) is connected."""


class ProbeBusyError(FlashUnreachableError):
    """The probe is claimed by another debugger, or does not open."""


def require_target(target: str, pack: str | None) -> None:
    """Refuse a target pyocd does not have here, saying how to get it."""
    if target in pyocd_builtin_targets():
        return
    if target in pyocd_pack_targets():
        return
    if pack is not None:
        raise FlashPlanError(f"pyocd target {target} comes from the CMSIS pack {pack}, which is "
                             f"not installed: pyocd pack install {target}")
    raise FlashPlanError(f"pyocd has no target {target} (`pyocd list --targets`)")


def _choose_probe(probe_id: str | None) -> Any:
    from pyocd.core.helpers import ConnectHelper

    probes = ConnectHelper.get_all_connected_probes(blocking=False, unique_id=probe_id,
                                                    print_wait_message=False)
    if not probes:
        which = f" {probe_id}" if probe_id else ""
        raise ProbeAbsentError(f"no debug probe{which} found (is it plugged in?)")
    if len(probes) > 1:
        found = ", ".join(f"{p.unique_id} ({p.description})" for p in probes)
        raise FlashPlanError(f"{len(probes)} debug probes are connected ({found}): choose one "
                             "with --probe UID")
    return probes[0]


@contextlib.contextmanager
def open_session(target: str, pack: str | None, probe_id: str | None,
                 **options: Any) -> Iterator[tuple[Any, ToolLog]]:
    """An open pyocd session on the chosen probe for ``target`` (pyocd's log collected), closed
    afterwards; ``options`` are pyocd session options."""
    try:
        from pyocd.core.exceptions import Error as PyocdError
        from pyocd.core.session import Session
    except ImportError:
        raise ToolMissingError("pyocd") from None
    require_target(target, pack)
    with captured_logs("pyocd") as log:
        probe = _choose_probe(probe_id)
        try:
            session = Session(probe, target_override=target, **options)
            session.open()
        except (PyocdError, OSError) as exc:
            tail = f"; {log.tail()}" if log.lines else ""
            raise ProbeBusyError(f"the probe {probe.unique_id} is busy or failed to open: "
                                 f"{exc}{tail}") from None
        try:
            yield session, log
        finally:
            with contextlib.suppress(PyocdError, OSError):
                session.close()


def program(step: ProbeWrite, progress: StepProgress | None = None) -> None:
    """Run ``step`` as ``pyocd load`` does: halt the target at reset, write the image at its
    address, reset the target to run it."""
    with open_session(step.target, step.pack, step.probe) as (session, log):
        _program(session, log, step, progress)


def _program(session: Any, log: ToolLog, step: ProbeWrite,
             progress: StepProgress | None) -> None:
    from pyocd.core.exceptions import Error as PyocdError
    from pyocd.core.exceptions import TransferError
    from pyocd.flash.file_programmer import FileProgrammer

    total = step.image.stat().st_size

    def on_progress(fraction: float) -> None:
        if progress is not None:
            progress(step.description, round(fraction * total), total)

    try:
        session.target.reset_and_halt()
        FileProgrammer(session, progress=on_progress).program(
            str(step.image), file_format="bin", base_address=step.address)
    except (PyocdError, OSError) as exc:
        tail = f"; {log.tail()}" if log.lines else ""
        raise FlashToolError(f"pyocd failed to {step.description}: {exc}{tail}") from None
    # A reset can drop debug access for a moment: the image is written by then.
    with contextlib.suppress(TransferError):
        session.target.reset()
