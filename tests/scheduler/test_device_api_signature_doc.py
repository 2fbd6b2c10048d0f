"""docs/formats/device-api.md against its definitions, both ways, for what the device key and
the report add: the worked example's Suture-Signature is what `cryptography` (RFC 6979) and the
loader's signer on the unix port compute and what the scheduler's check accepts; the report
table lists exactly the fields `ReportIn` takes; the agent's signature scheme is the
scheduler's."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from suture.formats.trust_store import sec1_point
from suture.scheduler import credentials
from suture.scheduler.schemas import ReportIn

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "formats" / "device-api.md"
MICROPYTHON = REPO / ".venv" / "bin" / "micropython"
REPORT_BODY = (b'{"state":"downloading","rollout_id":3,"release_id":7,"progress":65536,'
               b'"installed":{"app":4}}')
KEY = bytes(range(1, 33))
PATH = "/api/v1/devices/pump-0042/reports"


def _sts() -> bytes:
    return credentials.string_to_sign("POST", PATH, "pump-0042", 1767225660, 18,
                                      hashlib.sha256(REPORT_BODY).hexdigest())


def _doc_signature() -> str:
    m = re.search(r"Suture-Signature: ([0-9a-f]{128})", DOC.read_text())
    assert m is not None
    return m.group(1)


def test_worked_signature_is_the_rfc6979_one_and_verifies() -> None:
    key = ec.derive_private_key(int.from_bytes(KEY, "big"), ec.SECP256R1())
    r, s = decode_dss_signature(key.sign(credentials.signed_text(_sts()), ec.ECDSA(
        hashes.SHA256(), deterministic_signing=True)))
    assert (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex() == _doc_signature()
    req = credentials.SignedRequest("pump-0042", 1767225660, 18, "0" * 64)
    digest = hashlib.sha256(REPORT_BODY).hexdigest()
    assert credentials.check_signature(sec1_point(key), req, _doc_signature(), method="POST",
                                       path=PATH, body_digest_hex=digest)
    assert not credentials.check_signature(sec1_point(key), req, _doc_signature(),
                                           method="POST", path=PATH + "x",
                                           body_digest_hex=digest)


def test_the_loader_signer_computes_the_worked_signature() -> None:
    text = credentials.signed_text(_sts())
    script = ("import hashlib, binascii\nfrom loader import ecdsa_p256\n"
              f"h = hashlib.sha256({text!r}).digest()\n"
              f"print(binascii.hexlify(ecdsa_p256.sign({KEY!r}, h)).decode())\n")
    out = subprocess.run([str(MICROPYTHON), "-c", script], capture_output=True, text=True,
                         timeout=60, check=True,
                         cwd=REPO / "loader",
                         env={**os.environ, "MICROPYPATH": str(REPO / "loader")}
                         ).stdout.strip()
    assert out == _doc_signature()


def test_the_report_table_is_report_in() -> None:
    text = DOC.read_text()
    section = text[text.index("## POST a report"):text.index("## Errors")]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    assert rows == set(ReportIn.model_fields)


def test_the_agent_signs_with_the_scheduler_scheme() -> None:
    client = (REPO / "device" / "agent" / "client.py").read_text()
    m = re.search(r'^SIG_SCHEME = "([^"]+)"', client, re.MULTILINE)
    assert m is not None
    assert m.group(1) == credentials.SIGNATURE_SCHEME
    assert f'"{credentials.HEADER_SIGNATURE}"' in client
    assert f"`{credentials.HEADER_SIGNATURE}`" in DOC.read_text()
    assert f'"{credentials.SIGNATURE_SCHEME}\\n"' in DOC.read_text()
