"""Description files: what a human writes to describe an update (TOML, YAML or JSON).

Example (TOML)::

    sequence-number = 7
    vendor-id = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
    class-id = "1492af14-2569-5e48-bf42-9b2d51f2ab45"
    severable = ["text"]

    [text]
    manifest-description = "Infusion pump firmware 2.4.1"

    [[components]]
    id = ["app", "hex:00"]
    file = "build/app.bin"
    uri = "https://updates.example/pump/app-2.4.1.bin"

See docs/suit.md for every key. :func:`parse_description` checks a loaded mapping and gives a
:class:`UpdateDescription`; it reads the image files (relative to ``base_dir``) to compute
their digests and sizes.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import yaml

from suture.cose.encrypt import CONTENT_ALGS
from suture.suit import codepoints as cp
from suture.suit import limits
from suture.suit.digest import digest_bytes
from suture.suit.errors import SuitDescriptionError
from suture.suit.model import Digest

MAX_DESCRIPTION_BYTES: Final = 1024 * 1024
MAX_IMAGE_BYTES: Final = 64 * 1024 * 1024

TOP_KEYS: Final = frozenset(
    {
        "sequence-number",
        "reference-uri",
        "vendor-id",
        "class-id",
        "severable",
        "text",
        "components",
        "sbom",
    }
)
COMPONENT_KEYS: Final = frozenset(
    {
        "id",
        "file",
        "digest",
        "size",
        "uri",
        "delta",
        "integrated",
        "vendor-id",
        "class-id",
        "slot",
        "invoke",
        "text",
        "encryption",
    }
)
TEXT_KEYS: Final = frozenset({"language", *cp.TEXT_KEYS.values()})
COMPONENT_TEXT_KEYS: Final = frozenset(cp.TEXT_COMPONENT_KEYS.values())
DEFAULT_LANGUAGE: Final = "en-US"
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
CONTENT_ALG_BY_NAME: Final = {spec.name: alg for alg, spec in CONTENT_ALGS.items()}
MAX_SBOM_BYTES: Final = 16 * 1024 * 1024


@dataclass(frozen=True)
class DeltaDescription:
    """A delta payload (docs/formats/delta.md): the source image it applies to and the patch."""

    source_digest: Digest
    source_size: int
    digest: Digest
    size: int


@dataclass(frozen=True)
class ComponentDescription:
    """One component of the update, with its image's digest and size resolved."""

    identifier: list[bytes]
    digest: Digest
    size: int
    vendor_id: UUID
    class_id: UUID
    uri: str | None = None
    integrated_payload: bytes | None = None
    slot: int | None = None
    invoke: bool = False
    text: dict[str, str] = field(default_factory=dict)
    encryption: int | None = None
    plaintext: bytes | None = None
    delta: DeltaDescription | None = None


@dataclass(frozen=True)
class UpdateDescription:
    """A checked description: everything needed to build the manifest."""

    sequence_number: int
    components: list[ComponentDescription]
    reference_uri: str | None = None
    severable: frozenset[str] = frozenset()
    text_language: str = DEFAULT_LANGUAGE
    text: dict[str, str] = field(default_factory=dict)
    sbom: bytes | None = None


def load_description(path: Path) -> dict[str, Any]:
    """Read a description file; the format follows the suffix (.toml, .yaml/.yml, .json)."""
    try:
        size = path.stat().st_size
        if size > MAX_DESCRIPTION_BYTES:
            raise SuitDescriptionError(f"{path}: {size} bytes is too large for a description")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SuitDescriptionError(f"{path}: no such description file") from None
    except OSError as exc:
        raise SuitDescriptionError(f"{path}: cannot read: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        text = raw.decode("utf-8")
        if suffix == ".toml":
            data: object = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            _refuse_yaml_aliases(path, text)
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise SuitDescriptionError(
                f"{path}: unknown description format {suffix!r}; use .toml, .yaml, .yml or .json"
            )
    except UnicodeDecodeError:
        raise SuitDescriptionError(f"{path}: not UTF-8 text") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError, RecursionError) as exc:
        raise SuitDescriptionError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise SuitDescriptionError(f"{path}: the top level must be a table/mapping")
    return data


