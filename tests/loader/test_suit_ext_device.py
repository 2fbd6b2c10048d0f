"""The device's building blocks for the SUIT extensions, on the MicroPython unix port: AES key
wrap, streaming AES-CTR and AES-GCM over cryptolib's ECB, HMAC and COSE_Mac0, ECDH-ES+AES-KW,
SUIT_Encryption_Info, and the dependency tree. With the drafts' examples
(tests/vectors/suit-ext), RFC 3394's and NIST's vectors, and `cryptography` on random cases."""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suit"))
from ext_samples import PAYLOADS, PLAINTEXT, published_keys
from suture import keys

RunMpy = Callable[..., Any]


def _point(key: keys.PublicKey) -> str:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


CASES = """
import sys, json
from loader import aeskw, aesstream
cases = json.loads(open(sys.argv[1]).read())
out = []
for c in cases:
    key, iv, data = bytes.fromhex(c["key"]), bytes.fromhex(c["iv"]), bytes.fromhex(c["data"])
    if c["kind"] == "kw":
        out.append(aeskw.unwrap(key, data).hex())
    elif c["kind"] == "ctr":
        d = aesstream.Ctr(key, iv)
        parts = []
        pos = 0
        for cut in c["cuts"] + [len(data)]:
            parts.append(d.update(data[pos:cut])); pos = cut
        # resume from a byte offset: a new decryptor at the cut
        r = aesstream.Ctr(key, iv, c["cuts"][0])
        out.append([b"".join(parts).hex(), r.update(data[c["cuts"][0]:]).hex()])
    else:
        aad = bytes.fromhex(c["aad"])
        d = aesstream.Gcm(key, iv, aad)
        first = d.update(data[:c["cuts"][0]])
        # a reset: a new decryptor from the saved state
        d = aesstream.Gcm(key, iv, aad, d.state())
        rest = d.update(data[c["cuts"][0]:])
        try:
            out.append((first + rest + d.finish()).hex())
        except Exception as e:
            out.append(type(e).__name__)
print("RESULT " + json.dumps(out))
"""


NIST4_KEY = "feffe9928665731c6d6a8f9467308308"
NIST4_AAD = "feedfacedeadbeeffeedfacedeadbeefabaddad2"
NIST4_PT = ("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e"
            "2449a6b525b16aedf5aa0de657ba637b39")
NIST4_CT = ("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a"
            "5aac84aa051ba30b396a0aac973d58e091")
NIST4_TAG = "5bc94fbc3221a5db94fae95ae7121a47"


def test_the_nist_case_is_what_cryptography_computes() -> None:
    out = AESGCM(bytes.fromhex(NIST4_KEY)).encrypt(
        bytes.fromhex("cafebabefacedbaddecaf888"), bytes.fromhex(NIST4_PT),
        bytes.fromhex(NIST4_AAD))
    assert out.hex() == NIST4_CT + NIST4_TAG


def test_kw_ctr_gcm_match_rfc3394_nist_and_cryptography(
    run_mpy: RunMpy, tmp_path: Path
) -> None:
    rng = random.Random(19)
    cases: list[dict[str, Any]] = [
        # RFC 3394 section 4.1 and 4.6
        {"kind": "kw", "key": "000102030405060708090A0B0C0D0E0F", "iv": "",
         "data": "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
         "want": "00112233445566778899AABBCCDDEEFF"},
        {"kind": "kw",
         "key": "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "iv": "",
         "data": "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
         "want": "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"},
        # NIST GCM test case 4 (AES-128, 60-byte plaintext, 20-byte AAD)
        {"kind": "gcm", "key": NIST4_KEY, "iv": "cafebabefacedbaddecaf888", "aad": NIST4_AAD,
         "data": NIST4_CT + NIST4_TAG, "cuts": [17], "want": NIST4_PT},
    ]
    for _ in range(16):
        key = os.urandom(rng.choice([16, 32]))  # cryptolib: no AES-192
        data = os.urandom(rng.randint(0, 300))
        kind = rng.choice(["kw", "ctr", "gcm"])
        if kind == "kw":
            cek = os.urandom(rng.choice([16, 24, 32, 40]))
            cases.append({"kind": "kw", "key": key.hex(), "iv": "",
                          "data": aes_key_wrap(key, cek).hex(), "want": cek.hex()})
        elif kind == "ctr":
            iv = os.urandom(16) if rng.random() < 0.8 else b"\xff" * 16  # counter wraps
            enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
            cut = rng.randint(0, len(data))
            cases.append({"kind": "ctr", "key": key.hex(), "iv": iv.hex(),
                          "data": (enc.update(data) + enc.finalize()).hex(),
                          "cuts": [cut], "want": [data.hex(), data[cut:].hex()]})
        else:
            iv, aad = os.urandom(12), os.urandom(rng.randint(0, 40))
            ct = AESGCM(key).encrypt(iv, data, aad)
            cut = rng.randint(0, len(ct))
            cases.append({"kind": "gcm", "key": key.hex(), "iv": iv.hex(), "aad": aad.hex(),
                          "data": ct.hex(), "cuts": [cut], "want": data.hex()})
            bad = bytearray(ct)
            bad[rng.randrange(len(bad))] ^= 1
            cases.append({"kind": "gcm", "key": key.hex(), "iv": iv.hex(), "aad": aad.hex(),
                          "data": bytes(bad).hex(), "cuts": [cut], "want": "TagMismatchError"})
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    got = run_mpy(CASES, str(tmp_path / "cases.json"), heapsize="256K")
    for case, result in zip(cases, got, strict=True):
        want = case["want"]
        expected = want.lower() if isinstance(want, str) and want != "TagMismatchError" else want
        assert result == expected, case


