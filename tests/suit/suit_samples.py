"""Sample descriptions and images shared by the SUIT tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

VENDOR_ID = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
CLASS_ID = "1492af14-2569-5e48-bf42-9b2d51f2ab45"


def write_images(folder: Path) -> None:
    (folder / "app.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "cfg.bin").write_bytes(b"config v2\n")


def sample_description() -> dict[str, Any]:
    """Two components, one fetched by URI, one integrated; install and text severable."""
    return {
        "sequence-number": 7,
        "reference-uri": "https://updates.example/pump/7",
        "vendor-id": VENDOR_ID,
        "class-id": CLASS_ID,
        "severable": ["install", "text"],
        "text": {"manifest-description": "Infusion pump firmware 2.4.1"},
        "components": [
            {
                "id": ["app", "hex:00"],
                "file": "app.bin",
                "uri": "https://updates.example/pump/app-7.bin",
                "invoke": True,
                "text": {"component-version": "2.4.1", "vendor-name": "Example Medical"},
            },
            {"id": ["cfg"], "file": "cfg.bin", "integrated": True, "slot": 1},
        ],
    }


def example_manifest() -> dict[int, Any]:
    """The manifest of the draft's example 0, as a Python mapping to modify in tests."""
    import cbor2

    shared = [
        20,
        {
            1: bytes.fromhex("fa6b4a53d5ad5fdfbe9de663e4d41ffe"),
            2: bytes.fromhex("1492af1425695e48bf429b2d51f2ab45"),
            3: cbor2.dumps([-16, bytes(range(32))]),
            14: 34768,
        },
        1,
        15,
        2,
        15,
    ]
    return {
        1: 1,
        2: 0,
        3: cbor2.dumps({2: [[b"\x00"]], 4: cbor2.dumps(shared)}),
        7: cbor2.dumps([3, 15]),
        9: cbor2.dumps([23, 2]),
    }


def envelope_bytes(
    manifest: Any,
    *,
    blocks: list[bytes] | None = None,
    extra: dict[Any, Any] | None = None,
    encode_manifest: bool = True,
) -> bytes:
    """An envelope around ``manifest`` whose digest matches it (signature blocks optional)."""
    import hashlib

    import cbor2

    manifest_bstr = cbor2.dumps(manifest) if encode_manifest else manifest
    digest = cbor2.dumps([-16, hashlib.sha256(cbor2.dumps(manifest_bstr)).digest()])
    envelope: dict[Any, Any] = {2: cbor2.dumps([digest, *(blocks or [])]), 3: manifest_bstr}
    envelope.update(extra or {})
    return cbor2.dumps(cbor2.CBORTag(107, envelope))
