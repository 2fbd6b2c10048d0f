"""Delta updates: patch sizes against the anchors, and what a delta costs the device.

Figures (all measured in this run):
(a) a MicroPython upgrade under the same loader: the QEMU board's (mps2-an385) signed loader
    image built from MicroPython v1.27.0 and from v1.28.0 with the same frozen loader and keys
    (each built once, incrementally, under build/firmware: ``make firmware`` with
    ``MICROPYTHON_VERSION=1.27.0`` and the default), the same size figures as (b) and (c), and
    on the simulated board the staging of the v1.28.0 image from the v1.27.0 one by its patch
    against the full image (the heap above the loaded loader, flash operations, sector erases,
    the staging's wall time and the update's time over the serial link), the two images carried
    as application bundles (the device stages a delta of its installed application);
(b) a one-line change in an application (a bundle of the agent's sources and a 64 KiB data
    table, one constant of one module changed) and (c) a change in the loader alone (the QEMU
    board's firmware, MicroPython v1.28.0 with the frozen loader, built twice from the same
    object files with one line of loader/loader/core.py changed): the patch as a fraction of the
    full image, for suture's format (32 KiB segments, 1 KiB window; and with a 32 KiB window),
    for detools' own sequential patch with each of its compressions (its best is reported), and
    for a plain LZMA of the full image (xz preset 9e);
(d) on the simulated board, for pair (b): the live heap above the loaded loader while the patch
    is applied (sampled after a collection at every read of the decompressor), against a full
    staging's (sampled at every flash operation); the bytes to send, flash operations and
    sector erases of the whole update (stage, then install at the next boot) with a delta and
    with the full payload; the staging's wall time on the host, and the update's time over a
    115200-baud serial link (bytes sent x 10 bits + staging time) as a ratio to the full one.

"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import detools  # type: ignore[import-untyped]
from suture import keys, suit
from suture.bundle import build_bundle
from suture.delta import apply, build, make_delta
from suture.sim.board import small_geometry
from suture.sim.testing import CLASS_ID, VENDOR_ID, provision, sign_payload

REPO = Path(__file__).resolve().parent.parent
LINK_BAUD = 115200
DETOOLS_COMPRESSIONS = ("lzma", "zstd", "bz2", "heatshrink", "crle", "lz4", "none")

MEASURE = b"""
import gc
from loader import delta as D
from loader import cbor, cose, ecdsa_p256, staging, suit, suit_hospital, trust
from loader.console import FileStream
inner = D._FlashStream.readinto
peak = [0]
def sampled(self, buf):
    gc.collect()
    used = gc.mem_alloc() - base
    if used > peak[0]:
        peak[0] = used
    return inner(self, buf)
D._FlashStream.readinto = sampled
with open(args[0], "rb") as f:
    env = f.read()
