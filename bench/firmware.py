"""the firmware on QEMU mps2-an385, in instructions (-icount shift=0)

With ``-icount shift=0`` QEMU runs one instruction per virtual nanosecond, so the FPGA's 25 MHz
counter (0x40028018) x 40 counts instructions. Measured in the real firmware (MicroPython v1.28.0
with the frozen loader, booted by stage0):

- boot to the REPL after the application ran: stage0 (verify + jump), MicroPython's start, the
  loader's recover, application v1's main();
- ES256 verification in the frozen loader (``loader.ecdsa_p256.verify``), and its ratio to a
  SHA-256 of 64 KiB in the same firmware (``hashlib``);
- the loader's verify of a staged payload (bundle walk + SHA-256 from flash) as a ratio to
  ``hashlib.sha256`` of the same bytes;
- the heap an application update needs in the firmware: the smallest free heap (the rest held
  by a ballast) with which staging and installing complete, for a small and for the largest
  update this board's map holds (its staging slot and littlefs are 896 KiB): the payload is
  written by the host into a spare region of the flash file and staged from there, so nothing
  of it passes through the REPL;
- the loader's decryption of an encrypted payload (``loader.aesstream``: its counter mode and
  GHASH over ``cryptolib``'s AES-ECB, mbed TLS's aes.c), AES-128-CTR and AES-256-GCM over 64 KiB,
  as ratios to a SHA-256 of 64 KiB;
- firmware and loader-image sizes.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_COUNTER = "machine.mem32[0x40028018]"
KIB = 1024
SMALL_FILLER = 64 * KIB
LARGE_FILLER = 768 * KIB  # the largest bundle the an385 map's 896 KiB slot and littlefs hold

_SETUP = """
from loader.api import loader
from loader.flash import Region, RegionReader
import gc
_ld = loader()
_env = {env!r}
"""
_TRIAL = """
_src = RegionReader(Region(_ld.board.external, {off}, {size}, "source"), {n})
gc.collect()
_ballast = [None] * 512  # in pieces: the free heap is not one block
_i = 0
for _piece in (4096, 1024, 128):
    while gc.mem_free() > {free} + _piece + 64 and _i < 512:
        try:
            _ballast[_i] = bytearray(_piece)
        except MemoryError:  # no block of this size left: smaller pieces
            break
        _i += 1
print("SUTURE-FREE", gc.mem_free())
try:
    _ld.stage(_env, _src, True)
    _r = _ld.recover()
    print("SUTURE-TRIAL", _r.name(), _r.version)
except MemoryError:
    print("SUTURE-TRIAL MemoryError")
"""


def _region(board: Any, name: str) -> tuple[int, int]:
    for r in board.external_flash.regions:
        if r.name == name:
            return int(r.offset), int(r.size)
    raise KeyError(name)


def _update_heap(fw: Any, board: Any, folder: Path, filler: int) -> int:
    """The smallest free heap (bytes, 1 KiB resolution) with which an update of an application
    with ``filler`` bytes of data stages and installs in the firmware."""
    from suture.qemu import QemuDevice
    from suture.sim.testing import example_app, sign_payload

    dev = QemuDevice(board, fw.stage0_elf, folder)
    dev.factory_flash(fw.build.loader_image.read_bytes(), fw.loader_key.public_key())
    dev.power_on()
    dev.provision(example_app(1), 1)
    dev.power_off()
    payload = example_app(2, filler=filler)
    off, size = _region(board, "spare-end")
    assert len(payload) <= size
    flash = bytearray(dev.read_flash())
    at = dev.external_offset + off
    flash[at : at + len(payload)] = payload
    snapshot = bytes(flash)
    env = sign_payload(payload, 2, fw.vendor_key)

    def completes(free: int) -> bool:
        dev.power_off()
        dev.write_flash(snapshot)
        dev.power_on(timeout_s=120)
        dev.exec(_SETUP.format(env=env))
        out = dev.exec(_TRIAL.format(off=off, size=size, n=len(payload), free=free),
                       timeout_s=600)
        dev.power_off()
        # Too little heap ends in a MemoryError while staging, or in an install the loader
        # reverts (it treats the MemoryError as a failed install): not complete either way.
        assert "SUTURE-TRIAL" in out, out
        return "SUTURE-TRIAL TRIAL 2" in out

    lo, hi = 4 * KIB, 128 * KIB
    assert completes(hi), "the update does not complete with 128 KiB free"
    while hi - lo > KIB:
        mid = (lo + hi) // 2 // KIB * KIB
        if completes(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _instructions(dev: Any, code: str) -> int:
    """Instructions spent in ``code`` (the counter read before and after, minus an empty run)."""
    wrap = (f"import machine\n_a = {_COUNTER}\n{code}\n_b = {_COUNTER}\nprint((_b - _a) * 40)"
            )
    return int(dev.exec(wrap).strip().splitlines()[-1])


_DECRYPT_SETUP = """
from loader import aesstream
_ct = bytes(16384)
_ctv = memoryview(_ct)
_out = bytearray(512)
"""
_DECRYPT_64K = """
for _r in range(4):
    for _i in range(0, 16384, 512):
        _d.decrypt_into(_ctv[_i : _i + 512], _out)
