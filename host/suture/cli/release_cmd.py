"""`suture release`: a release's files. `suture release sbom show|diff` reads CycloneDX SBOMs
(validated against their schema) and, given the envelope, checks that the SBOM is the one its
signed manifest names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suture.cli.errors import SutureTyper
from suture.cli.options import JsonOpt, emit_json
from suture.suit import decode_envelope
from suture.suit.sbom import (
    MAX_SBOM_BYTES,
    Sbom,
    SbomComponent,
    SbomDiff,
    check_binding,
    diff_sboms,
    diff_summary,
    parse_sbom,
    sbom_summary,
)

release_app = SutureTyper(help="A release's files: its SBOM.", no_args_is_help=True)
sbom_app = SutureTyper(
    help="CycloneDX SBOMs: show components and licences, compare two releases.",
    no_args_is_help=True,
)
release_app.add_typer(sbom_app, name="sbom")
_out = Console(soft_wrap=True)


def _read(path: Path, limit: int = MAX_SBOM_BYTES) -> bytes:
    with path.open("rb") as f:
        return f.read(limit + 1)


def _row(c: SbomComponent) -> list[str]:
    return [escape(c.name), escape(c.version or ""), escape(", ".join(c.licenses)),
            escape(c.purl or "")]


@sbom_app.command("show")
def show(
    sbom: Annotated[Path, typer.Argument(help="CycloneDX JSON SBOM.")],
    envelope: Annotated[Path | None, typer.Option(
        "--envelope", help="The release's envelope: check that its manifest names this SBOM.",
    )] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate an SBOM against the CycloneDX schema and show its components and licences."""
    doc = parse_sbom(_read(sbom))
    bound = None
    if envelope is not None:
        check_binding(decode_envelope(envelope.read_bytes()).manifest, doc)
        bound = str(envelope)
    if as_json:
        emit_json({**sbom_summary(doc), "bound_to": bound})
        return
    print_sbom(doc, str(sbom), bound_to=bound)


def print_sbom(doc: Sbom, source: str, *, bound_to: str | None = None) -> None:
    """An SBOM as `release sbom show` prints it: a summary line, its components, licences."""
    subject = f" for {escape(doc.subject)}" if doc.subject else ""
    _out.print(f"{escape(source)}: CycloneDX {doc.spec_version}{subject}, "
               f"{len(doc.components)} components, sha-256 {doc.digest.value.hex()}",
               highlight=False)
    if bound_to:
        _out.print(f"bound to the manifest of {escape(bound_to)}", highlight=False)
    table = Table("component", "version", "licences", "purl")
    for c in doc.components:
        table.add_row(*_row(c))
    _out.print(table)
    _out.print("licences: " + escape(", ".join(doc.licenses) or "(none)"), highlight=False)


@sbom_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The earlier release's SBOM.")],
    new: Annotated[Path, typer.Argument(help="The later release's SBOM.")],
    as_json: JsonOpt = False,
) -> None:
    """Components added, removed and changed (version, licences) between two SBOMs."""
    result = diff_sboms(parse_sbom(_read(old)), parse_sbom(_read(new)))
    if as_json:
        emit_json(diff_summary(result))
        return
    print_diff(result)


def print_diff(result: SbomDiff) -> None:
    """A difference as `release sbom diff` prints it: +, - and ~ rows, licences in and out."""
    if result.empty:
        _out.print("no component changed", highlight=False)
    table = Table("", "component", "version", "licences")
    for c in result.added:
        table.add_row("+", escape(c.name), escape(c.version or ""), escape(", ".join(c.licenses)))
    for c in result.removed:
        table.add_row("-", escape(c.name), escape(c.version or ""), escape(", ".join(c.licenses)))
    for ch in result.changed:
        table.add_row("~", escape(ch.new.name),
                      escape(f"{ch.old.version or ''} -> {ch.new.version or ''}"),
                      escape(f"{', '.join(ch.old.licenses)} -> {', '.join(ch.new.licenses)}"))
    if not result.empty:
        _out.print(table)
    for label, items in (("licences added", result.licenses_added),
                         ("licences removed", result.licenses_removed)):
        if items:
            _out.print(f"{label}: " + escape(", ".join(items)), highlight=False)


def register(app: typer.Typer) -> None:
    """Attach the `release` command group to the root app."""
    app.add_typer(release_app, name="release")
