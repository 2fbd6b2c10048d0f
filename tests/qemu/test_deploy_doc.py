"""docs/deploy-to-a-board.md, section 0, run as written: the whole-device image command, then
QEMU on that image with the doc's command line, which boots the application."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Firmware

pytestmark = pytest.mark.qemu


def _blocks(doc: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", doc, flags=re.S)


def test_section_0_commands_boot_the_image(firmware: Firmware, repo_root: Path,
                                           tmp_path: Path) -> None:
    doc = (repo_root / "docs" / "deploy-to-a-board.md").read_text()
    section = doc[doc.index("## 0.") : doc.index("## 1.")]
    blocks = _blocks(section)
    image_cmds = next(b for b in blocks if "suture firmware image" in b)
    qemu_cmd = next(b for b in blocks if b.startswith("qemu-system-arm"))
    run = tmp_path / "work"
    run.mkdir()
    (run / ".venv").symlink_to(repo_root / ".venv")
    (run / "stage0").symlink_to(repo_root / "stage0")
    (run / "build" / "firmware").mkdir(parents=True)
    (run / "build" / "firmware" / "qemu-mps2-an385").symlink_to(
        firmware.build.loader_image.parent)
    script = "\n".join(line for line in image_cmds.splitlines() if not line.startswith("#"))
    out = tmp_path / "device.bin"
    script = script.replace("--app myapp", f"--app myapp --out {out}")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=run,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "whole-device image for qemu-mps2-an385" in proc.stdout
    argv = qemu_cmd.split("\n#")[0].replace("\\\n", " ").split()
    argv = [a.replace("build/firmware/qemu-mps2-an385/device.bin", str(out)) for a in argv]
    argv = [a for a in argv if a != "-nographic"] + [
        "-display", "none", "-monitor", "none", "-serial", "stdio"]
    proc2 = subprocess.Popen(argv, cwd=run, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    assert proc2.stdout is not None
    console = ""
    deadline = time.monotonic() + 60
    try:
        while ">>> " not in console and time.monotonic() < deadline:
            ready, _, _ = select.select([proc2.stdout], [], [], 1)
            if ready:
                chunk = os.read(proc2.stdout.fileno(), 4096)
                if not chunk:
                    break
                console += chunk.decode(errors="replace")
    finally:
        proc2.kill()
        proc2.wait()
    for line in ("stage0: starting the loader", "SUTURE-BOOT CONFIRMED", "hello from bed 7"):
        assert line in console, console[-2000:]
