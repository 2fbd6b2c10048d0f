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
