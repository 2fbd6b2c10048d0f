"""Show an envelope: a JSON-serialisable summary (``inspect --json``) and a rich rendering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from suture.cose import alg_name
from suture.cose.encrypt import EncryptInfo
from suture.cose.mac0 import MAC_ALGS, mac_name
from suture.suit import codepoints as cp
from suture.suit.model import (
    Command,
    CommandSequence,
    Digest,
    Envelope,
    LocalizedText,
    Parameter,
)


def _digest_json(digest: Digest | None) -> dict[str, Any] | None:
    if digest is None:
        return None
    return {
        "algorithm": digest.algorithm_name,
        "algorithm_id": digest.algorithm,
        "hex": digest.value.hex(),
    }


def to_json(value: Any) -> Any:
    """Decoded SUIT values as JSON: bytes as hex, UUIDs as text, sequences as command lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Digest):
        return _digest_json(value)
    if isinstance(value, EncryptInfo):
        return encryption_json(value)
    if isinstance(value, CommandSequence):
        return [_command_json(c) for c in value.commands]
    if isinstance(value, Parameter):
        return {value.name: to_json(value.value)}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return repr(value)


def encryption_json(info: EncryptInfo) -> dict[str, Any]:
    """A SUIT_Encryption_Info for people and scripts: algorithms, IV and recipients."""
    return {
        "content_alg": info.content_alg_name,
        "iv": info.iv.hex(),
        "recipients": [
            {"alg": r.alg_name, "kid": r.kid.hex() if r.kid is not None else None}
            for r in info.recipients
        ],
    }


def _block_alg(kind: str, alg: int | None) -> str | None:
    if alg is None:
        return None
    return mac_name(alg) if kind == "COSE_Mac0" and alg in MAC_ALGS else alg_name(alg)


def _command_json(command: Command) -> dict[str, Any]:
    arg = command.argument
    if command.code in (cp.DIRECTIVE_OVERRIDE_PARAMETERS, cp.DIRECTIVE_SET_PARAMETERS):
        argument: Any = {p.name: to_json(p.value) for p in arg}
    else:
        argument = to_json(arg)
    return {"name": command.name, "code": command.code, "argument": argument}


def _text_json(text: Mapping[str, LocalizedText] | None) -> dict[str, Any] | None:
    if text is None:
        return None
    return {
        lang: {
            "manifest": dict(entry.manifest),
            "components": [
                {"id": [e.hex() for e in cid], **fields} for cid, fields in entry.components
            ],
        }
        for lang, entry in text.items()
    }


def _member_state(env: Envelope, name: str) -> str:
    if name in env.severed:
        return "severed"
    if name in env.severable_members:
        return "severable"
    manifest = env.manifest
    present = {
        "dependency-resolution": manifest.dependency_resolution,
        "payload-fetch": manifest.payload_fetch,
        "candidate-verification": manifest.candidate_verification,
        "install": manifest.install,
        "text": manifest.text,
    }[name]
    return "inline" if present is not None else "absent"


def _dependencies_json(env: Envelope) -> list[dict[str, Any]]:
    verified = {d.info.index: d for d in env.dependencies}
    out = []
    for info in env.manifest.dependency_info:
        entry: dict[str, Any] = {
            "index": info.index,
            "prefix": [e.hex() for e in info.prefix] if info.prefix is not None else None,
            "manifest_digest": _digest_json(info.digest),
            "size": info.size,
            "uri": info.uri,
            "verified": info.index in verified,
        }
        found = verified.get(info.index)
        if found is not None:
            entry["source"] = found.source
            entry["envelope"] = envelope_summary(found.envelope)
        out.append(entry)
    return out


def envelope_summary(env: Envelope) -> dict[str, Any]:
    """What ``suture suit inspect --json`` prints: plain JSON types only."""
    manifest = env.manifest
    components = []
    for info in manifest.component_info:
        components.append(
            {
                "index": info.index,
                "id": [e.hex() for e in info.identifier],
                "image_digest": _digest_json(info.image_digest),
                "image_size": info.image_size,
                "uri": info.uri,
                "vendor_id": str(info.vendor_id) if info.vendor_id else None,
                "class_id": str(info.class_id) if info.class_id else None,
                "parameters": to_json(info.parameters),
                "encryption": (
                    encryption_json(info.encryption_info) if info.encryption_info else None
                ),
            }
        )
    key_ids = [k.hex() for k in env.signer_key_ids]
    return {
        "tagged": env.tagged,
        "verified": env.verified,
        "manifest_version": manifest.version,
        "sequence_number": manifest.sequence_number,
        "reference_uri": manifest.reference_uri,
        "manifest_digest": _digest_json(env.authentication.digest),
        "components": components,
        "sequences": {name: to_json(seq) for name, seq in manifest.sequences().items()},
        "severable": {name: _member_state(env, name) for name in cp.SEVERABLE_MEMBERS},
        "severed": list(env.severed),
        "text": _text_json(manifest.text),
        "integrated_payloads": {k: len(v) for k, v in env.integrated_payloads.items()},
        "dependencies": _dependencies_json(env),
        "sbom_digest": _digest_json(manifest.sbom_digest),
        "authentication": [
            {
                "kind": block.kind,
                "alg": _block_alg(block.kind, block.alg),
                "kid": block.kid.hex() if block.kid is not None else None,
            }
            for block in env.authentication.blocks
        ],
        "signer_key_ids": key_ids,
        "signer_key_id": key_ids[0] if key_ids else None,
    }