"""


def _decrypt_64k(dev: Any, empty: int) -> dict[str, int]:
    """Instructions the loader's decryptors spend on 64 KiB of ciphertext, in the 512-byte
    pieces loader.encrypted feeds them."""
    dev.exec(_DECRYPT_SETUP)
    out = {}
    for name, make in (("ctr128", "aesstream.Ctr(bytes(16), bytes(16))"),
                       ("gcm256", "aesstream.Gcm(bytes(32), bytes(12))")):
        dev.exec(f"_d = {make}")
        out[name] = _instructions(dev, _DECRYPT_64K) - empty
    return out


def run() -> dict[str, Any]:
    from suture.qemu import QemuDevice
    from suture.sim.testing import example_app, sign_payload

    from tests.qemu.conftest import BOARD, Firmware, build

    repo = Path(__file__).resolve().parents[1]
    fw: Firmware = build(repo, BOARD)
    from suture.boards import load_board

    with tempfile.TemporaryDirectory() as tmp:
        dev = QemuDevice(load_board(BOARD), fw.stage0_elf, Path(tmp) / "dev", icount=True)
        dev.factory_flash(fw.build.loader_image.read_bytes(), fw.loader_key.public_key())
        dev.power_on()
        dev.provision(example_app(1), 1)
        dev.reset()
        boot = int(dev.exec(f"import machine\nprint({_COUNTER} * 40)").strip())
        empty = _instructions(dev, "pass")

        key = ec.generate_private_key(ec.SECP256R1())
        msg = b"suture benchmark message"
        der = key.sign(msg, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        pub = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        digest = hashlib.sha256(msg).digest()
        dev.exec(f"from loader import ecdsa_p256\n_pub = {pub!r}\n_h = {digest!r}\n_s = {sig!r}")
        assert "True" in dev.exec("print(bool(ecdsa_p256.verify(_pub, _h, _s)))")
        es256 = _instructions(dev, "ecdsa_p256.verify(_pub, _h, _s)") - empty
        dev.exec("import hashlib\n_blk = bytes(16384)")
        sha64k = _instructions(dev, "_h = hashlib.sha256()\nfor _ in range(4):\n"
                               "    _h.update(_blk)\n_h.digest()") - empty

        decrypt = _decrypt_64k(dev, empty)

        # the largest payload, written by the host into a spare region, staged from there
        big = example_app(2, filler=LARGE_FILLER)
        off, size = _region(dev.board, "spare-end")
        dev.power_off()
        flash = bytearray(dev.read_flash())
        flash[dev.external_offset + off : dev.external_offset + off + len(big)] = big
        dev.write_flash(bytes(flash))
        dev.power_on(timeout_s=300)
        dev.exec(_SETUP.format(env=sign_payload(big, 2, fw.vendor_key)))
        dev.exec(f"_ld.stage(_env, RegionReader(Region(_ld.board.external, {off}, {size}, "
                 f"'source'), {len(big)}), False)", timeout_s=900)
        dev.exec("import hashlib\nfrom loader.api import loader\n"
                 "from loader.flash import RegionReader\n"
                 "_ld = loader()\n_r = _ld.journal.current\n_buf = bytearray(4096)")
        plain = _instructions(dev, "_h = hashlib.sha256()\n_rr = RegionReader(_ld.staging, _r.size)"
                              "\nwhile True:\n    _n = _rr.readinto(_buf)\n    if not _n:\n"
                              "        break\n    _h.update(memoryview(_buf)[:_n])") - empty
        verify = _instructions(
            dev, "from loader import bundle\n_h = hashlib.sha256()\n"
                 "bundle.verify_stream(RegionReader(_ld.staging, _r.size), _r.size, _h, _ld.buf)"
                 "\nassert _h.digest() == _r.digest") - empty
        dev.power_off()
        board = load_board(BOARD)
        heap_small = _update_heap(fw, board, Path(tmp) / "small", SMALL_FILLER)
        heap_large = _update_heap(fw, board, Path(tmp) / "large", LARGE_FILLER)
    return {
        "boot_to_app_instructions": boot,
        "es256_verify_instructions": es256,
        "sha256_64k_instructions": sha64k,
        "es256_over_sha256_64k_ratio": round(es256 / sha64k, 2),
        "decrypt_ctr128_64k_instructions": decrypt["ctr128"],
        "decrypt_gcm256_64k_instructions": decrypt["gcm256"],
        "decrypt_ctr128_over_sha256_64k_ratio": round(decrypt["ctr128"] / sha64k, 2),
        "decrypt_gcm256_over_sha256_64k_ratio": round(decrypt["gcm256"] / sha64k, 2),
        "staged_payload_bytes": len(big),
        "staged_verify_instructions": verify,
        "sha256_same_bytes_instructions": plain,
        "staged_verify_over_sha256_ratio": round(verify / plain, 3),
        "update_heap_small_payload_bytes": len(example_app(2, filler=SMALL_FILLER)),
        "update_heap_small_min_free_bytes": heap_small,
        "update_heap_large_payload_bytes": len(example_app(2, filler=LARGE_FILLER)),
        "update_heap_large_min_free_bytes": heap_large,
        "update_heap_large_over_small_ratio": round(heap_large / heap_small, 3),
        "firmware_flash_bytes": fw.build.flash_bytes,
        "firmware_ram_bss_bytes": fw.build.bss_bytes,
        "loader_image_bytes": fw.build.image_bytes,
    }
