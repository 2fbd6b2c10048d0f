"""`suture delta`: build a delta patch between two images (docs/formats/delta.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from suture.cli.errors import CliError, SutureTyper
from suture.cli.options import JsonOpt, emit_json
from suture.delta import make_delta
from suture.delta.builder import DEFAULT_SEGMENT_SIZE, MAX_IMAGE
from suture.errors import EXIT_USAGE

delta_app = SutureTyper(
    help="Delta patches: a release as a patch from one exact installed image.",
    no_args_is_help=True,
)
_out = Console(soft_wrap=True)


def _read(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_IMAGE:
        raise CliError(f"{path}: {size} bytes is over the image limit of {MAX_IMAGE}",
                       EXIT_USAGE)
    return path.read_bytes()


@delta_app.command("build")
def build(
    source: Annotated[Path, typer.Argument(
        help="The image the devices have installed: the earlier release's payload (an "
             "application bundle, or a loader image as it sits in the loader slot).")],
    target: Annotated[Path, typer.Argument(help="The new release's payload (the same kind).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Patch file to write.")],
    segment_size: Annotated[int, typer.Option(
        "--segment-size", help="Target bytes per independently applied segment (a multiple "
                               "of 4096).")] = DEFAULT_SEGMENT_SIZE,
    as_json: JsonOpt = False,
) -> None:
    """Build the patch from SOURCE to TARGET and print what the release's SUIT description
    gives its component: the target's digest and size, and the `delta` table (the source's
    digest and size, the patch's). Sign that description with `suture suit create`; the
    scheduler imports the envelope and the patch as a delta of the target's release and serves
    it to the devices whose installed release is the source (docs/formats/delta.md). The same
    command serves an application bundle and a loader image (a MicroPython upgrade under the
    same loader)."""
    d = make_delta(_read(source), _read(target), segment_size=segment_size)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(d.patch)
        os.replace(tmp, out)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fraction = len(d.patch) / d.target_size
    table = {"source-digest": d.source_digest.hex(), "source-size": d.source_size,
             "digest": d.digest.hex(), "size": len(d.patch)}
    if as_json:
        emit_json({"patch": str(out), "patch_bytes": len(d.patch),
                   "fraction_of_target": round(fraction, 4),
                   "component": {"digest": d.target_digest.hex(), "size": d.target_size,
                                 "delta": table}})
        return
    _out.print(f"wrote {out} ({len(d.patch)} bytes, {fraction:.1%} of the target)",
               highlight=False)
    _out.print(f'digest = "{d.target_digest.hex()}"\nsize = {d.target_size}\n'
               f'delta = {{ source-digest = "{table["source-digest"]}", source-size = '
               f'{d.source_size}, digest = "{table["digest"]}", size = {len(d.patch)} }}',
               highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Attach the `delta` command group to the root app."""
    app.add_typer(delta_app, name="delta")
