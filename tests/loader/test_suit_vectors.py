"""The device's SUIT processor on the draft's example envelopes (tests/vectors/suit)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

PROCESS = """
import sys, json
from loader import suit
from loader.errors import LoaderError
pub = bytes.fromhex(sys.argv[1])
ids = (bytes.fromhex("fa6b4a53d5ad5fdfbe9de663e4d41ffe"),
       bytes.fromhex("1492af1425695e48bf429b2d51f2ab45"), b"")
out = {}
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    try:
        p = suit.process(data, [pub], ids)
        c = p.components[0]
        out[path.split("/")[-1]] = {"seq": p.seq, "digest": c.digest().hex(), "size": c.size(),
            "uri": c.params.get(21), "actions": [a[0] for a in c.actions], "n": len(p.components)}
    except LoaderError as e:
        out[path.split("/")[-1]] = {"error": type(e).__name__}
print("RESULT " + json.dumps(out))
"""

DIGEST = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"


def _pub(path: Path) -> str:
    key = load_pem_public_key(path.read_bytes())
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


def test_draft_examples(run_mpy: Callable[..., dict[str, Any]], shared_vectors: Path) -> None:
    suit_dir = shared_vectors / "suit"
    files = sorted(str(p) for p in suit_dir.glob("*.cbor"))
    got = run_mpy(PROCESS, _pub(suit_dir / "draft-examples-pubkey.pem"), *files)
    for name in ("draft-example0", "draft-example1", "draft-example2", "draft-example2-severed"):
        r = got[f"{name}.cbor"]
        assert r["digest"] == DIGEST
        assert r["size"] == 34768
        assert r["n"] == 1
    assert got["draft-example0.cbor"]["seq"] == 0
    assert got["draft-example1.cbor"]["seq"] == 1
    assert got["draft-example1.cbor"]["uri"] == "http://example.com/file.bin"
    assert got["draft-example2.cbor"]["seq"] == 2
    assert got["draft-example2.cbor"]["uri"] == (
        "http://example.com/very/long/path/to/file/file.bin"
    )
    assert got["draft-example2.cbor"]["actions"] == ["fetch", "invoke"]
    assert got["draft-example2-severed.cbor"]["actions"] == ["invoke"]
    unsigned = [n for n in got if "unsigned" in n]
    assert len(unsigned) == 3
    for name in unsigned:
        assert got[name] == {"error": "UnsignedError"}


def test_draft_examples_wrong_key_and_identity(
    run_mpy: Callable[..., dict[str, Any]], shared_vectors: Path
) -> None:
    from suture import keys

    other = keys.public_key_bytes(keys.generate_private_key("ES256").public_key()).hex()
    path = str(shared_vectors / "suit/draft-example0.cbor")
    assert run_mpy(PROCESS, other, path)["draft-example0.cbor"] == {"error": "SignatureError"}
    wrong_vendor = PROCESS.replace("fa6b4a53", "fa6b4a54")
    pub = _pub(shared_vectors / "suit/draft-examples-pubkey.pem")
    assert run_mpy(wrong_vendor, pub, path)["draft-example0.cbor"] == {"error": "ConditionFailed"}