trust.keys(loader, "vendor")
loader.installed()
loader.backup_header()
gc.collect()
base = gc.mem_alloc()
loader.stage(env, FileStream(args[1]))
out["peak"] = peak[0]
out["base"] = base
"""


def _detools(source: bytes, target: bytes, compression: str) -> int:
    out = io.BytesIO()
    detools.create_patch(io.BytesIO(source), io.BytesIO(target), out, compression=compression)
    patch = out.getvalue()
    check = io.BytesIO()
    detools.apply_patch(io.BytesIO(source), io.BytesIO(patch), check)
    assert check.getvalue() == target
    return len(patch)


def _sizes(name: str, source: bytes, target: bytes) -> dict[str, Any]:
    full = len(target)
    patch = build(source, target)
    assert apply(source, patch) == target
    wide = build(source, target, window_bits=15)
    assert apply(source, wide) == target
    det = {c: _detools(source, target, c) for c in DETOOLS_COMPRESSIONS}
    best = min(det, key=lambda c: det[c])
    xz = len(lzma.compress(target, preset=9 | lzma.PRESET_EXTREME))
    return {
        f"{name}_full_image_bytes": full,
        f"{name}_suture_patch_bytes": len(patch),
        f"{name}_suture_patch_fraction": round(len(patch) / full, 4),
        f"{name}_suture_window32k_patch_fraction": round(len(wide) / full, 4),
        f"{name}_detools_lzma_fraction": round(det["lzma"] / full, 4),
        f"{name}_detools_heatshrink_fraction": round(det["heatshrink"] / full, 4),
        f"{name}_detools_crle_fraction": round(det["crle"] / full, 4),
        f"{name}_detools_best_fraction": round(det[best] / full, 4),
        f"{name}_detools_best_compression": best,
        f"{name}_plain_lzma_fraction": round(xz / full, 4),
        f"{name}_suture_vs_detools_best_ratio": round(len(patch) / det[best], 3),
    }


def _app_pair() -> tuple[bytes, bytes]:
    files = {f"lib/agent/{p.name}": p.read_bytes()
             for p in sorted((REPO / "device" / "agent").glob("*.py"))}
    rnd = hashlib.sha256(b"calibration").digest()
    table = b"".join(b"%d,%d,%s\n" % (i, (i * 37) % 1009, rnd[i % 32:i % 32 + 4].hex().encode())
                     for i in range(4000))[: 64 * 1024]
    files["data/calibration.csv"] = table
    files["main.py"] = (b"from agent import runner\n\nMAX_RATE = 120\n\n"
                        b"def main():\n    runner.run()\n")
    source = build_bundle(files)
    files["main.py"] = files["main.py"].replace(b"MAX_RATE = 120", b"MAX_RATE = 125")
    return source, build_bundle(files)


def _firmware_pair(work: Path) -> tuple[bytes, bytes] | None:
    """Two firmware images of the QEMU board differing in one line of the loader, built from a
    copy of the existing build's objects (only the frozen modules and the link are redone)."""
    base = REPO / "build" / "firmware" / "qemu-mps2-an385"
    tree = REPO / "build" / "firmware" / "micropython-1.28.0"
    if not (base / "mp-build" / "firmware.elf").is_file() or not tree.is_dir():
        return None
    from suture.boards import load_board
    from suture.firmware.build import QEMU_BOARD_DIR, QEMU_CMODULES, loader_address

    board = load_board("qemu-mps2-an385", REPO / "boards")
    images = []
    for variant in ("a", "b"):
        loader = work / variant / "loader"
        shutil.copytree(REPO / "loader", loader)
        if variant == "b":
            core = loader / "loader" / "core.py"
            text = core.read_text()
            changed = text.replace("_BUF = const(4096)  # one sector",
                                   "_BUF = const(2048)  # half a sector", 1)
            assert changed != text
            core.write_text(changed)
        config = work / variant / "config"
        shutil.copytree(base / "config", config)
        manifest = config / "manifest.py"
        manifest.write_text(manifest.read_text().replace(
            str(REPO / "loader" / "manifest.py"), str(loader / "manifest.py")))
        build_dir = work / variant / "mp-build"
        shutil.copytree(base / "mp-build", build_dir, symlinks=True)
        assert board.micropython is not None
        subprocess.run(
            ["make", "-C", str(tree / "ports" / "qemu"), f"-j{os.cpu_count() or 2}",
             f"BOARD={board.micropython.board}", f"BOARD_DIR={QEMU_BOARD_DIR}",
             f"BUILD={build_dir}", f"FROZEN_MANIFEST={manifest}",
             f"USER_C_MODULES={QEMU_CMODULES}", f"SUTURE_CPU={board.core}",
             f"SUTURE_MACHINE={board.mcu}", f"SUTURE_LOAD_ADDRESS={loader_address(board):#x}"],
            check=True, capture_output=True,
        )
        binary = work / variant / "firmware.bin"
        subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(build_dir / "firmware.elf"),
                        str(binary)], check=True)
        images.append(binary.read_bytes())
    return images[0], images[1]


def _micropython_pair() -> tuple[bytes, bytes]:
    """The QEMU board's signed loader images from MicroPython v1.27.0 and v1.28.0, the same
    frozen loader, board configuration and keys (build/firmware/BOARD and
    BOARD-micropython-1.27.0; an up-to-date build is not redone)."""
    from cryptography.hazmat.primitives import serialization
    from suture.boards import load_board
    from suture.firmware.build import build_firmware, dev_keys, firmware_folder

    board = load_board("qemu-mps2-an385", REPO / "boards")
    root = REPO / "build" / "firmware"
    vendor, loader = dev_keys(root / board.name / "keys")
    point = vendor.public_key().public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)
    images = []
    for version in ("1.27.0", "1.28.0"):
        fw = build_firmware(board, firmware_folder(root, board.name, version),
                            vendor_keys=[point], vendor_id=VENDOR_ID, class_id=CLASS_ID,
                            loader_key=loader, micropython_version=version)
        images.append(fw.loader_image.read_bytes())
    return images[0], images[1]


