"""stage0's SHA-256 and ECDSA P-256 (core/crypto.c over HACL*, built with the same flags as the
Cortex-M targets) against public vectors and against the host's `cryptography`, through
`stage0-host crypto`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SIG_SIZE = 64  # the header's signature field: r || s, 32 bytes each


def _ask(build: Path, lines: list[str]) -> list[str]:
    proc = subprocess.run([str(build / "host" / "stage0-host"), "crypto"],
                          input="".join(line + "\n" for line in lines), capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-500:] + proc.stderr
    answers = proc.stdout.splitlines()
    assert len(answers) == len(lines)
    return answers


def _suite(shared_vectors: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_vectors / "wycheproof" / name).read_text())
    return data


def _verdicts(build: Path, lines: list[str], expected: list[str], ids: list[int]) -> list[str]:
    """Run the p256 requests; every answer must be the suite's verdict."""
    answers = _ask(build, lines)
    for tc, want, got in zip(ids, expected, answers, strict=True):
        assert got == want, f"tcId {tc}: expected {want}, stage0 said {got}"
    return answers


def _key_xy(group: dict[str, Any]) -> str:
    uncompressed = bytes.fromhex(group["publicKey"]["uncompressed"])
    assert uncompressed[0] == 4
    assert len(uncompressed) == 65
    return uncompressed[1:].hex()


def test_wycheproof_p1363_through_stage0(stage0_build: Path, shared_vectors: Path,
                                         figures: Any) -> None:
    suite = _suite(shared_vectors, "ecdsa_secp256r1_sha256_p1363_test.json")
    lines, expected, ids = [], [], []
    unrepresentable = 0
    for group in suite["testGroups"]:
        key = _key_xy(group)
        for case in group["tests"]:
            sig = bytes.fromhex(case["sig"])
            if len(sig) != SIG_SIZE:
                # The header's field holds exactly 64 bytes: such a signature cannot reach
                # stage0. Every one of them is an invalid case in the suite.
                assert case["result"] == "invalid", case["tcId"]
                unrepresentable += 1
                continue
            digest = hashlib.sha256(bytes.fromhex(case["msg"])).hexdigest()
            lines.append(f"p256 {digest} {key} {sig.hex()}")
            expected.append(case["result"])
            ids.append(case["tcId"])
    answers = _verdicts(stage0_build, lines, expected, ids)
    assert len(answers) + unrepresentable == suite["numberOfTests"]
    assert answers.count("valid") > 100
    assert answers.count("invalid") > 50
    figures("wycheproof p1363 cases through stage0", len(answers))
    figures("wycheproof p1363 cases a 64-byte field cannot hold", unrepresentable)


def test_wycheproof_der_cases_through_stage0(stage0_build: Path, shared_vectors: Path,
                                             figures: Any) -> None:
    """The DER suite's signatures that decode strictly: their verdict is about the numbers, not
    the encoding, so stage0 must agree with it on the raw r || s."""
    suite = _suite(shared_vectors, "ecdsa_secp256r1_sha256_test.json")
    lines, expected, ids = [], [], []
    for group in suite["testGroups"]:
        key = _key_xy(group)
        for case in group["tests"]:
            if case["result"] not in ("valid", "invalid"):
                continue
            try:
                r, s = decode_dss_signature(bytes.fromhex(case["sig"]))
            except ValueError:
                continue
            if r >= 1 << 256 or s >= 1 << 256:
                continue
            raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
            digest = hashlib.sha256(bytes.fromhex(case["msg"])).hexdigest()
            lines.append(f"p256 {digest} {key} {raw.hex()}")
            expected.append(case["result"])
            ids.append(case["tcId"])
    answers = _verdicts(stage0_build, lines, expected, ids)
    assert len(answers) > 200
    figures("wycheproof DER cases with a strict encoding through stage0", len(answers))


def test_signatures_from_cryptography_verify_and_altered_ones_do_not(
        stage0_build: Path) -> None:
    lines, expected = [], []
    for _ in range(40):
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        xy = (numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")).hex()
        message = os.urandom(448)
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        digest = hashlib.sha256(message).digest()
        lines.append(f"p256 {digest.hex()} {xy} {sig.hex()}")
        expected.append("valid")
        altered = bytearray(digest)
        altered[os.urandom(1)[0] % 32] ^= 1 << (os.urandom(1)[0] % 8)
        lines.append(f"p256 {bytes(altered).hex()} {xy} {sig.hex()}")
        expected.append("invalid")
        # (r, n - s) also verifies under ECDSA; stage0 follows the standard and accepts it.
        n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        assert decode_dss_signature(encode_dss_signature(r, n - s)) == (r, n - s)
        lines.append(f"p256 {digest.hex()} {xy} {(sig[:32] + (n - s).to_bytes(32, 'big')).hex()}")
        expected.append("valid")
    assert _ask(stage0_build, lines) == expected


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=700), chunk=st.integers(1, 130))
def test_sha256_matches_hashlib_in_any_pieces(stage0_build: Path, data: bytes,
                                              chunk: int) -> None:
    [answer] = _ask(stage0_build, [f"sha256 {chunk} {data.hex()}"])
    assert answer == hashlib.sha256(data).hexdigest()


def test_sha256_of_a_large_body_in_flash_reads(stage0_build: Path) -> None:
    body = os.urandom(256 * 1024 + 37)
    answers = _ask(stage0_build, [f"sha256 512 {body.hex()}", f"sha256 4096 {body.hex()}",
                                  "sha256 64 " + (b"a" * 1000).hex()])
    assert answers[:2] == [hashlib.sha256(body).hexdigest()] * 2
    assert answers[2] == hashlib.sha256(b"a" * 1000).hexdigest()


def test_malformed_requests_are_refused(stage0_build: Path) -> None:
    proc = subprocess.run([str(stage0_build / "host" / "stage0-host"), "crypto"],
                          input="p256 00 11 22\nsha256 0 00\nmd5 1 00\n", capture_output=True,
                          text=True, check=False, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == ["error", "error", "error"]