VECTORS = """
import sys, json
from loader import suit_encryption, suit_deps, mac0
from loader.errors import LoaderError
folder = sys.argv[1]
kek = b"a" * 16
d = int(sys.argv[2], 16)
good = [("kw", b"kid-1", kek), ("ecdh", b"kid-2", d)]
wrong = [("kw", None, b"b" * 16), ("ecdh", None, d ^ 0x10)]
out = {}
def run(info, ct, keys):
    try:
        dec = suit_encryption.open_payload(info, keys)
        return (dec.update(ct[:7]) + dec.update(ct[7:]) + dec.finish()).decode()
    except LoaderError as e:
        return type(e).__name__
for name in sys.argv[3].split(","):
    info = open(folder + "/enc-encryption-info-" + name + ".cbor", "rb").read()
    ct = open(folder + "/enc-encrypted-payload-" + name + ".bin", "rb").read()
    out[name] = [run(info, ct, good), run(info, ct, wrong)]
print("RESULT " + json.dumps(out))
"""


def test_every_encrypted_payload_decrypts_on_the_device(
    run_mpy: RunMpy, ext_vectors: Path
) -> None:
    d = published_keys(ext_vectors)["ecdh"].private_key.private_numbers().private_value
    got = run_mpy(VECTORS, str(ext_vectors), f"{d:064x}", ",".join(PAYLOADS), heapsize="256K")
    assert got == {name: [PLAINTEXT.decode(), "KeyUnwrapError"] for name in PAYLOADS}


MANIFESTS = """
import sys, json
from loader import suit_deps, suit_encryption
from loader.errors import LoaderError
folder, d = sys.argv[1], int(sys.argv[2], 16)
example, distributor = bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4])
hmac_key = b"a" * 32
dec_keys = [("kw", b"kid-1", b"a" * 16), ("ecdh", b"kid-2", d)]
payload = open(folder + "/enc-encrypted-payload-aes-kw-aes-gcm.bin", "rb").read()
dependent = open(folder + "/td-example0-dependent.cbor", "rb").read()
fetched = {"http://example.com/dependent.suit": dependent}
cases = [
    ("enc-manifest-aes-kw", {"mac_keys": [hmac_key]}),
    ("enc-manifest-aes-kw", {"mac_keys": [b"b" * 32]}),
    ("enc-manifest-aes-kw", {"keys": [example]}),
    ("enc-manifest-aes-kw-slot", {"mac_keys": [hmac_key]}),
    ("enc-manifest-aes-kw-content", {"mac_keys": [hmac_key]}),
    ("enc-manifest-es-ecdh-content", {"keys": [example]}),
    ("enc-manifest-es-ecdh-content", {"keys": [distributor]}),
    ("enc-manifest-es-ecdh-dependency", {"keys": [distributor], "dep_keys": [example]}),
    ("enc-manifest-es-ecdh-dependency", {"keys": [distributor]}),
    ("enc-manifest-es-ecdh-dependency", {"keys": [example]}),
    ("td-example0-dependent", {"keys": [example]}),
    ("td-example1-process", {"keys": [example], "fetched": fetched}),
    ("td-example1-process", {"keys": [example]}),
    ("td-example1-process", {"keys": [example], "dep_keys": [distributor], "fetched": fetched}),
    ("td-example2-integrated", {"keys": [example]}),
    ("td-example2-integrated", {"keys": [distributor]}),
]
out = []
for name, kw in cases:
    data = open(folder + "/" + name + ".cbor", "rb").read()
    try:
        env, manifest, params, deps = suit_deps.verify_tree(data, **kw)
        result = {"deps": [[i, uri, src] for i, uri, src, _ in deps]}
        p = params[0]
        if 19 in p:
            ct = p.get(18)
            if ct is None:
                ct = payload
            dec = suit_encryption.open_payload(p[19], dec_keys)
            result["plain"] = (dec.update(ct) + dec.finish()).decode()
        out.append(result)
    except LoaderError as e:
        out.append(type(e).__name__)
print("RESULT " + json.dumps(out))
"""