def _device(source: bytes, target: bytes, work: Path, prefix: str = "d",
            install: bool = True) -> dict[str, Any]:
    """The update from ``source`` to ``target`` on the simulated board, by delta and by the
    full image; ``install``: also the install at the next boot (an application bundle), else
    the staging alone (any image: the applier does not look inside it)."""
    key = keys.generate_private_key("ES256")
    geometry = small_geometry(internal_size=1024 * 1024, slot_size=512 * 1024)
    d = make_delta(source, target)
    out: dict[str, Any] = {}
    for kind in ("full", "delta"):
        p = provision(work / prefix / kind, geometry, key, app=source)
        with tempfile.TemporaryDirectory() as tmp:
            if kind == "delta":
                description = {
                    "sequence-number": 2, "vendor-id": str(VENDOR_ID),
                    "class-id": str(CLASS_ID),
                    "components": [d.component(["app"], "https://updates.example/app.delta")],
                }
                envelope = suit.create_envelope(description, key, base_dir=Path(tmp))
                payload = d.patch
            else:
                envelope = sign_payload(target, 2, key)
                payload = target
        env = p.board.put_file("v2.suit", envelope)
        pay = p.board.put_file("v2.payload", payload)
        before = sum(p.board.erase_counters())
        started = time.monotonic()
        staged = p.device.run(["stage", env, pay], env={"SUTURE_HEAP_SAMPLE": "1"})
        stage_s = time.monotonic() - started
        assert staged.ok, staged.stdout + staged.stderr
        ops = staged.ops_count
        if install:
            installed = p.device.run(["boot"], ["report"])
            assert installed.report()["installed_version"] == 2, installed.stdout
            ops += installed.ops_count
        else:
            rec = p.board.current_record()
            assert rec is not None
            assert rec.state.name == "STAGED", rec
            assert rec.digest == hashlib.sha256(target).digest()
        out[f"{prefix}_{kind}_bytes_sent"] = len(envelope) + len(payload)
        out[f"{prefix}_{kind}_flash_ops"] = ops
        out[f"{prefix}_{kind}_sector_erases"] = sum(p.board.erase_counters()) - before
        out[f"{prefix}_{kind}_stage_wall_s"] = round(stage_s, 3)
        out[f"{prefix}_{kind}_link_time_s"] = round(
            out[f"{prefix}_{kind}_bytes_sent"] * 10 / LINK_BAUD + stage_s, 2)
        out[f"{prefix}_{kind}_stage_heap_peak_bytes"] = int(
            str(staged.result.get("heap_peak", 0)))
        if kind == "delta":
            p2 = provision(work / prefix / "measure", geometry, key, app=source)
            script = p2.board.put_file("measure.py", MEASURE)
            r = p2.device.run(["exec", script, p2.board.put_file("v2.suit", envelope),
                               p2.board.put_file("v2.payload", payload)])
            assert r.ok, r.stdout + r.stderr
            out[f"{prefix}_delta_apply_heap_above_loaded_loader_bytes"] = int(
                str(r.result["peak"]))
    for figure, digits in (("bytes_sent", 4), ("link_time_s", 3), ("sector_erases", 3),
                           ("flash_ops", 3), ("stage_wall_s", 3)):
        name = figure.removesuffix("_s")
        out[f"{prefix}_delta_vs_full_{name}_ratio"] = round(
            out[f"{prefix}_delta_{figure}"] / out[f"{prefix}_full_{figure}"], digits)
    return out


def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    old, new = _micropython_pair()
    results.update(_sizes("a_micropython_1_27_to_1_28", old, new))
    results["a_micropython_patch_fraction_goal_met"] = (
        results["a_micropython_1_27_to_1_28_suture_patch_fraction"] <= 0.15)
    source, target = _app_pair()
    results.update(_sizes("b_app_one_line", source, target))
    with tempfile.TemporaryDirectory() as tmp:
        pair = _firmware_pair(Path(tmp))
        if pair is not None:
            results.update(_sizes("c_loader_only", *pair))
        else:
            results["c_loader_only"] = "no firmware build (make firmware BOARD=qemu-mps2-an385)"
        results.update(_device(source, target, Path(tmp)))
        # the pair's bytes carried as the application (the simulated board stages a delta of
        # the application's image from the installed one): the same patch, the same applier
        results.update(_device(build_bundle({"loader.img": old}),
                               build_bundle({"loader.img": new}), Path(tmp),
                               prefix="a_device", install=False))
    return results
