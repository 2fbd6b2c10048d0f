"""The published test keys of tests/vectors/suit-ext, read from its symmetric-test-keys.txt, and
a small CycloneDX SBOM for the release tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from suture.cose.encrypt import EcdhPrivateKey
from suture.cose.mac0 import SymmetricKey

PLAINTEXT = b"This is a real firmware image."
CEK_GCM = bytes.fromhex("15F785B5C931414411B4B71373A9C0F7")
CEK_CTR = bytes.fromhex("261DE6165070FB8951EC5D7B92A065FE")
PAYLOADS = ("aes-kw-aes-ctr", "aes-kw-aes-gcm", "es-ecdh-aes-ctr", "es-ecdh-aes-gcm")


def published_keys(folder: Path) -> dict[str, Any]:
    """hmac (SymmetricKey), kek (SymmetricKey, kid 'kid-1'), ecdh (EcdhPrivateKey, kid 'kid-2')."""
    text = (folder / "symmetric-test-keys.txt").read_text()

    def value(name: str) -> str:
        found = re.search(rf"^{name}\s*=\s*(\S+)", text, re.MULTILINE)
        assert found, name
        return found.group(1)

    d = int(value("d"), 16)
    private = ec.derive_private_key(d, ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    assert (numbers.x, numbers.y) == (int(value("x"), 16), int(value("y"), 16))
    return {
        "hmac": SymmetricKey(value("hmac256_key_ascii").encode()),
        "kek": SymmetricKey(value("a128kw_kek_ascii").encode(), b"kid-1"),
        "ecdh": EcdhPrivateKey(private, b"kid-2"),
    }


def sbom_document(components: list[dict[str, Any]] | None = None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {"component": {"type": "firmware", "name": "pump-app", "version": "2.4.1"}},
        "components": components if components is not None else [
            {"type": "library", "name": "micropython", "version": "1.29.0",
             "purl": "pkg:github/micropython/micropython@v1.29.0",
             "licenses": [{"license": {"id": "MIT"}}]},
            {"type": "library", "name": "littlefs", "version": "2.9",
             "licenses": [{"expression": "BSD-3-Clause"}]},
        ],
    }
    doc.update(extra)
    return json.dumps(doc, indent=1).encode()
