"""The SUIT report format is defined once (host/suture/formats/suit_report.py): the device's copy
(loader/loader/suit_report.py) defines exactly its DEVICE_CONSTANTS, both ways; the device's
encoder and the host's give the same bytes for the same report, and the host decodes them back
to it (on the MicroPython unix port, random reports); docs/formats/suit-report.md lists the
report extensions the source defines, both ways."""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from suture.cose.mac0 import SymmetricKey, mac0
from suture.formats import suit_report as fmt
from suture.scheduler.credentials import suit_report_key
from suture.suit import SuitReportError
from suture.suit.model import Digest
from suture.suit.report import (
    SuitRecord,
    decode_report,
    encode_report,
    report_from_device,
    verify_report,
)

REPO = Path(__file__).resolve().parents[2]
COPY = REPO / "loader" / "loader" / "suit_report.py"
DOC = REPO / "docs" / "formats" / "suit-report.md"


def copy_problems(text: str) -> list[str]:
    """How the device's copy differs from DEVICE_CONSTANTS: a value missing, different, or
    one the source does not define (its public upper-case module constants)."""
    found: dict[str, object] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper() and not name.startswith("_"):
                found[name] = ast.literal_eval(node.value)
    problems = [f"{name}: {found.get(name)!r} in the copy, {value!r} in the source"
                for name, value in fmt.DEVICE_CONSTANTS.items() if found.get(name) != value]
    problems += [f"{name}: only in the copy" for name in found
                 if name not in fmt.DEVICE_CONSTANTS]
    return problems


def test_the_device_copy_has_the_sources_values_both_ways() -> None:
    text = COPY.read_text()
    assert copy_problems(text) == []
    assert copy_problems(text.replace("P_COMMAND = -264", "P_COMMAND = -263")) == [
        "P_COMMAND: -263 in the copy, -264 in the source"]
    assert copy_problems(text + "\nEXT_EXTRA = -8\n") == ["EXT_EXTRA: only in the copy"]
    assert copy_problems(text.replace("31: 10}", "31: 11}"))


def _doc_extensions(text: str) -> dict[str, int]:
    section = text[text.index("## Report extensions"):]
    section = section[: section.index("\n## ", 4)]
    return {m.group(2): int(m.group(1))
            for m in re.finditer(r"^\| (-\d+) \| `([a-z_.]+)` \|", section, re.M)}


def test_the_doc_lists_the_extensions_both_ways() -> None:
    expected = {**fmt.FIELD_EXTENSIONS, "error.message": fmt.EXT_ERROR_MESSAGE}
    assert _doc_extensions(DOC.read_text()) == expected


ENCODE = """
import sys, json
from loader import api
cases = json.loads(open(sys.argv[1]).read())
out = []
for c in cases:
    hx = lambda v: None if v is None else bytes.fromhex(v)
    data = api.suit_report(bytes.fromhex(c["m"]), c["fields"], c["records"], c["failed"],
                           c["uri"], hx(c["nonce"]), hx(c["digest"]))
    out.append(data.hex())
print("RESULT " + json.dumps(out))
"""


def _case(rng: random.Random) -> dict[str, Any]:
    state = rng.choice(["failed", "confirmed", "reverted", "idle", "staged"])
    fields: dict[str, Any] = {"state": state,
                              "installed": {"app": rng.randrange(1 << 32)}}
    if rng.random() < 0.5:
        fields["installed"]["loader"] = rng.randrange(1, 1000)
    for name in ("schedule_number", "rollout_id", "release_id", "progress"):
        if rng.random() < 0.5:
            fields[name] = rng.randrange(1 << rng.choice([5, 16, 40]))
    if rng.random() < 0.2:
        fields["busy"] = rng.random() < 0.5
    if state in ("failed", "reverted") and rng.random() < 0.8:
        fields["error"] = {"code": rng.choice([23, 24, 25, 31, 33, 130, 151]),
                           "message": rng.choice(["", "staging: digest", "é ünïcode"])}
    records = [[rng.choice([3, 7, 16, 20]), rng.randrange(300), rng.randrange(3),
                rng.choice([1, 2, 3, 24, -258])] for _ in range(rng.randrange(6))]
    failed = records.pop() if records and "error" in fields and rng.random() < 0.7 else None
    return {"m": rng.randbytes(32).hex(), "fields": fields, "records": records,
            "failed": failed,
            "uri": rng.choice([None, "https://sched.example/api/v1/releases/7/envelope"]),
            "nonce": rng.choice([None, rng.randbytes(8).hex()]),
            "digest": rng.choice([None, rng.randbytes(32).hex()])}


