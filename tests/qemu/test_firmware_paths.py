"""A firmware build in a folder whose path holds a space is refused at once with what to do:
MicroPython's makefiles split their paths at spaces, and would fail deep in the build."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from suture import keys
from suture.boards.load import load_board
from suture.firmware.build import build_firmware
from suture.firmware.errors import FirmwareError


def test_a_build_in_a_folder_with_a_space_is_refused_before_anything_is_made(
        tmp_path: Path) -> None:
    out = tmp_path / "my builds" / "an385"
    with pytest.raises(FirmwareError, match=r"path holds a space: .*my builds"):
        build_firmware(load_board("qemu-mps2-an385"), out, vendor_keys=[],
                       vendor_id=uuid.uuid4(), class_id=uuid.uuid4(),
                       loader_key=keys.generate_private_key("ES256"))
    assert not (tmp_path / "my builds").exists()
