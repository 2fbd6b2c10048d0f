"""the firmware on QEMU mps2-an385, in instructions (-icount shift=0)

With ``-icount shift=0`` QEMU runs one instruction per virtual nanosecond, so the FPGA's 25 MHz
counter (0x40028018) x 40 counts instructions. Measured in the real firmware (MicroPython v1.28.0
with the frozen loader, booted by stage0):

- boot to the REPL after the application ran: stage0 (verify + jump), MicroPython's start, the
  loader's recover, application v1's main();
- ES256 verification in the frozen loader (``loader.ecdsa_p256.verify``), and its ratio to a
  SHA-256 of 64 KiB in the same firmware (``hashlib``);
- the loader's verify of a staged payload of 96 KiB (sent over the REPL, which bounds its size)
  (bundle walk +
  SHA-256 from flash) as a ratio to ``hashlib.sha256`` of the same bytes in RAM-backed flash;
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


def _instructions(dev: Any, code: str) -> int:
    """Instructions spent in ``code`` (the counter read before and after, minus an empty run)."""
    wrap = (f"import machine\n_a = {_COUNTER}\n{code}\n_b = {_COUNTER}\nprint((_b - _a) * 40)"
            )
    return int(dev.exec(wrap).strip().splitlines()[-1])


def run() -> dict[str, Any]:
    from suture.qemu import QemuDevice
    from suture.sim.testing import example_app, sign_payload

    from tests.qemu.conftest import BOARD, Firmware, firmware

    repo = Path(__file__).resolve().parents[1]
    fw: Firmware = firmware.__wrapped__(repo)  # type: ignore[attr-defined]
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

        big = example_app(2, filler=96 * 1024)
        dev.stage(sign_payload(big, 2, fw.vendor_key), big, install=False)
        dev.exec("from loader.api import loader\nfrom loader.flash import RegionReader\n"
                 "_ld = loader()\n_r = _ld.journal.current\n_buf = bytearray(4096)")
        plain = _instructions(dev, "_h = hashlib.sha256()\n_rr = RegionReader(_ld.staging, _r.size)"
                              "\nwhile True:\n    _n = _rr.readinto(_buf)\n    if not _n:\n"
                              "        break\n    _h.update(memoryview(_buf)[:_n])") - empty
        verify = _instructions(
            dev, "from loader import bundle\n_h = hashlib.sha256()\n"
                 "bundle.verify_stream(RegionReader(_ld.staging, _r.size), _r.size, _h, _ld.buf)"
                 "\nassert _h.digest() == _r.digest") - empty
        dev.power_off()
    return {
        "boot_to_app_instructions": boot,
        "es256_verify_instructions": es256,
        "sha256_64k_instructions": sha64k,
        "es256_over_sha256_64k_ratio": round(es256 / sha64k, 2),
        "staged_payload_bytes": len(big),
        "staged_verify_instructions": verify,
        "sha256_same_bytes_instructions": plain,
        "staged_verify_over_sha256_ratio": round(verify / plain, 3),
        "firmware_flash_bytes": fw.build.flash_bytes,
        "firmware_ram_bss_bytes": fw.build.bss_bytes,
        "loader_image_bytes": fw.build.image_bytes,
    }
