"""The QEMU board definitions describe the flash map stage0's ports are built with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from suture.boards import load_board

from . import flashimg as fi
from . import qemu


@pytest.mark.parametrize("target", sorted(qemu.MACHINES))
def test_board_matches_stage0_layout(repo_root: Path, target: str) -> None:
    board = load_board(f"qemu-mps2-{target}")
    machine = qemu.MACHINES[target]
    internal = {r.name: r for r in board.internal_flash.regions}
    external = {r.name: r for r in board.external_flash.regions}
    assert board.internal_flash.base == machine.internal_base
    # stage0 sits at the boot address: the internal flash's base, or an alias of it
    assert board.boot_address in (board.internal_flash.base, *board.internal_flash.aliases)
    assert internal["provisioning"].offset == fi.PROVISION_OFF
    assert internal["counter"].offset == fi.COUNTER_OFF
    assert (internal["loader"].offset, internal["loader"].size) == (fi.LOADER_OFF, fi.SLOT_SIZE)
    # stage0 sees the first INTERNAL_SIZE / EXTERNAL_SIZE bytes; the board may hold more
    # (littlefs, the application's backup) beyond them
    assert board.internal_flash.size >= fi.INTERNAL_SIZE
    assert board.external_flash.size >= fi.EXTERNAL_SIZE
    # stage0's loader backup: a region of its own where the board has one
    loader_backup = "loader-backup" if "loader-backup" in external else "backup"
    for name, off in (("journal", fi.JOURNAL_OFF), ("staging", fi.STAGING_OFF),
                      (loader_backup, fi.BACKUP_OFF)):
        assert external[name].offset == off
    for name in ("staging", loader_backup):
        assert external[name].size == fi.SLOT_SIZE
    # and the port's linker script puts the external flash where the tests load it
    ld = "an385.ld" if target != "an505" else "an505.ld"
    text = (repo_root / "stage0" / "port" / "qemu-mps2" / ld).read_text()
    m = re.search(r"__suture_external_base\s*=\s*(0x[0-9A-Fa-f]+)", text)
    assert m
    assert int(m.group(1), 16) == machine.external_base
