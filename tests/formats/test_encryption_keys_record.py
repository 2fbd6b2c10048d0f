"""The NVM record of the device's decryption keys (`enc.keys`, docs/formats/suit-encryption.md)
is written by the host (suture.formats.identity.encryption_keys) and read by the loader
(loader/loader/encrypted.py parse_keys): the two agree both ways, on the kinds' numbers and on
every record the host writes, and the doc's kinds are theirs."""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from suture.formats import identity
from suture.formats.identity import EnrolmentError

REPO = Path(__file__).resolve().parents[2]
LOADER = REPO / "loader" / "loader" / "encrypted.py"
DOC = REPO / "docs" / "formats" / "suit-encryption.md"

PARSE = """
import sys, json
from loader import encrypted
out = []
for line in open(sys.argv[1]):
    keys = encrypted.parse_keys(bytes.fromhex(line.strip()))
    out.append([[k, (kid or b"").hex(), v.hex() if k == "kw" else "%064x" % v]
                for k, kid, v in keys])
print("RESULT " + json.dumps(out))
"""


def _loader_constants() -> dict[str, object]:
    tree = ast.parse(LOADER.read_text())
    out: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Call) and value.args:  # const(N)
                value = value.args[0]
            if isinstance(value, ast.Constant):
                out[node.targets[0].id] = value.value
    return out


def test_the_loader_reads_the_record_and_kinds_the_host_defines() -> None:
    consts = _loader_constants()
    assert consts["KEYS"] == identity.ENC_KEYS
    assert (consts["KIND_KEK"], consts["KIND_ECDH"]) == (identity.ENC_KIND_KEK,
                                                          identity.ENC_KIND_ECDH)
    doc = DOC.read_text()
    assert re.search(r"kind: 1 an AES key-encryption key, 2 a P-256 private key", doc)
    assert f"`{identity.ENC_KEYS}`" in doc


def test_every_record_the_host_writes_reads_back_on_the_device(
    run_mpy: Callable[..., Any], tmp_path: Path
) -> None:
    rng = random.Random(19)
    records = []
    for _ in range(20):
        entries = []
        for _ in range(rng.randint(0, 4)):
            kind = rng.choice([identity.ENC_KIND_KEK, identity.ENC_KIND_ECDH])
            size = rng.choice([16, 32]) if kind == identity.ENC_KIND_KEK else 32
            entries.append((kind, rng.randbytes(rng.randint(0, 12)), rng.randbytes(size)))
        records.append(entries)
    path = tmp_path / "records.txt"
    path.write_text("".join(identity.encryption_keys(e).hex() + "\n" for e in records))
    got = run_mpy(PARSE, str(path))
    want = [[["kw" if kind == identity.ENC_KIND_KEK else "ecdh", kid.hex(), key.hex()]
             for kind, kid, key in entries] for entries in records]
    assert got == want


@pytest.mark.parametrize("entries", [
    [(identity.ENC_KIND_KEK, b"", b"k" * 24)],
    [(identity.ENC_KIND_ECDH, b"", b"k" * 16)],
    [(3, b"", b"k" * 16)],
    [(identity.ENC_KIND_KEK, b"k" * 256, b"k" * 16)],
    [(identity.ENC_KIND_KEK, b"kid-0123", b"k" * 32)] * 14,
])
def test_the_host_refuses_a_record_the_device_could_not_use(
    entries: list[tuple[int, bytes, bytes]]
) -> None:
    with pytest.raises(EnrolmentError):
        identity.encryption_keys(entries)
