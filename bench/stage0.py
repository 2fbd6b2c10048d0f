"""stage0: boot-to-jump cost for a 256 KiB loader image, and the size of each target.

The instruction counts come from valgrind's callgrind on the host build (the same portable core
and crypto libraries as the Cortex-M builds, compiled for the host): the whole decision
(``suture_stage0_run``), split into hashing the body (``suture_flash_sha256``) and verifying
the signature (``suture_p256_verify``). The baseline measured in the same run is the hashing
itself: ``boot_to_jump_ratio_to_sha256`` says how much a boot costs beyond hashing the image.

On the Cortex-M3 build (QEMU mps2-an385, ``-icount shift=0``: one instruction per virtual
nanosecond), the stand-in loader reads the FPGA's 25 MHz counter on entry: x 40 it is the number
of instructions stage0 ran from reset to the jump (checked once against QEMU's single-step exec
log: 34,496,314 logged vs 862,340 x 40 = 34,493,600). Booting a minimal image and a 256 KiB one
splits hashing from the rest (signature verification, header, journal, counter, messages).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from suture.firmware.locking import make_stage0

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.stage0.flashimg builds the flash images

IMAGE_BODY = 256 * 1024
TARGETS = ("an385", "an386", "an505")


def _build() -> Path:
    return make_stage0(REPO / "stage0")


def _inclusive(annotate: str, function: str) -> int:
    for line in annotate.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\*?\s*\S*:" + re.escape(function) + r"\b", line)
        if m:
            return int(m.group(1).replace(",", ""))
    raise RuntimeError(f"{function} not in the callgrind profile")


def _callgrind(build: Path) -> dict[str, int]:
    from suture.keys import generate_private_key

    from tests.stage0 import flashimg as fi

    key = generate_private_key("ES256")
    image = fi.make_image(key, os.urandom(IMAGE_BODY), counter=1, load_address=0x00020200)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "int.bin").write_bytes(fi.provisioned_internal(key, image))
        (work / "ext.bin").write_bytes(fi.staged_external(None))
        out = work / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        str(build / "host" / "stage0-host"), "boot", str(work / "int.bin"),
                        str(work / "ext.bin")], check=True, capture_output=True)
        annotate = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                                   str(out)], check=True, capture_output=True, text=True).stdout
    return {
        "boot": _inclusive(annotate, "suture_stage0_run"),
        "hash": _inclusive(annotate, "suture_flash_sha256"),
        "sign": _inclusive(annotate, "suture_p256_verify"),
    }


def _qemu_m3(build: Path) -> dict[str, int]:
    from suture.keys import generate_private_key

    from tests.stage0 import flashimg as fi
    from tests.stage0 import qemu

    key = generate_private_key("ES256")
    loader = (build / "an385" / "test-loader.bin").read_bytes()
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        padded = loader + os.urandom(IMAGE_BODY - len(loader))
        for name, body in (("min", loader), ("256k", padded)):
            image = fi.make_image(key, body, counter=1,
                                  load_address=qemu.MACHINES["an385"].load_address)
            run = qemu.boot(build, "an385", fi.provisioned_internal(key, image),
                            fi.staged_external(None), Path(tmp) / name, count_instructions=True)
            m = re.search(r"loader: fpgaio counter (\d+)", run.uart)
            if not m:
                raise RuntimeError(f"no counter from the loader: {run.uart}")
            counts[name] = int(m.group(1)) * 40
    hashing = (counts["256k"] - counts["min"]) * IMAGE_BODY // (IMAGE_BODY - len(loader))
    return {"boot": counts["256k"], "min": counts["min"], "hash": hashing}


def _sizes(build: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for target in TARGETS:
        text = subprocess.run(["arm-none-eabi-size", str(build / target / "stage0.elf")],
                              check=True, capture_output=True, text=True).stdout
        t, d, b = (int(x) for x in text.splitlines()[1].split()[:3])
        out[f"size_{target}_text_plus_data_bytes"] = t + d
        out[f"size_{target}_bss_bytes"] = b
    return out


def run() -> dict[str, object]:
    build = _build()
    counts = _callgrind(build)
    result: dict[str, object] = {
        "image_body_bytes": IMAGE_BODY,
        "boot_to_jump_host_instructions": counts["boot"],
        "hashing_host_instructions": counts["hash"],
        "signature_verify_host_instructions": counts["sign"],
        "other_host_instructions": counts["boot"] - counts["hash"] - counts["sign"],
        "boot_to_jump_ratio_to_sha256": round(counts["boot"] / counts["hash"], 3),
        "signature_verify_ratio_to_sha256": round(counts["sign"] / counts["hash"], 3),
        "hashing_instructions_per_byte": round(counts["hash"] / IMAGE_BODY, 2),
    }
    m3 = _qemu_m3(build)
    result.update({
        "m3_boot_to_jump_instructions": m3["boot"],
        "m3_hashing_instructions": m3["hash"],
        "m3_signature_and_rest_instructions": m3["boot"] - m3["hash"],
        "m3_minimal_image_boot_instructions": m3["min"],
        "m3_boot_to_jump_ratio_to_sha256": round(m3["boot"] / m3["hash"], 3),
        "m3_hashing_instructions_per_byte": round(m3["hash"] / IMAGE_BODY, 2),
    })
    result.update(_sizes(build))
    return result
