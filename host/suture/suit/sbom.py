"""A release's SBOM: a CycloneDX JSON document, validated, bound to the signed manifest, shown
and compared.

Binding: the manifest carries the SUIT_Digest (SHA-256) of the SBOM's exact bytes under
suture's private-use manifest key -257 (``suture-sbom``, docs/formats/suit-extensions.md).
The manifest is signed, so changing one byte of the SBOM, or the digest, breaks the release:
the first no longer matches, the second no longer verifies.

Validation: the JSON schema of the document's ``specVersion`` (CycloneDX 1.4 to 1.7), as
published by the CycloneDX project and shipped in cyclonedx-python-lib (its strict JSON
validator). XML SBOMs are not accepted.

Pure: bytes in, results out; reading and writing files is the caller's.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from suture.suit import codepoints as cp
from suture.suit.digest import digest_bytes
from suture.suit.errors import SbomError
from suture.suit.model import Digest, Manifest

MAX_SBOM_BYTES: Final = 16 * 1024 * 1024
MAX_COMPONENTS: Final = 100_000
SBOM_MEDIA_TYPE: Final = "application/vnd.cyclonedx+json"
SUPPORTED_SPEC_VERSIONS: Final = ("1.4", "1.5", "1.6", "1.7")


@dataclass(frozen=True)
class SbomComponent:
    """One component of the SBOM (nested components flattened), as a person compares them."""

    name: str
    version: str | None
    group: str | None
    type: str
    purl: str | None
    licenses: tuple[str, ...]

    @property
    def key(self) -> str:
        """What identifies the component across releases: its purl without the version, else
        group/name."""
        if self.purl:
            return self.purl.split("@", 1)[0].split("?", 1)[0]
        return f"{self.group}/{self.name}" if self.group else self.name


@dataclass(frozen=True)
class Sbom:
    """A validated CycloneDX SBOM and the digest the manifest binds it with."""

    data: bytes
    digest: Digest
    spec_version: str
    serial_number: str | None
    version: int
    subject: str | None
    components: tuple[SbomComponent, ...]

    @property
    def licenses(self) -> list[str]:
        return sorted({lic for c in self.components for lic in c.licenses})


@dataclass(frozen=True)
class SbomChange:
    key: str
    old: SbomComponent
    new: SbomComponent


@dataclass(frozen=True)
class SbomDiff:
    """What changed from one release's SBOM to the next's."""

    added: list[SbomComponent] = field(default_factory=list)
    removed: list[SbomComponent] = field(default_factory=list)
    changed: list[SbomChange] = field(default_factory=list)
    licenses_added: list[str] = field(default_factory=list)
    licenses_removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class SbomCheck:
    """The outcome of checking a release's SBOM: ``bound`` (its digest is in the signed
    manifest and the document is valid CycloneDX), or ``missing-allowed`` (no SBOM, and the
    caller's policy allows that; the caller records it)."""

    status: str
    sbom: Sbom | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _licenses(entry: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for item in entry.get("licenses") or ():
        if not isinstance(item, Mapping):
            continue
        if "expression" in item and _text(item["expression"]):
            out.append(item["expression"])
            continue
        lic = item.get("license")
        if isinstance(lic, Mapping):
            name = _text(lic.get("id")) or _text(lic.get("name"))
            if name:
                out.append(name)
    return tuple(out)


def _walk(entries: object, depth: int = 0) -> Iterator[SbomComponent]:
    if not isinstance(entries, list) or depth > 32:
        return
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        yield SbomComponent(
            name=_text(entry.get("name")) or "",
            version=_text(entry.get("version")),
            group=_text(entry.get("group")),
            type=_text(entry.get("type")) or "",
            purl=_text(entry.get("purl")),
            licenses=_licenses(entry),
        )
        yield from _walk(entry.get("components"), depth + 1)


def _validate(text: str, spec_version: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    schema = SchemaVersion.from_version(spec_version)
    error = JsonStrictValidator(schema).validate_str(text)
    if error is not None:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SbomError(f"SBOM: not valid CycloneDX {spec_version}: {detail}")


def parse_sbom(data: bytes) -> Sbom:
    """Check that ``data`` is a CycloneDX JSON SBOM valid against its version's schema, and
    read its components. Raises :class:`SbomError` with what is wrong."""
    if not isinstance(data, bytes):
        raise SbomError(f"SBOM: expected bytes, got {type(data).__name__}")
    if not data:
        raise SbomError("SBOM: the file is empty")
    if len(data) > MAX_SBOM_BYTES:
        raise SbomError(f"SBOM: {len(data)} bytes is over the limit of {MAX_SBOM_BYTES}")
    try:
        text = data.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        raise SbomError("SBOM: not UTF-8 text (only CycloneDX JSON is accepted)") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise SbomError(f"SBOM: not JSON (only CycloneDX JSON is accepted): {exc}") from None
    if not isinstance(document, dict):
        raise SbomError("SBOM: the top level must be a JSON object")
    if document.get("bomFormat") != "CycloneDX":
        raise SbomError(
            f"SBOM: bomFormat is {document.get('bomFormat')!r}, expected 'CycloneDX'"
        )
    spec_version = document.get("specVersion")
    if spec_version not in SUPPORTED_SPEC_VERSIONS:
        raise SbomError(
            f"SBOM: specVersion {spec_version!r} is not supported "
            f"({', '.join(SUPPORTED_SPEC_VERSIONS)})"
        )
    _validate(text, spec_version)
    components = tuple(_walk(document.get("components")))
    if len(components) > MAX_COMPONENTS:
        raise SbomError(f"SBOM: {len(components)} components, the limit is {MAX_COMPONENTS}")
    metadata = document.get("metadata")
    subject = None
    if isinstance(metadata, Mapping) and isinstance(metadata.get("component"), Mapping):
        main = metadata["component"]
        name, version = _text(main.get("name")), _text(main.get("version"))
        subject = f"{name} {version}" if name and version else name
    version = document.get("version", 1)
    return Sbom(
        data=data,
        digest=sbom_digest(data),
        spec_version=spec_version,
        serial_number=_text(document.get("serialNumber")),
        version=version if isinstance(version, int) else 1,
        subject=subject,
        components=components,
    )


def sbom_digest(data: bytes) -> Digest:
    """The SUIT_Digest (SHA-256) of the SBOM's exact bytes: what the manifest binds."""
    return digest_bytes(data, cp.DIGEST_SHA256)


def check_binding(manifest: Manifest, sbom: Sbom) -> None:
    """Raise :class:`SbomError` unless the manifest names exactly this SBOM."""
    bound = manifest.sbom_digest
    if bound is None:
        raise SbomError(
            "SBOM: the manifest names no SBOM (manifest key -257, suture-sbom): this SBOM is "
            "not bound to the signed release"
        )
    actual = sbom_digest(sbom.data) if bound.algorithm == cp.DIGEST_SHA256 else None
    if actual is None:
        raise SbomError(f"SBOM: digest algorithm {bound.algorithm} is not supported")
    if not hmac.compare_digest(actual.value, bound.value):
        raise SbomError(
            f"SBOM: not the one the signed manifest names (manifest: {bound.value.hex()}, "
            f"SBOM: {actual.value.hex()}); it was altered or belongs to another release"
        )


def check_release_sbom(
    manifest: Manifest, data: bytes | None, *, allow_missing: bool = False
) -> SbomCheck:
    """What a release import checks: an SBOM is present, valid CycloneDX, and bound to the
    manifest. ``allow_missing`` (a policy for test releases) accepts a release without one,
    provided its manifest names none either; the caller records that it did."""
    if data is None:
        if manifest.sbom_digest is not None:
            raise SbomError(
                "SBOM: the manifest names an SBOM "
                f"({manifest.sbom_digest.value.hex()}) but none was given"
            )
        if allow_missing:
            return SbomCheck(status="missing-allowed", sbom=None)
        raise SbomError(
            "SBOM: none given; every release carries a CycloneDX SBOM bound to its manifest "
            "(description key sbom)"
        )
    sbom = parse_sbom(data)
    check_binding(manifest, sbom)
    return SbomCheck(status="bound", sbom=sbom)


def diff_sboms(old: Sbom, new: Sbom) -> SbomDiff:
    """Components added, removed and changed (version or licences) from ``old`` to ``new``,
    and the licences that appear or disappear."""
    def by_key(sbom: Sbom) -> dict[str, SbomComponent]:
        out: dict[str, SbomComponent] = {}
        for component in sbom.components:
            out.setdefault(component.key, component)
        return out

    before, after = by_key(old), by_key(new)
    changed = [
        SbomChange(key, before[key], after[key])
        for key in sorted(before.keys() & after.keys())
        if (before[key].version, before[key].licenses) != (after[key].version, after[key].licenses)
    ]
    old_licenses, new_licenses = set(old.licenses), set(new.licenses)
    return SbomDiff(
        added=[after[k] for k in sorted(after.keys() - before.keys())],
        removed=[before[k] for k in sorted(before.keys() - after.keys())],
        changed=changed,
        licenses_added=sorted(new_licenses - old_licenses),
        licenses_removed=sorted(old_licenses - new_licenses),
    )


def component_json(component: SbomComponent) -> dict[str, Any]:
    return {
        "name": component.name,
        "group": component.group,
        "version": component.version,
        "type": component.type,
        "purl": component.purl,
        "licenses": list(component.licenses),
    }


def sbom_summary(sbom: Sbom) -> dict[str, Any]:
    """What ``suture release sbom show --json`` prints."""
    return {
        "digest": sbom.digest.value.hex(),
        "spec_version": sbom.spec_version,
        "serial_number": sbom.serial_number,
        "version": sbom.version,
        "subject": sbom.subject,
        "components": [component_json(c) for c in sbom.components],
        "licenses": sbom.licenses,
    }


def diff_summary(diff: SbomDiff) -> dict[str, Any]:
    """What ``suture release sbom diff --json`` prints."""
    return {
        "added": [component_json(c) for c in diff.added],
        "removed": [component_json(c) for c in diff.removed],
        "changed": [
            {
                "key": change.key,
                "old": component_json(change.old),
                "new": component_json(change.new),
            }
            for change in diff.changed
        ],
        "licenses_added": diff.licenses_added,
        "licenses_removed": diff.licenses_removed,
    }

