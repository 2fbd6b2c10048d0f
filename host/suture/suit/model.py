"""Typed, immutable view of a decoded SUIT envelope.

Built by :mod:`suture.suit.decoder`; nothing here parses or verifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from suture.cose.encrypt import EncryptInfo
from suture.suit import codepoints


@dataclass(frozen=True)
class Digest:
    """A SUIT_Digest: ``[algorithm-id, digest-bytes]`` (COSE algorithm ids, -16 = SHA-256)."""

    algorithm: int
    value: bytes

    @property
    def algorithm_name(self) -> str:
        known = codepoints.DIGEST_ALGORITHMS.get(self.algorithm)
        return known[0] if known else f"alg {self.algorithm}"

    def to_cbor(self) -> list[Any]:
        return [self.algorithm, self.value]


@dataclass(frozen=True)
class Parameter:
    """One SUIT parameter with its decoded value (UUID, Digest, int, bool, str or bytes)."""

    code: int
    name: str
    value: Any


@dataclass(frozen=True)
class CommandSequence:
    """A decoded SUIT_Command_Sequence and the exact bytes it was decoded from."""

    commands: tuple[Command, ...]
    encoded: bytes


@dataclass(frozen=True)
class Command:
    """One condition or directive with its argument.

    ``argument`` is, by command: the reporting policy (int) for most; a tuple of
    :class:`Parameter` for override/set-parameters; an int, ``True`` or a tuple of ints for
    set-component-index; a tuple of :class:`CommandSequence` (or ``None`` for a trailing nil)
    for try-each; a :class:`CommandSequence` for run-sequence; the raw value for unknown codes.
    """

    code: int
    name: str
    kind: str  # "condition", "directive" or "unknown"
    argument: Any

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """The parameters an override/set-parameters directive sets (empty for others)."""
        if self.code in (
            codepoints.DIRECTIVE_OVERRIDE_PARAMETERS,
            codepoints.DIRECTIVE_SET_PARAMETERS,
        ):
            params: tuple[Parameter, ...] = self.argument
            return params
        return ()


@dataclass(frozen=True)
class ComponentInfo:
    """What the manifest's sequences set for one component (read statically, in the order
    shared-sequence, payload-fetch, install, validate, load, invoke; the first alternative of a
    try-each)."""

    index: int
    identifier: list[bytes]
    image_digest: Digest | None
    image_size: int | None
    uri: str | None
    vendor_id: UUID | None
    class_id: UUID | None
    parameters: dict[str, Any]
    encryption_info: EncryptInfo | None = None


@dataclass(frozen=True)
class DependencyInfo:
    """A dependency manifest (draft-ietf-suit-trust-domains) as the dependent names it: its
    component index, the prefix of SUIT_Dependency_Metadata, and what the sequences set for
    it (the digest of its manifest, its envelope's size and URI), read like ComponentInfo."""

    index: int
    prefix: list[bytes] | None
    digest: Digest | None
    size: int | None
    uri: str | None


@dataclass(frozen=True)
class LocalizedText:
    """The text of one language: manifest-level fields and per-component fields."""

    manifest: dict[str, str]
    components: list[tuple[list[bytes], dict[str, str]]]


@dataclass(frozen=True)
class Manifest:
    """A decoded SUIT_Manifest. Severable members (payload-fetch, install, text) are filled in
    whether they were inline or supplied by the envelope; ``severable_digests`` holds those the
    manifest names by digest."""

    version: int
    sequence_number: int
    components: list[list[bytes]]
    shared_sequence: CommandSequence | None
    reference_uri: str | None
    manifest_component_id: list[bytes] | None
    validate: CommandSequence | None
    load: CommandSequence | None
    invoke: CommandSequence | None
    payload_fetch: CommandSequence | None
    install: CommandSequence | None
    text: dict[str, LocalizedText] | None
    severable_digests: dict[str, Digest]
    component_info: list[ComponentInfo]
    encoded: bytes
    extensions: dict[Any, Any] = field(default_factory=dict)
    dependencies: dict[int, list[bytes] | None] = field(default_factory=dict)
    dependency_resolution: CommandSequence | None = None
    candidate_verification: CommandSequence | None = None
    uninstall: CommandSequence | None = None
    dependency_info: list[DependencyInfo] = field(default_factory=list)
    sbom_digest: Digest | None = None

    @property
    def index_count(self) -> int:
        """How many component indices the sequences may select: the components, then the
        dependencies whose index follows the component list."""
        return len(self.components) + sum(
            1 for index in self.dependencies if index >= len(self.components)
        )

    def sequences(self) -> dict[str, CommandSequence]:
        """The command sequences present, by name, in processing order (staging, then
        installation, then invocation; uninstall last)."""
        named = {
            "shared-sequence": self.shared_sequence,
            "dependency-resolution": self.dependency_resolution,
            "payload-fetch": self.payload_fetch,
            "candidate-verification": self.candidate_verification,
            "install": self.install,
            "validate": self.validate,
            "load": self.load,
            "invoke": self.invoke,
            "uninstall": self.uninstall,
        }
        return {name: seq for name, seq in named.items() if seq is not None}


@dataclass(frozen=True)
class AuthenticationBlock:
    """One SUIT_Authentication_Block (a COSE structure), decoded only as far as its headers.
    COSE_Sign1 and COSE_Mac0 blocks are verified; COSE_Sign and COSE_Mac are reported only."""

    encoded: bytes
    kind: str  # "COSE_Sign1", "COSE_Sign", "COSE_Mac", "COSE_Mac0"
    alg: int | None
    kid: bytes | None


@dataclass(frozen=True)
class AuthenticationWrapper:
    """``[bstr(SUIT_Digest), *bstr(SUIT_Authentication_Block)]``."""

    digest: Digest
    digest_encoded: bytes
    blocks: list[AuthenticationBlock]


@dataclass(frozen=True)
class Envelope:
    """A decoded SUIT envelope. ``verified`` and ``signer_key_ids`` are set by
    :func:`suture.suit.verify_envelope`; after :func:`suture.suit.decode_envelope` alone,
    ``signer_key_ids`` holds the kid headers of the authentication blocks, if any."""

    manifest: Manifest
    authentication: AuthenticationWrapper
    manifest_bstr: bytes
    severable_members: dict[str, bytes]
    severed: list[str]
    integrated_payloads: dict[str, bytes]
    tagged: bool
    signer_key_ids: list[bytes]
    verified: bool = False
    extensions: dict[Any, Any] = field(default_factory=dict)
    dependencies: list[VerifiedDependency] = field(default_factory=list)


@dataclass(frozen=True)
class VerifiedDependency:
    """A dependency manifest that :func:`suture.suit.verify_envelope` found and verified: where
    it came from (integrated in the envelope, or supplied by URI) and its own envelope, itself
    verified with the dependency trust anchors."""

    info: DependencyInfo
    source: str  # "integrated" or "supplied"
    envelope: Envelope
