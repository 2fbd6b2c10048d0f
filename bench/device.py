"""Device core on the simulated board: heap, wear and verification speed of an application update.

Figures (all measured in this run, on the `sim` board of boards/sim/board.toml):
(a) the smallest ``-X heapsize`` at which a 1 MiB application update completes
    (stage: verify the envelope and write the staging slot; boot: verify again, back up,
    install, trial; confirm);
(b) the live heap peak during that update for 64 KiB, 256 KiB and 1 MiB images, sampled after
    a garbage collection at every flash operation (it must not grow with the image size), the
    smallest heap that completes each, and as a baseline the heap right after importing the
    loader's modules (on the unix port their bytecode lives in the heap; frozen into a firmware
    image it stays in flash);
(c) erases per sector for one 1 MiB update: total, and the hottest sector;
(d) verifying a 1 MiB staged payload, best of 5 (the loader's pre-install check: read from
    flash, parse the bundle, SHA-256) as a ratio to plain ``hashlib.sha256`` over the same bytes
    in memory, in the same interpreter;
(e) one ES256 verification (best of 20), in ms and as a ratio to ``hashlib.sha256`` over 64 KiB.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from suture import keys
from suture.sim.board import load_board
from suture.sim.device import SimBoard, SimDevice, SimError
from suture.sim.testing import example_app, provision, sign_payload

REPO = Path(__file__).resolve().parent.parent
KIB = 1024
SIZES = {"64kib": 64 * KIB, "256kib": 256 * KIB, "1mib": 1024 * KIB}

TIMING = """
import gc
from loader import core, suit, cose, nvm, journal, installed  # everything an update loads
gc.collect()
code_heap = gc.mem_alloc()
import hashlib, time, json
from loader import bundle, ecdsa_p256
from loader.flash import RegionReader
from loader.hal import board as hal_board
b = hal_board()
st = b.region("staging")
size = int(args[0])
rounds = 5


def best(fn, n):
    t = None
    for _ in range(n):
        t0 = time.ticks_us()
        fn()
        d = time.ticks_diff(time.ticks_us(), t0)
        t = d if t is None or d < t else t
    return t


buf = bytearray(4096)  # the loader's own streaming buffer size (core._BUF)
verify_us = best(lambda: bundle.verify_stream(RegionReader(st, size), size, hashlib.sha256(), buf),
                 rounds)
data = bytearray(size)
st.read(0, data)
sha_us = best(lambda: hashlib.sha256(data).digest(), rounds)
del data
pub = bytes.fromhex(args[1]); digest = bytes.fromhex(args[2]); sig = bytes.fromhex(args[3])
ok = ecdsa_p256.verify(pub, digest, sig)
es_us = best(lambda: ecdsa_p256.verify(pub, digest, sig), 20)
blk = bytes(64 * 1024)
sha64_us = best(lambda: hashlib.sha256(blk).digest(), 20)
out["timing"] = {"code_heap": code_heap, "verify_us": verify_us, "sha_us": sha_us,
                 "es_us": es_us, "es_ok": ok, "sha64_us": sha64_us}
