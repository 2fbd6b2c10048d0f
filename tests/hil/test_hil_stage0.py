"""stage0 on the QEMU boards (``--target qemu-mps2-an385|an386|an505``): it hands over to a
loader signed with the provisioned key and refuses one signed with another, changing nothing.
These tests exist only for QEMU targets; test_hil_qemu_runs.py runs them in CI."""

from __future__ import annotations

import pytest
from suture import keys
from suture.devicectl.qemu_target import QemuStage0Target

pytestmark = [pytest.mark.hil, pytest.mark.hil_targets("qemu")]


def test_stage0_hands_over_to_the_signed_loader(qemu_board: QemuStage0Target) -> None:
    key = keys.generate_private_key("ES256")
    internal, external = qemu_board.provisioned_flash(
        key, qemu_board.signed_loader(key, counter=4))
    run = qemu_board.boot(internal, external)
    assert "loader: running version 1.4.0 security counter 4" in run.uart
    assert "RECOVERY" not in run.uart


def test_stage0_refuses_a_loader_signed_by_another_key(qemu_board: QemuStage0Target) -> None:
    key, rogue = keys.generate_private_key("ES256"), keys.generate_private_key("ES256")
    internal, external = qemu_board.provisioned_flash(
        key, qemu_board.signed_loader(rogue, counter=4))
    run = qemu_board.boot(internal, external)
    assert "loader: running" not in run.uart
    assert "RECOVERY" in run.uart
    assert run.internal == internal  # a refusal changes nothing