def _refuse_yaml_aliases(path: Path, text: str) -> None:
    """Anchors and aliases can multiply a small file into a huge tree; descriptions need none."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise SuitDescriptionError(f"{path}: YAML aliases (*name) are not accepted")


def _uuid(value: object, where: str) -> UUID:
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        raise SuitDescriptionError(f"{where}: expected a UUID string, got {type(value).__name__}")
    try:
        return UUID(value)
    except ValueError:
        raise SuitDescriptionError(f"{where}: {value!r} is not a UUID") from None


def _uint(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise SuitDescriptionError(f"{where}: expected an integer from 0 to 2^64-1, got {value!r}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SuitDescriptionError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise SuitDescriptionError(f"{where}: expected true or false, got {value!r}")
    return value


def _unknown_keys(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise SuitDescriptionError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def parse_identifier_element(value: object, where: str) -> bytes:
    """A component identifier element: ``"hex:00ff"`` gives bytes, other text its UTF-8."""
    text = _str(value, where)
    if text.startswith("hex:"):
        digits = text[4:]
        if not digits or not _HEX.match(digits):
            raise SuitDescriptionError(f"{where}: {text!r} is not 'hex:' followed by hex bytes")
        return bytes.fromhex(digits)
    return text.encode("utf-8")


def _text_fields(value: object, allowed: frozenset[str], where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise SuitDescriptionError(f"{where}: expected a table/mapping")
    _unknown_keys(value, allowed, where)
    return {str(k): _str(v, f"{where}.{k}") for k, v in value.items()}


def parse_description(description: Mapping[str, Any], *, base_dir: Path) -> UpdateDescription:
    """Check a loaded description and resolve its image files (relative to ``base_dir``)."""
    if not isinstance(description, Mapping):
        raise SuitDescriptionError("description: the top level must be a table/mapping")
    _unknown_keys(description, TOP_KEYS, "description")
    if "sequence-number" not in description:
        raise SuitDescriptionError("description: sequence-number is required")
    sequence_number = _uint(description["sequence-number"], "sequence-number")
    if sequence_number > limits.MAX_SEQUENCE_NUMBER:
        raise SuitDescriptionError(
            f"sequence-number: {sequence_number} does not fit in 32 bits: at most "
            f"{limits.MAX_SEQUENCE_NUMBER} (devices keep the sequence number as u32)"
        )
    reference_uri = None
    if "reference-uri" in description:
        reference_uri = _str(description["reference-uri"], "reference-uri")
    default_vendor = description.get("vendor-id")
    default_class = description.get("class-id")

    severable_raw = description.get("severable", [])
    if not isinstance(severable_raw, list):
        raise SuitDescriptionError("severable: expected a list of member names")
    severable = set()
    for i, name in enumerate(severable_raw):
        if not isinstance(name, str) or name not in ("install", "text"):
            raise SuitDescriptionError(
                f"severable[{i}]: {name!r} is not a member suture can sever; use install or text"
            )
        severable.add(name)

    text: dict[str, str] = {}
    language = DEFAULT_LANGUAGE
    if "text" in description:
        fields = _text_fields(description["text"], TEXT_KEYS, "text")
        language = fields.pop("language", DEFAULT_LANGUAGE)
        text = fields

    raw_components = description.get("components")
    if not isinstance(raw_components, list) or not raw_components:
        raise SuitDescriptionError("components: expected a non-empty list of components")
    components = [
        _component(c, f"components[{i}]", base_dir, default_vendor, default_class)
        for i, c in enumerate(raw_components)
    ]
    ids = [tuple(c.identifier) for c in components]
    if len(set(ids)) != len(ids):
        raise SuitDescriptionError("components: two components have the same id")
    if "install" in severable and not any(c.uri for c in components):
        raise SuitDescriptionError(
            "severable: install is listed but no component has a uri or is integrated"
        )
    if "text" in severable and not text and not any(c.text for c in components):
        raise SuitDescriptionError("severable: text is listed but the description has no text")
    sbom = None
    if "sbom" in description:
        sbom = _read_file(
            base_dir, _str(description["sbom"], "sbom"), "sbom", MAX_SBOM_BYTES, "SBOM file"
        )
    return UpdateDescription(
        sequence_number=sequence_number,
        components=components,
        reference_uri=reference_uri,
        severable=frozenset(severable),
        text_language=language,
        text=text,
        sbom=sbom,
    )


def _component(
    raw: object, where: str, base_dir: Path, default_vendor: object, default_class: object
) -> ComponentDescription:
    if not isinstance(raw, Mapping):
        raise SuitDescriptionError(f"{where}: expected a table/mapping")
    _unknown_keys(raw, COMPONENT_KEYS, where)
    ident = raw.get("id")
    if not isinstance(ident, list) or not ident:
        raise SuitDescriptionError(f"{where}.id: expected a non-empty list of strings")
    identifier = [parse_identifier_element(e, f"{where}.id[{j}]") for j, e in enumerate(ident)]

    vendor = raw.get("vendor-id", default_vendor)
    klass = raw.get("class-id", default_class)
    if vendor is None or klass is None:
        missing = "vendor-id" if vendor is None else "class-id"
        raise SuitDescriptionError(f"{where}: {missing} is required (here or at the top level)")
    vendor_id = _uuid(vendor, f"{where}.vendor-id")
    class_id = _uuid(klass, f"{where}.class-id")

    integrated = _bool(raw.get("integrated", False), f"{where}.integrated")
    image: bytes | None = None
    if "file" in raw:
        if "digest" in raw or "size" in raw:
            raise SuitDescriptionError(f"{where}: give either file, or digest and size, not both")
        image = _read_image(base_dir, _str(raw["file"], f"{where}.file"), f"{where}.file")
        digest = digest_bytes(image)
        size = len(image)
    elif "digest" in raw and "size" in raw:
        if integrated:
            raise SuitDescriptionError(f"{where}: an integrated image needs file")
        hexdigest = _str(raw["digest"], f"{where}.digest")
        if len(hexdigest) != 64 or not _HEX.match(hexdigest):
            raise SuitDescriptionError(f"{where}.digest: expected 64 hex digits (SHA-256)")
        digest = Digest(cp.DIGEST_SHA256, bytes.fromhex(hexdigest))
        size = _uint(raw["size"], f"{where}.size")
    else:
        raise SuitDescriptionError(f"{where}: file (or digest and size) is required")

    uri = _str(raw["uri"], f"{where}.uri") if "uri" in raw else None
    payload = None
    if integrated:
        if uri is not None and not uri.startswith("#"):
            raise SuitDescriptionError(
                f"{where}: an integrated image's uri must start with '#' (it names the payload)"
            )
        uri = uri or "#" + "/".join(e.hex() for e in identifier)
        payload = image
    slot = _uint(raw["slot"], f"{where}.slot") if "slot" in raw else None
    invoke = _bool(raw.get("invoke", False), f"{where}.invoke")
    text = _text_fields(raw["text"], COMPONENT_TEXT_KEYS, f"{where}.text") if "text" in raw else {}
    encryption = None
    if "encryption" in raw:
        name = _str(raw["encryption"], f"{where}.encryption")
        if name not in CONTENT_ALG_BY_NAME:
            raise SuitDescriptionError(
                f"{where}.encryption: {name!r} is not one of {', '.join(CONTENT_ALG_BY_NAME)}"
            )
        if image is None:
            raise SuitDescriptionError(
                f"{where}: an encrypted component needs file (the plaintext)"
            )
        if uri is None:
            raise SuitDescriptionError(
                f"{where}: an encrypted component needs uri (where the ciphertext is fetched) "
                "or integrated = true"
            )
        encryption = CONTENT_ALG_BY_NAME[name]
    delta = _delta(raw["delta"], f"{where}.delta") if "delta" in raw else None
    if delta is not None and (encryption is not None or integrated or uri is None):
        raise SuitDescriptionError(
            f"{where}: a delta payload is fetched by uri, neither encrypted nor integrated"
        )
    return ComponentDescription(
        identifier=identifier,
        digest=digest,
        size=size,
        vendor_id=vendor_id,
        class_id=class_id,
        uri=uri,
        integrated_payload=payload,
        slot=slot,
        invoke=invoke,
        text=text,
        encryption=encryption,
        plaintext=image if encryption is not None else None,
        delta=delta,
    )


DELTA_KEYS: Final = frozenset({"source-digest", "source-size", "digest", "size"})


def _sha256_hex(raw: object, where: str) -> Digest:
    text = _str(raw, where)
    if len(text) != 64 or not _HEX.match(text):
        raise SuitDescriptionError(f"{where}: expected 64 hex digits (SHA-256)")
    return Digest(cp.DIGEST_SHA256, bytes.fromhex(text))


def _delta(raw: object, where: str) -> DeltaDescription:
    """``delta = {source-digest, source-size, digest, size}``: the source image and the patch."""
    if not isinstance(raw, Mapping):
        raise SuitDescriptionError(f"{where}: expected a table/mapping")
    _unknown_keys(raw, DELTA_KEYS, where)
    for key in sorted(DELTA_KEYS):
        if key not in raw:
            raise SuitDescriptionError(f"{where}.{key} is required")
    return DeltaDescription(
        source_digest=_sha256_hex(raw["source-digest"], f"{where}.source-digest"),
        source_size=_uint(raw["source-size"], f"{where}.source-size"),
        digest=_sha256_hex(raw["digest"], f"{where}.digest"),
        size=_uint(raw["size"], f"{where}.size"),
    )


def _read_image(base_dir: Path, name: str, where: str) -> bytes:
    return _read_file(base_dir, name, where, MAX_IMAGE_BYTES, "image file")


def _read_file(base_dir: Path, name: str, where: str, limit: int, what: str) -> bytes:
    path = base_dir / name
    try:
        size = path.stat().st_size
        if size > limit:
            raise SuitDescriptionError(f"{where}: {path} is {size} bytes, over {limit}")
        return path.read_bytes()
    except FileNotFoundError:
        raise SuitDescriptionError(f"{where}: {what} {path} not found") from None
    except IsADirectoryError:
        raise SuitDescriptionError(f"{where}: {path} is a directory") from None
    except OSError as exc:
        raise SuitDescriptionError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