"""


class _Update:
    """A device with version 1 confirmed and a signed version 2 of `size` bytes to install."""

    def __init__(self, root: Path, size: int) -> None:
        self.key = keys.generate_private_key("ES256")
        geometry = load_board(REPO / "boards/sim/board.toml")
        p = provision(root, geometry, self.key, heapsize=512 * KIB)
        self.board: SimBoard = p.board
        self.payload = example_app(2, filler=size)
        self.env = self.board.put_file("v2.suit", sign_payload(self.payload, 2, self.key))
        self.pay = self.board.put_file("v2.bundle", self.payload)
        self.start = self.board.snapshot()

    def run(self, heap: int, *, sample: bool = False) -> tuple[bool, int]:
        """Stage, install and confirm at `heap` bytes; (completed, sampled live heap peak)."""
        self.board.restore(self.start)
        self.board.heapsize = heap
        dev = SimDevice(self.board)
        peak = 0
        steps = (["stage", self.env, self.pay], ["boot"], ["confirm"])
        env = {"SUTURE_HEAP_SAMPLE": "1"} if sample else None
        for step in steps:
            try:
                r = dev.run(step, env=env)
            except SimError:  # a MemoryError ends the process: the update did not complete
                return False, peak
            if not r.ok:
                return False, peak
            peak = max(peak, int(r.result.get("heap_peak", 0)))  # type: ignore[call-overload]
        rec = self.board.current_record()
        return rec is not None and rec.state.name == "CONFIRMED", peak

    def smallest_heap(self) -> int:
        lo, hi = 8 * KIB, 512 * KIB
        while hi - lo > KIB:
            mid = (lo + hi) // 2 // KIB * KIB
            if self.run(mid)[0]:
                hi = mid
            else:
                lo = mid
        return hi


def run() -> dict[str, float | int | str]:
    results: dict[str, float | int | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in SIZES.items():
            upd = _Update(Path(tmp) / name, size)
            ok, peak = upd.run(512 * KIB, sample=True)
            if not ok:
                raise RuntimeError(f"the {name} update did not complete")
            results[f"heap_live_peak_{name}_bytes"] = peak
            results[f"heap_smallest_{name}_bytes"] = upd.smallest_heap()
            if name == "1mib":
                results["a_smallest_heapsize_1mib_update_bytes"] = results[
                    f"heap_smallest_{name}_bytes"
                ]
                upd.board.restore(upd.start)
                before_ext = upd.board.erase_counters("external")
                before_int = upd.board.erase_counters("internal")
                upd.run(512 * KIB)
                ext = [a - b for a, b in zip(upd.board.erase_counters("external"), before_ext,
                                             strict=True)]
                intl = [a - b for a, b in zip(upd.board.erase_counters("internal"), before_int,
                                              strict=True)]
                results["c_erases_external_total"] = sum(ext)
                results["c_erases_external_hottest_sector"] = max(ext)
                results["c_erases_internal_total"] = sum(intl)
                results["c_erases_internal_hottest_sector"] = max(intl)
                journal = upd.board.board.regions["journal"]
                sector = upd.board.board.external.sector
                results["c_erases_journal_sectors_total"] = sum(
                    ext[journal.offset // sector : (journal.offset + journal.size) // sector]
                )
                results.update(_timing(upd))
    results["b_heap_peak_above_loaded_loader_1mib_bytes"] = int(
        results["heap_live_peak_1mib_bytes"]
    ) - int(results["b_heap_after_loading_the_loader_bytes"])
    results["b_heap_growth_1mib_over_64kib_ratio"] = round(
        int(results["heap_live_peak_1mib_bytes"]) / int(results["heap_live_peak_64kib_bytes"]), 3
    )
    return results


def _timing(upd: _Update) -> dict[str, float | int | str]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    upd.board.restore(upd.start)
    upd.board.heapsize = 8192 * KIB
    dev = SimDevice(upd.board)
    assert dev.run(["stage", upd.env, upd.pay]).ok
    key = ec.generate_private_key(ec.SECP256R1())
    msg = b"suture bench"
    r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    pub = keys.public_key_bytes(key.public_key())
    digest = hashes.Hash(hashes.SHA256())
    digest.update(msg)
    script = upd.board.put_file("timing.py", TIMING.encode())
    res = dev.run(["exec", script, str(len(upd.payload)), pub.hex(), digest.finalize().hex(),
                   (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex()])
    if not res.ok:
        raise RuntimeError(res.stdout + res.stderr)
    t = res.result["timing"]
    assert isinstance(t, dict)
    if t["es_ok"] is not True:
        raise RuntimeError("the ES256 signature did not verify")
    return {
        "d_verify_1mib_staged_ms": round(t["verify_us"] / 1000, 2),
        "d_sha256_1mib_in_memory_ms": round(t["sha_us"] / 1000, 2),
        "d_verify_1mib_ratio_to_sha256": round(t["verify_us"] / t["sha_us"], 2),
        "b_heap_after_loading_the_loader_bytes": t["code_heap"],
        "e_es256_verify_ms": round(t["es_us"] / 1000, 2),
        "e_es256_verify_ratio_to_sha256_64kib": round(t["es_us"] / t["sha64_us"], 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