def _id_text(identifier: list[bytes]) -> str:
    parts = []
    for element in identifier:
        printable = element.isascii() and element.decode("ascii").isprintable() and element
        parts.append(f"'{element.decode('ascii')}'" if printable else f"h'{element.hex()}'")
    return "[" + ", ".join(parts) + "]"


def _sequence_tree(tree: Tree, sequence: CommandSequence) -> None:
    for command in sequence.commands:
        arg = command.argument
        if command.code in (cp.DIRECTIVE_OVERRIDE_PARAMETERS, cp.DIRECTIVE_SET_PARAMETERS):
            node = tree.add(f"[cyan]{command.name}[/]")
            for p in arg:
                value = to_json(p.value)
                if isinstance(value, dict) and "hex" in value:
                    value = f"{value['algorithm']}:{value['hex']}"
                node.add(escape(f"{p.name} = {value}"))
        elif command.code == cp.DIRECTIVE_RUN_SEQUENCE:
            _sequence_tree(tree.add(f"[cyan]{command.name}[/]"), arg)
        elif command.code == cp.DIRECTIVE_TRY_EACH:
            node = tree.add(f"[cyan]{command.name}[/]")
            for i, option in enumerate(arg):
                if option is None:
                    node.add(f"option {i}: nil")
                else:
                    _sequence_tree(node.add(f"option {i}"), option)
        else:
            style = "green" if command.kind == "condition" else "cyan"
            tree.add(f"[{style}]{command.name}[/] {escape(str(to_json(arg)))}")


def render(env: Envelope, console: Console) -> None:
    """Print an envelope for people: summary table, components, sequences, text."""
    manifest = env.manifest
    summary = envelope_summary(env)
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    head.add_row("sequence number", str(manifest.sequence_number))
    head.add_row("manifest version", str(manifest.version))
    head.add_row("tagged (107)", "yes" if env.tagged else "no")
    if manifest.reference_uri:
        head.add_row("reference uri", escape(manifest.reference_uri))
    digest = env.authentication.digest
    head.add_row("manifest digest", f"{digest.algorithm_name}:{digest.value.hex()}")
    for i, block in enumerate(summary["authentication"], start=1):
        kid = f", kid {block['kid']}" if block["kid"] else ""
        head.add_row(f"signature {i}", f"{block['kind']} {block['alg'] or ''}{kid}")
    if not env.authentication.blocks:
        head.add_row("signature", "[red]none (unsigned)[/]")
    if env.verified:
        head.add_row(
            "verified", "[green]yes[/], signer key id " + ", ".join(summary["signer_key_ids"])
        )
    for name, state in summary["severable"].items():
        if state != "absent":
            head.add_row(name, state)
    for name, size in summary["integrated_payloads"].items():
        head.add_row(escape(f"payload {name}"), f"{size} bytes")
    for dep in summary["dependencies"]:
        digest_json = dep["manifest_digest"]
        where = dep["uri"] or "(no uri)"
        state = f", verified ({dep['source']})" if dep["verified"] else ""
        digest_text = f", manifest {digest_json['hex']}" if digest_json else ""
        head.add_row(f"dependency {dep['index']}", escape(f"{where}{digest_text}{state}"))
    if manifest.sbom_digest is not None:
        head.add_row(
            "sbom", f"{manifest.sbom_digest.algorithm_name}:{manifest.sbom_digest.value.hex()}"
        )
    console.print(head)

    for info in manifest.component_info:
        table = Table(show_header=False, box=None, pad_edge=False, title_justify="left")
        table.title = f"component {info.index} {escape(_id_text(info.identifier))}"
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        if info.image_digest:
            digest_text = f"{info.image_digest.algorithm_name}:{info.image_digest.value.hex()}"
            table.add_row("image digest", digest_text)
        if info.image_size is not None:
            table.add_row("image size", str(info.image_size))
        if info.uri:
            table.add_row("uri", escape(info.uri))
        if info.vendor_id:
            table.add_row("vendor id", str(info.vendor_id))
        if info.class_id:
            table.add_row("class id", str(info.class_id))
        if info.encryption_info:
            enc = encryption_json(info.encryption_info)
            recipients = ", ".join(
                r["alg"] + (f" kid {r['kid']}" if r["kid"] else "") for r in enc["recipients"]
            )
            table.add_row("encrypted", escape(f"{enc['content_alg']}, for {recipients}"))
        console.print(table)

    tree = Tree("[bold]command sequences[/]")
    for name, sequence in manifest.sequences().items():
        _sequence_tree(tree.add(f"[bold]{name}[/]"), sequence)
    # Trees wrap their long lines under the guides; a soft-wrapping console would crop them.
    console.print(tree, soft_wrap=False)

    if manifest.text:
        text_tree = Tree("[bold]text[/]")
        for lang, entry in manifest.text.items():
            node = text_tree.add(escape(lang))
            for key, value in entry.manifest.items():
                node.add(escape(f"{key}: {value}"))
            for cid, fields in entry.components:
                cnode = node.add(escape(_id_text(cid)))
                for key, value in fields.items():
                    cnode.add(escape(f"{key}: {value}"))
        console.print(text_tree, soft_wrap=False)
