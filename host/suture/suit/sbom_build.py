"""The CycloneDX SBOM of a release suture builds itself: an application bundle or a loader
image, its files with their SHA-256, and the runtime they run on.

The output is reproducible: the same files, name, version and time give the same bytes (the
serial number is derived from the content, every bom-ref is the file's path), so building a
release twice binds the same SBOM digest into its manifest (docs/formats/suit-extensions.md).
Built with cyclonedx-python-lib, checked by :func:`suture.suit.sbom.parse_sbom` like any other.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

#: The namespace of the SBOMs' serial numbers (a UUIDv5 of the content's digest).
SERIAL_NAMESPACE: Final = uuid.UUID("5b1d3c1e-2f1a-4c53-9a37-73757475726f")
#: The time written into an SBOM when the caller gives none: a fixed instant, so that a
#: rebuild of the same release yields the same bytes.
EPOCH: Final = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Dependency:
    """A piece of software the release runs on or contains, named by its package URL."""

    name: str
    version: str
    purl: str
    license_id: str | None = None


#: What every suture device image runs on.
MICROPYTHON: Final = Dependency(
    "micropython", "1.28.0", "pkg:github/micropython/micropython@v1.28.0", "MIT")


def build_sbom(
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    supplier: str = "suture example vendor",
    dependencies: Sequence[Dependency] = (MICROPYTHON,),
    at: datetime.datetime = EPOCH,
) -> bytes:
    """The CycloneDX 1.6 JSON SBOM of a firmware ``name`` at ``version`` made of ``files``
    (path -> bytes), in path order, each with its SHA-256."""
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.bom_ref import BomRef
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.model.license import DisjunctiveLicense
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    content = hashlib.sha256()
    for path in sorted(files):
        content.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    content.update(f"{name}\0{version}".encode())
    bom = Bom(serial_number=uuid.uuid5(SERIAL_NAMESPACE, content.hexdigest()))
    bom.metadata.timestamp = at
    root = Component(type=ComponentType.FIRMWARE, name=name, version=version,
                     bom_ref=BomRef(f"firmware:{name}@{version}"),
                     supplier=OrganizationalEntity(name=supplier))
    bom.metadata.component = root
    children: list[Component] = []
    for path in sorted(files):
        children.append(Component(
            type=ComponentType.FILE, name=path, bom_ref=BomRef(f"file:{path}"),
            hashes=[HashType(alg=HashAlgorithm.SHA_256,
                             content=hashlib.sha256(files[path]).hexdigest())]))
    for dep in dependencies:
        licenses = [DisjunctiveLicense(id=dep.license_id)] if dep.license_id else []
        children.append(Component(
            type=ComponentType.LIBRARY, name=dep.name, version=dep.version,
            purl=PackageURL.from_string(dep.purl), bom_ref=BomRef(dep.purl),
            licenses=licenses))
    for child in children:
        bom.components.add(child)
    bom.register_dependency(root, children)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's notes on optional fields
        text = JsonV1Dot6(bom).output_as_string(indent=None)
    return text.encode()
