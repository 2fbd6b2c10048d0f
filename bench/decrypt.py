"""Encrypted payloads on the device (MicroPython unix port, sim board).

(a) decryption throughput of loader.aesstream (AES over cryptolib's ECB, counter mode and GHASH
in Python, into one 512-byte buffer), as a ratio to hashlib.sha256 over the same bytes in the
same run; (b) staging a 256 KiB application encrypted with A128CTR and A128GCM against the same
application in clear, on the simulated board: wall time and the live heap peak (sampled at
every flash operation), as ratios to the plain staging.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from suture import keys
from suture.cose.mac0 import SymmetricKey
from suture.formats import identity
from suture.sim import load_board
from suture.sim.pytest_fixtures import build_loader
from suture.sim.testing import encrypt_payload, example_app, provision, run_script, sign_payload

REPO = Path(__file__).resolve().parents[1]
KEK = bytes(range(16))

THROUGHPUT = """
import time, json, hashlib
from loader import aesstream
key = bytes(range(16))
data = bytearray(131072)
mv = memoryview(data)
out = bytearray(512)
res = {}
def rate(fn):
    t = time.ticks_us()
    for i in range(0, len(data), 512):
        fn(mv[i:i + 512])
    return len(data) / 1024 / (time.ticks_diff(time.ticks_us(), t) / 1e6)
h = hashlib.sha256()
res["sha256"] = rate(h.update)
ctr = aesstream.Ctr(key, bytes(16))
res["ctr"] = rate(lambda b: ctr.decrypt_into(b, out))
gcm = aesstream.Gcm(key, bytes(12))
res["gcm"] = rate(lambda b: gcm.decrypt_into(b, out))
print("RESULT " + json.dumps(res))
"""


def run() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lib = build_loader(work / "lib")
        rates = run_script(THROUGHPUT, micropypath=[lib], cwd=work, heapsize="512K")
        out["sha256_kib_per_s"] = round(rates["sha256"])
        for mode in ("ctr", "gcm"):
            out[f"{mode}_decrypt_kib_per_s"] = round(rates[mode])
            out[f"{mode}_decrypt_vs_sha256_ratio"] = round(rates[mode] / rates["sha256"], 4)
        geometry = load_board(REPO / "boards" / "sim" / "board.toml")
        vendor = keys.generate_private_key("ES256")
        payload = example_app(2, filler=256 * 1024)
        for kind in ("plain", "A128CTR", "A128GCM"):
            p = provision(work / kind, geometry, vendor, lib=lib)
            if kind == "plain":
                envelope, served = sign_payload(payload, 2, vendor), payload
            else:
                record = identity.encryption_keys([(identity.ENC_KIND_KEK, b"ward", KEK)])
                assert p.device.run(["nvm-put", identity.ENC_KEYS, record.hex(), "1"]).ok
                envelope, served = encrypt_payload(payload, 2, vendor,
                                                   [SymmetricKey(KEK, b"ward")], alg=kind)
            env = p.board.put_file("v2.suit", envelope)
            pay = p.board.put_file("v2.payload", served)
            started = time.monotonic()
            r = p.device.run(["stage", env, pay], env={"SUTURE_HEAP_SAMPLE": "1"})
            wall = time.monotonic() - started
            assert r.ok, r.stdout + r.stderr
            name = kind.lower()
            out[f"stage_{name}_wall_s"] = round(wall, 3)
            out[f"stage_{name}_heap_peak_bytes"] = int(str(r.result.get("heap_peak", 0)))
        for name in ("a128ctr", "a128gcm"):
            out[f"stage_{name}_vs_plain_wall_ratio"] = round(
                out[f"stage_{name}_wall_s"] / out["stage_plain_wall_s"], 2)
            out[f"stage_{name}_heap_above_plain_bytes"] = (
                out[f"stage_{name}_heap_peak_bytes"] - out["stage_plain_heap_peak_bytes"])
    return out