def test_manifests_and_dependencies_verify_on_the_device(
    run_mpy: RunMpy, ext_vectors: Path, example_pubkey: keys.PublicKey
) -> None:
    d = published_keys(ext_vectors)["ecdh"].private_key.private_numbers().private_value
    distributor = keys.load_public_key(ext_vectors / "enc-dependent-signer-pubkey.pem")
    got = run_mpy(MANIFESTS, str(ext_vectors), f"{d:064x}", _point(example_pubkey),
                  _point(distributor), heapsize="256K")
    plain = PLAINTEXT.decode()
    assert got == [
        {"deps": [], "plain": plain},
        "SignatureError",
        "SignatureError",
        {"deps": [], "plain": plain},
        {"deps": [], "plain": plain},
        {"deps": [], "plain": plain},
        "SignatureError",
        {"deps": [[1, "#dependency-manifest", "integrated"]], "plain": plain},
        "SignatureError",
        "SignatureError",
        {"deps": []},
        {"deps": [[1, "http://example.com/dependent.suit", "fetched"]]},
        "SuitError",
        "SignatureError",
        {"deps": [[1, "#dependent.suit", "integrated"]]},
        "SignatureError",
    ]


HOSPITAL = """
import sys, json
from loader import suit_deps
from loader.errors import LoaderError
data = open(sys.argv[1], "rb").read()
hospital, vendor = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
out = []
for keys, dep_keys in ((hospital, vendor), (vendor, vendor), (hospital, hospital)):
    try:
        _, _, params, deps = suit_deps.verify_tree(data, keys=[keys], dep_keys=[dep_keys])
        out.append([[i, uri, src] for i, uri, src, _ in deps] + [params[0].get(4)])
    except LoaderError as e:
        out.append(type(e).__name__)
print("RESULT " + json.dumps(out))
"""


def test_the_hospitals_manifest_verifies_under_two_anchors_on_the_device(
    run_mpy: RunMpy, tmp_path: Path
) -> None:
    from suit_samples import sample_description, write_images
    from suture.suit import HospitalConditions, create_dependent_envelope, create_envelope

    write_images(tmp_path)
    vendor = keys.generate_private_key("ES256")
    hospital = keys.generate_private_key("ES256")
    vendor_env = create_envelope(sample_description(), vendor, base_dir=tmp_path)
    data = create_dependent_envelope(
        vendor_env, vendor.public_key(), hospital, sequence_number=4,
        conditions=HospitalConditions(not_after=1_900_000_000),
    )
    (tmp_path / "hospital.suit").write_bytes(data)
    got = run_mpy(HOSPITAL, str(tmp_path / "hospital.suit"), _point(hospital.public_key()),
                  _point(vendor.public_key()), heapsize="256K")
    assert got == [[[2, "#vendor.suit", "integrated"], 1_900_000_000],
                   "SignatureError", "SignatureError"]


@pytest.fixture(scope="session")
def ext_vectors(shared_vectors: Path) -> Path:
    return shared_vectors / "suit-ext"


@pytest.fixture(scope="session")
def example_pubkey(shared_vectors: Path) -> keys.PublicKey:
    return keys.load_public_key(shared_vectors / "suit" / "draft-examples-pubkey.pem")
