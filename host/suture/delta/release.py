"""A delta release: the patch between two images and the SUIT description of the target that
fetches it (suture.suit's ``delta`` component key)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from suture.delta.builder import build


@dataclass(frozen=True)
class DeltaRelease:
    """A patch and what a manifest says of it."""

    patch: bytes
    source_digest: bytes
    source_size: int
    target_digest: bytes
    target_size: int

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.patch).digest()

    def component(self, identifier: list[str], uri: str) -> dict[str, Any]:
        """The description of the component that fetches this patch from ``uri``."""
        return {
            "id": identifier,
            "digest": self.target_digest.hex(),
            "size": self.target_size,
            "uri": uri,
            "delta": {
                "source-digest": self.source_digest.hex(),
                "source-size": self.source_size,
                "digest": self.digest.hex(),
                "size": len(self.patch),
            },
        }


def make_delta(source: bytes, target: bytes, **options: int) -> DeltaRelease:
    """The patch from ``source`` to ``target`` (``options``: suture.delta.build's)."""
    return DeltaRelease(
        patch=build(source, target, **options),
        source_digest=hashlib.sha256(source).digest(),
        source_size=len(source),
        target_digest=hashlib.sha256(target).digest(),
        target_size=len(target),
    )
