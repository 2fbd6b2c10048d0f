"""What a manifest sets for each component, read statically from its command sequences.

The sequences run in the order the draft processes them: shared-sequence first, then
dependency-resolution, payload-fetch, candidate-verification, install, validate, load, invoke
and uninstall; each starts with component index 0. Dependency manifests (trust-domains) are
components too: their index follows the component list or names an entry of it; what is set
for them is their DependencyInfo. set-component-index selects components;
override-parameters replaces values; set-parameters sets only values not yet set; run-sequence
is followed; of a try-each only the first option is read (it is the one a device tries first).
Nothing is executed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from suture.cose.encrypt import EncryptInfo
from suture.suit import codepoints as cp
from suture.suit.model import CommandSequence, ComponentInfo, DependencyInfo, Digest, Manifest


def _parameters(manifest: Manifest) -> list[dict[int, Any]]:
    params: list[dict[int, Any]] = [{} for _ in range(manifest.index_count)]
    for sequence in manifest.sequences().values():
        _walk(sequence, params, [0] if params else [])
    return params


def dependency_info(manifest: Manifest) -> list[DependencyInfo]:
    """Per dependency: its prefix and the digest, size and URI the sequences set for it."""
    params = _parameters(manifest)
    out = []
    for index, prefix in sorted(manifest.dependencies.items()):
        values = params[index]
        digest = values.get(cp.PARAMETER_IMAGE_DIGEST)
        size = values.get(cp.PARAMETER_IMAGE_SIZE)
        uri = values.get(cp.PARAMETER_URI)
        out.append(
            DependencyInfo(
                index=index,
                prefix=prefix,
                digest=digest if isinstance(digest, Digest) else None,
                size=size if isinstance(size, int) else None,
                uri=uri if isinstance(uri, str) else None,
            )
        )
    return out


def component_info(manifest: Manifest) -> list[ComponentInfo]:
    """Per component: image digest, size, URI, vendor and class id, and all parameters set."""
    params = _parameters(manifest)[: len(manifest.components)]
    out = []
    for index, (identifier, values) in enumerate(zip(manifest.components, params, strict=True)):
        digest = values.get(cp.PARAMETER_IMAGE_DIGEST)
        size = values.get(cp.PARAMETER_IMAGE_SIZE)
        uri = values.get(cp.PARAMETER_URI)
        vendor = values.get(cp.PARAMETER_VENDOR_IDENTIFIER)
        klass = values.get(cp.PARAMETER_CLASS_IDENTIFIER)
        encryption = values.get(cp.PARAMETER_ENCRYPTION_INFO)
        out.append(
            ComponentInfo(
                index=index,
                identifier=identifier,
                image_digest=digest if isinstance(digest, Digest) else None,
                image_size=size if isinstance(size, int) else None,
                uri=uri if isinstance(uri, str) else None,
                vendor_id=vendor if isinstance(vendor, UUID) else None,
                class_id=klass if isinstance(klass, UUID) else None,
                parameters={cp.parameter_name(k): v for k, v in sorted(values.items())},
                encryption_info=encryption if isinstance(encryption, EncryptInfo) else None,
            )
        )
    return out


def _walk(sequence: CommandSequence, params: list[dict[int, Any]], current: list[int]) -> None:
    for command in sequence.commands:
        if command.code == cp.DIRECTIVE_SET_COMPONENT_INDEX:
            arg = command.argument
            if arg is True:
                current[:] = list(range(len(params)))
            elif isinstance(arg, tuple):
                current[:] = list(arg)
            else:
                current[:] = [arg]
        elif command.code == cp.DIRECTIVE_OVERRIDE_PARAMETERS:
            for index in current:
                for p in command.argument:
                    params[index][p.code] = p.value
        elif command.code == cp.DIRECTIVE_SET_PARAMETERS:
            for index in current:
                for p in command.argument:
                    params[index].setdefault(p.code, p.value)
        elif command.code == cp.DIRECTIVE_RUN_SEQUENCE:
            _walk(command.argument, params, list(current))
        elif command.code == cp.DIRECTIVE_TRY_EACH and command.argument[0] is not None:
            _walk(command.argument[0], params, list(current))
