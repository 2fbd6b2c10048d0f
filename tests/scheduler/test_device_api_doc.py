"""docs/formats/device-api.md's worked example is what the code computes, and an HMAC written
for MicroPython (hashlib.sha256 only) on the unix port computes the same MACs."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from sched_world import Api
from suture.scheduler import credentials
from suture.scheduler.schedule_doc import K_DEVICE_ID, K_GRANT

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats" / "device-api.md"
MICROPYTHON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "micropython"
REPORT_BODY = (b'{"state":"downloading","rollout_id":3,"release_id":7,"progress":65536,'
               b'"installed":{"app":4}}')

MP_HMAC = r"""
import hashlib, binascii
def hmac_sha256(key, msg):
    k = key + b"\x00" * (64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
    outer.update(inner.digest())
    return outer.digest()
secret = binascii.unhexlify(SECRET)
body_digest = binascii.hexlify(hashlib.sha256(BODY).digest()).decode()
sts = "\n".join(("suture-device-v1", METHOD, PATH, DEVICE, TIME, COUNTER, body_digest))
print(binascii.hexlify(hmac_sha256(secret, sts.encode())).decode())
"""


def _doc_value(pattern: str) -> str:
    m = re.search(pattern, DOC.read_text())
    assert m is not None, f"{pattern!r} not in {DOC}"
    return m.group(1)


def test_worked_example_matches_the_code() -> None:
    secret = credentials.derive_secret(bytes(range(32)), "pump-0042", 1)
    assert secret.hex() == _doc_value(r"secret\s+([0-9a-f]{64})")
    assert credentials.fingerprint(secret) == _doc_value(r"fingerprint\s+([0-9a-f]{64})")
    get = credentials.sign_request(secret, method="GET", path="/api/v1/devices/pump-0042/schedule",
                                   device_id="pump-0042", time=1767225600, counter=17)
    post = credentials.sign_request(secret, method="POST",
                                    path="/api/v1/devices/pump-0042/reports",
                                    device_id="pump-0042", time=1767225660, counter=18,
                                    body=REPORT_BODY)
    macs = re.findall(r"Suture-MAC: ([0-9a-f]{64})", DOC.read_text())
    assert macs == [get["Suture-MAC"], post["Suture-MAC"]]
    assert hashlib.sha256(REPORT_BODY).hexdigest() in DOC.read_text()
    assert REPORT_BODY.decode() in DOC.read_text()


@pytest.mark.parametrize(("method", "path", "time", "counter", "body"), [
    ("GET", "/api/v1/devices/pump-0042/schedule", "1767225600", "17", b""),
    ("POST", "/api/v1/devices/pump-0042/reports", "1767225660", "18", REPORT_BODY),
])
def test_micropython_hmac_agrees(method: str, path: str, time: str, counter: str,
                                 body: bytes) -> None:
    secret = credentials.derive_secret(bytes(range(32)), "pump-0042", 1)
    script = (f"SECRET = {secret.hex()!r}\nBODY = {body!r}\nMETHOD = {method!r}\n"
              f"PATH = {path!r}\nDEVICE = 'pump-0042'\nTIME = {time!r}\nCOUNTER = {counter!r}\n"
              + MP_HMAC)
    out = subprocess.run([str(MICROPYTHON), "-c", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    expected = credentials.sign_request(secret, method=method, path=path, device_id="pump-0042",
                                        time=int(time), counter=int(counter), body=body)
    assert out == expected["Suture-MAC"]


def test_schedule_doc_table_lists_every_key() -> None:
    from suture.scheduler import schedule_doc

    text = (DOC.parent / "schedule.md").read_text()
    text = text[text.index("## Payload") : text.index("### Actions")]
    rows = {int(k) for k in re.findall(r"^\| (\d+) \| [a-z-]+ \|", text, re.MULTILINE)}
    keys = {v for k, v in vars(schedule_doc).items() if k.startswith("K_")}
    assert rows == keys
    assert K_DEVICE_ID in rows
    assert K_GRANT in rows
    actions = (DOC.parent / "schedule.md").read_text().split("### Actions")[1]
    from suture.scheduler.policies.decide import Action

    for action in Action:
        name = action.name.lower().replace("_", "-")
        assert f"| {int(action)} | {name} |" in actions, name


def _doc_headers(section: str) -> set[str]:
    """The request headers a section of device-api.md defines: its first table's first
    column (a later table there is of the answer's headers)."""
    text = DOC.read_text()
    start = text.index("\n|", text.index(section))
    table = text[start : text.index("\n\n", start)]
    return set(re.findall(r"^\| `(Suture-[A-Za-z-]+)` \|", table, re.MULTILINE))


def test_openapi_declares_the_headers_the_doc_defines(api: Api) -> None:
    """Each device route's OpenAPI parameters name the signing headers of device-api.md, the
    report route the device key's signature too; no route declares one the doc does not."""
    signing = _doc_headers("## Signing a request")
    keyed = _doc_headers("## The device key: signed reports")
    assert signing == {credentials.HEADER_DEVICE, credentials.HEADER_TIME,
                       credentials.HEADER_COUNTER, credentials.HEADER_MAC}
    assert keyed == {credentials.HEADER_SIGNATURE}
    paths = api.client.get("/openapi.json").json()["paths"]

    def declared(path: str, method: str) -> set[str]:
        return {p["name"] for p in paths[path][method]["parameters"]
                if p["in"] == "header" and p["name"].startswith("Suture-")}

    assert declared("/api/v1/devices/{device_id}/schedule", "get") == signing
    assert declared("/api/v1/devices/{device_id}/reports", "post") == signing | keyed
