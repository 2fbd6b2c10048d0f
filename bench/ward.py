"""The ward simulator: one device taking a 256 KiB update over loopback, and whole wards.

Figures (all measured in this run):
(a) one device, one update of a 256 KiB payload through a byte-counting loopback proxy,
    from the rollout's start to the device's confirmation (poll, download, verify while
    staging, reset, verify again, back up, install, trial boot, health check, confirm, report):
    seconds, bytes the device received and sent, and the bytes received as a ratio to the
    payload size;
(b) the live heap peak (after a collection, at every flash operation) of the device during
    the update of a 64 KiB and of a 256 KiB payload, and their ratio (bounded memory: ~1);
    the external flash erases of the 256 KiB update;
(c) baseline: the same device's MicroPython reading and hashing the same 256 KiB from a file
    (one process start included), and the update time as a ratio to it;
(d) whole-ward time (rollout start to the last confirmation, waves 1 / 25% / rest) for
    N = 10, 50 and 200 devices, and each as a ratio to N = 10. The scheduler's poll interval
    grows with N so that the polls stay near 40 requests a second on loopback.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from suture.sim.device import build_loader
from suture.ward.release import application_files
from suture.ward.run import WardConfig, run_ward

KIB = 1024
PAYLOAD = 256 * KIB
SCALE = 20.0
SIZES = (10, 50, 200)

HASH = """
import hashlib, time, sys
t = time.ticks_us()
h = hashlib.sha256()
b = bytearray(1024)
with open(sys.argv[1], "rb") as f:
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(memoryview(b)[:n])
print("US", time.ticks_diff(time.ticks_us(), t))
"""


def _filler(size: int = PAYLOAD) -> int:
    base = sum(len(v) + 6 + len(k) for k, v in application_files(2).items()) + 8
    return size - base - 6 - len("data/filler.bin")


def _baseline(tmp: Path) -> float:
    lib = build_loader(tmp / "mpy")
    data = os.urandom(PAYLOAD)
    (tmp / "payload.bin").write_bytes(data)
    (tmp / "hash.py").write_text(HASH)
    mp = Path(sys.executable).parent / "micropython"
    best = float("inf")
    for _ in range(3):
        t = time.monotonic()
        subprocess.run([str(mp), "hash.py", "payload.bin"], cwd=tmp, check=True,
                       capture_output=True, env=dict(os.environ, MICROPYPATH=str(lib)))
        best = min(best, time.monotonic() - t)
    hashlib.sha256(data)
    return best


def _one_device(tmp: Path, size: int = PAYLOAD, heap: bool = False) -> dict[str, Any]:
    cfg = WardConfig(devices=1, waves=("100%",), payload_filler=_filler(size),
                     clock_scale=SCALE, count_traffic=True, workdir=tmp / f"one-{size}-{heap}",
                     timeout_s=300, heap_sample=heap)
    r = run_ward(cfg).to_json()
    if r["updated"] != 1:
        raise RuntimeError(f"the single-device update did not complete: {r}")
    return r


def _ward(tmp: Path, n: int) -> dict[str, Any]:
    poll = max(10, round(n * SCALE / 40))
    cfg = WardConfig(devices=n, clock_scale=SCALE, poll_interval_s=poll,
                     workdir=tmp / f"n{n}", timeout_s=900, settle_s=5)
    r = run_ward(cfg).to_json()
    r["poll_interval_s"] = poll
    return r


def run() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="suture-bench-ward-") as name:
        tmp = Path(name)
        base_s = _baseline(tmp)
        one = _one_device(tmp)
        payload = PAYLOAD
        down = one["proxy"]["bytes_to_devices"]
        up = one["proxy"]["bytes_to_scheduler"]
        out["update_256kib_s"] = one["rollout_s"]
        out["update_256kib_bytes_received"] = down
        out["update_256kib_bytes_sent"] = up
        out["update_256kib_received_ratio_to_payload"] = round(down / payload, 3)
        out["baseline_hash_256kib_s"] = round(base_s, 3)
        out["update_256kib_ratio_to_baseline_hash"] = round(one["rollout_s"] / base_s, 1)
        out["update_256kib_external_erases"] = one["per_device"][0]["external_erases"]
        # Memory: the live heap at every flash operation, 64 KiB against 256 KiB payloads.
        small = _one_device(tmp, 64 * KIB, heap=True)["per_device"][0]["heap_peak"]
        large = _one_device(tmp, PAYLOAD, heap=True)["per_device"][0]["heap_peak"]
        out["update_64kib_heap_peak_bytes"] = small
        out["update_256kib_heap_peak_bytes"] = large
        out["heap_peak_ratio_256kib_to_64kib"] = round(large / small, 3) if small else None
        first = None
        for n in SIZES:
            r = _ward(tmp, n)
            key = f"ward_n{n}"
            out[f"{key}_rollout_s"] = r["rollout_s"]
            out[f"{key}_updated"] = r["updated"]
            out[f"{key}_bricked"] = r["bricked"]
            out[f"{key}_poll_interval_s"] = r["poll_interval_s"]
            if first is None:
                first = r["rollout_s"]
            out[f"{key}_ratio_to_n10"] = round(r["rollout_s"] / first, 2) if first else None
            if n != SIZES[-1] and n * 2 > 400:
                break
    return out
