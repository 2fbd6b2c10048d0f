"""The device's copy of the delta format's constants (loader/loader/delta.py) agrees with the
one description (suture.delta.format), both ways; and the check fails when a copy drifts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from suture.delta import format as fmt

REPO = Path(__file__).resolve().parents[2]
LOADER = REPO / "loader" / "loader" / "delta.py"
# the format's constants: every one the host module defines in capitals, apart from Python's
NAMES = sorted(n for n in vars(fmt) if n.isupper() and not n.startswith("_"))


def loader_constants(source: str) -> dict[str, object]:
    """NAME = value and NAME = const(value) at the top level of a MicroPython module."""
    out: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if not isinstance(target, ast.Name) or not target.id.isupper():
                continue
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "const":
                value = value.args[0]
            try:
                out[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    return out


def differences(source: str) -> list[str]:
    device = {k: v for k, v in loader_constants(source).items() if not k.startswith("_")}
    problems = [f"{n}: host {getattr(fmt, n)!r}, device {device.get(n, 'missing')!r}"
                for n in NAMES if device.get(n) != getattr(fmt, n)]
    problems += [f"{n}: on the device only" for n in device if n not in NAMES]
    return problems


def test_the_device_copy_agrees_both_ways() -> None:
    assert differences(LOADER.read_text(encoding="utf-8")) == []
    assert len(NAMES) >= 20


@pytest.mark.parametrize(("old", "new", "name"), [
    ("HEADER_SIZE = const(96)", "HEADER_SIZE = const(92)", "HEADER_SIZE"),
    ('MAGIC = b"SUDL"', 'MAGIC = b"SUDX"', "MAGIC"),
    ("OFF_TARGET_DIGEST = const(60)\n", "", "OFF_TARGET_DIGEST"),
    ("SECTOR = const(4096)\n", "SECTOR = const(4096)\nEXTRA = const(1)\n", "EXTRA"),
])
def test_a_drifted_copy_is_found(old: str, new: str, name: str) -> None:
    source = LOADER.read_text(encoding="utf-8")
    drifted = source.replace(old, new, 1)
    assert drifted != source
    assert any(p.startswith(name) for p in differences(drifted))


def test_the_header_layout_is_its_struct() -> None:
    import struct

    assert struct.calcsize(fmt.HEADER_FORMAT) + 4 == fmt.HEADER_SIZE == fmt.OFF_HEADER_CRC + 4
    assert struct.calcsize(fmt.ENTRY_FORMAT) == fmt.ENTRY_SIZE
    offsets = [fmt.OFF_MAGIC, fmt.OFF_VERSION, fmt.OFF_WINDOW_BITS, fmt.OFF_RESERVED,
               fmt.OFF_SEGMENT_SIZE, fmt.OFF_SOURCE_SIZE, fmt.OFF_TARGET_SIZE, fmt.OFF_SEGMENTS,
               fmt.OFF_PATCH_SIZE, fmt.OFF_SOURCE_DIGEST, fmt.OFF_TARGET_DIGEST]
    sizes = [struct.calcsize("<" + c) for c in ("4s", "B", "B", "H", "I", "I", "I", "I", "I",
                                                "32s", "32s")]
    assert [o + s for o, s in zip(offsets, sizes, strict=True)][:-1] == offsets[1:]