def _host(case: dict[str, Any]) -> bytes:
    def rec(r: list[int]) -> SuitRecord:
        return SuitRecord((), r[0], r[1], r[2], {fmt.PROPERTY_COMMAND: r[3]})

    report = report_from_device(
        case["fields"], manifest_digest=Digest(fmt.ALG_SHA256, bytes.fromhex(case["m"])),
        manifest_uri=case["uri"],
        nonce=None if case["nonce"] is None else bytes.fromhex(case["nonce"]),
        records=[rec(r) for r in case["records"]],
        failed_at=None if case["failed"] is None else rec(case["failed"]),
        installed_digest=None if case["digest"] is None else bytes.fromhex(case["digest"]))
    return encode_report(report)


#: The page's worked example (docs/formats/suit-report.md, "Worked example").
EXAMPLE = {
    "m": bytes(range(32)).hex(),
    "fields": {"state": "failed", "installed": {"app": 6}, "schedule_number": 12,
               "rollout_id": 3, "release_id": 7,
               "error": {"code": 31, "message": "staging: digest"}},
    "records": [[3, 5, 0, 1], [3, 23, 0, 2]], "failed": [7, 1, 0, 3], "uri": None,
    "nonce": (12).to_bytes(8, "big").hex(), "digest": (b"\x11" * 32).hex(),
}


def _doc_example_hex() -> str:
    section = DOC.read_text().split("## Worked example", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    return "".join(blocks[-1].split())


def test_the_worked_example_is_what_the_host_encodes() -> None:
    data = _host(EXAMPLE)
    assert data.hex() == _doc_example_hex()
    assert f"\n{len(data)} bytes" in DOC.read_text()


def test_device_and_host_encode_the_same_bytes(run_mpy: Callable[..., Any],
                                               tmp_path: Path) -> None:
    rng = random.Random(19)
    cases = [EXAMPLE, *(_case(rng) for _ in range(60))]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    got = run_mpy(ENCODE, str(tmp_path / "cases.json"), heapsize="2M")
    assert len(got) == len(cases)
    assert got[0] == _doc_example_hex()
    for case, device_hex in zip(cases, got, strict=True):
        device = bytes.fromhex(device_hex)
        assert device == _host(case), case
        decoded = decode_report(device)
        assert decoded.manifest_digest.value.hex() == case["m"]
        assert (decoded.result is None) == ("error" not in case["fields"])


MAC = """
import sys, json
from loader import api
c = json.loads(open(sys.argv[1]).read())
hx = lambda v: None if v is None else bytes.fromhex(v)
key = api.suit_report_mac_key(bytes.fromhex(sys.argv[2]), sys.argv[3])
data = api.suit_report(bytes.fromhex(c["m"]), c["fields"], c["records"], c["failed"], c["uri"],
                       hx(c["nonce"]), hx(c["digest"]), b"", key)
print("RESULT " + json.dumps({"key": key.hex(), "mac0": data.hex()}))
"""


def test_device_and_host_mac_the_same_report_under_the_same_derived_key(
        run_mpy: Callable[..., Any], tmp_path: Path) -> None:
    """A device without a key pair: its COSE_Mac0 of the worked example, under the key it
    derives from its secret, is byte for byte the host's, and verifies only under that key."""
    secret, device_id = bytes(range(100, 132)), "pump-17"
    (tmp_path / "case.json").write_text(json.dumps(EXAMPLE))
    got = run_mpy(MAC, str(tmp_path / "case.json"), secret.hex(), device_id)
    key = suit_report_key(secret, device_id)
    assert got["key"] == key.hex()
    device = bytes.fromhex(got["mac0"])
    assert device == mac0(_host(EXAMPLE), SymmetricKey(key))
    verified = verify_report(device, [SymmetricKey(key)])
    assert verified.kind == "COSE_Mac0"
    assert encode_report(verified.report).hex() == _doc_example_hex()
    wrong_keys = (secret, suit_report_key(secret, "pump-18"),
                  suit_report_key(bytes(32), device_id))
    for wrong in wrong_keys:
        with pytest.raises(SuitReportError, match="verif"):
            verify_report(device, [SymmetricKey(wrong)])
