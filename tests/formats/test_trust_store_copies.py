"""The trust-store update (docs/formats/trust-store.md): the loader's copy of its keys and limits
(loader/loader/trust.py) equals the host's definition (host/suture/formats/trust_store.py), both
ways; the doc's payload table names the same keys; the host builds only documents the device
can take and verifies what it signed."""

from __future__ import annotations

import re
from pathlib import Path

import cbor2
import pytest
from suture import cose, keys
from suture.formats import trust_store as ts
from suture.formats.trust_store import (
    TrustStoreError,
    TrustUpdate,
    sec1_point,
    sign_trust_update,
    verify_trust_update,
)

REPO = Path(__file__).resolve().parents[2]
COPIED = ("FORMAT", "K_FORMAT", "K_ROLE", "K_VERSION", "K_KEYS", "MAX_DOCUMENT", "MAX_KEYS",
          "MAX_VERSION", "SCHEMA_PROVISIONED", "SCHEMA_VERSIONED")
ASSIGN = re.compile(r"^([A-Z_]+) = (?:const\()?(0x[0-9A-Fa-f]+|\d+|\"[a-z.]+\")\)?$", re.M)


def _device_constants(src: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in ASSIGN.findall(src):
        out[name] = value.strip('"') if value.startswith('"') else int(value, 0)
    return out


def _host_constants() -> dict[str, object]:
    out: dict[str, object] = {name: getattr(ts, name) for name in COPIED}
    out["VENDOR"] = ts.ROLES["vendor"]
    out["SCHEDULER"] = ts.ROLES["scheduler"]
    return out


def test_the_loader_copy_is_the_definition() -> None:
    device = _device_constants((REPO / "loader" / "loader" / "trust.py").read_text())
    device.pop("_POINT")
    assert device == _host_constants()


def test_a_drifted_copy_fails() -> None:
    src = (REPO / "loader" / "loader" / "trust.py").read_text()
    drifted = _device_constants(src.replace("K_KEYS = const(4)", "K_KEYS = const(5)"))
    drifted.pop("_POINT")
    assert drifted != _host_constants()
    dropped = _device_constants(src.replace("MAX_KEYS = const(7)\n", ""))
    dropped.pop("_POINT")
    assert dropped != _host_constants()


def test_the_doc_table_names_the_keys() -> None:
    doc = (REPO / "docs" / "formats" / "trust-store.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| ([a-z]+) \|", doc, re.M))
    assert rows == {str(ts.K_FORMAT): "format", str(ts.K_ROLE): "role",
                    str(ts.K_VERSION): "version", str(ts.K_KEYS): "keys"}
    assert f"at most {ts.MAX_DOCUMENT} bytes" in doc
    assert f"1..{ts.MAX_KEYS} bstr (65)" in doc


def test_sign_and_verify_round_trip() -> None:
    old = keys.generate_private_key("ES256")
    new = [keys.generate_private_key("ES256") for _ in range(ts.MAX_KEYS)]
    update = TrustUpdate("scheduler", 7, tuple(sec1_point(k) for k in new))
    doc = sign_trust_update(update, old)
    assert len(doc) <= ts.MAX_DOCUMENT
    assert verify_trust_update(doc, [sec1_point(old)]) == update
    with pytest.raises(TrustStoreError):
        verify_trust_update(doc, [sec1_point(new[0])])
    body = cbor2.loads(cose.verify1(doc, old.public_key()))
    assert body == {1: 1, 2: "scheduler", 3: 7, 4: [sec1_point(k) for k in new]}
    # the record the device writes fits an NVM value (512 bytes)
    assert 4 + ts.MAX_KEYS * 65 <= 512


@pytest.mark.parametrize("update", [
    TrustUpdate("vendor", 0, (b"\x04" + bytes(64),)),
    TrustUpdate("vendor", 1, ()),
    TrustUpdate("app", 1, (b"\x04" + bytes(64),)),
    TrustUpdate("vendor", ts.MAX_VERSION + 1, (b"\x04" + bytes(64),)),
    TrustUpdate("vendor", 1, (b"\x04" + bytes(64),)),  # not a point of the curve
    TrustUpdate("vendor", 1, (b"\x02" + bytes(32),)),
])
def test_the_host_refuses_what_the_device_would(update: TrustUpdate) -> None:
    with pytest.raises(TrustStoreError):
        sign_trust_update(update, keys.generate_private_key("ES256"))


def test_only_es256_signs() -> None:
    point = sec1_point(keys.generate_private_key("ES256"))
    with pytest.raises(TrustStoreError):
        sign_trust_update(TrustUpdate("vendor", 1, (point,)),
                          keys.generate_private_key("EdDSA"))
