"""`suture scheduler release delta import|list`: a vendor-signed delta of a release
(docs/formats/delta.md), verified against the release and its source release before it is
stored; the scheduler then serves it to devices on the source release instead of the full
payload (suture.scheduler.services.deltas)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from suture.cli.errors import SutureTyper
from suture.cli.options import JsonOpt, emit_json
from suture.scheduler.authz import Permission, Principal

delta_app = SutureTyper(help="A release's deltas: import a vendor-signed one (verified), list.",
                        no_args_is_help=True)
ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
    help="Settings file written by `suture scheduler init`.")]


@delta_app.command("import")
def delta_import(
    release_id: Annotated[int, typer.Argument(help="The release the delta updates to.")],
    envelope: Annotated[Path, typer.Argument(help="The delta's signed SUIT envelope (.suit).")],
    patch: Annotated[Path, typer.Argument(help="The patch the envelope names "
                                                "(`suture delta build`).")],
    trust_anchor: Annotated[list[Path] | None, typer.Option(
        help="Vendor public key (PEM); default: the settings' trust anchors.")] = None,
    config: ConfigOpt = Path("scheduler.env"), as_json: JsonOpt = False,
) -> None:
    """Verify a vendor-signed delta of a release (its signature, that it is of this release,
    the patch, its source: an earlier release of the same component), then store it. Devices
    whose installed release is the source are served the patch from then on."""
    from suture.cli.scheduler_cmd import _now, _run
    from suture.keys import load_public_key
    from suture.scheduler.schemas import DeltaPublic
    from suture.scheduler.services import deltas

    def go(settings: Any, session: Session, me: Principal) -> DeltaPublic:
        anchors = [load_public_key(p) for p in (trust_anchor or settings.trust_anchor_paths)]
        return DeltaPublic.model_validate(deltas.import_delta(
            session, release_id=release_id, envelope=envelope.read_bytes(),
            patch=patch.read_bytes(), trust_anchors=anchors, actor=me, now=_now()))

    delta = _run(config, Permission.RELEASE_IMPORT, go)
    if as_json:
        emit_json(delta.model_dump(mode="json"))
        return
    Console(soft_wrap=True).print(
        f"delta {delta.id} of release {delta.release_id} from release "
        f"{delta.source_release_id} ({delta.payload_size} bytes) verified and imported",
        highlight=False)


@delta_app.command("list")
def delta_list(
    release_id: Annotated[int, typer.Argument(help="The release.")],
    config: ConfigOpt = Path("scheduler.env"), as_json: JsonOpt = False,
) -> None:
    """A release's deltas: each one's source release and patch."""
    from suture.cli.scheduler_cmd import _run, _when
    from suture.scheduler.schemas import DeltaPublic
    from suture.scheduler.services import deltas

    rows = _run(config, Permission.RELEASE_READ, lambda s, session, me: [
        DeltaPublic.model_validate(d)
        for d in deltas.list_deltas(session, release_id=release_id, actor=me)])
    if as_json:
        emit_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table("id", "from release", "patch bytes", "patch sha256", "imported", "by",
                  title=f"deltas of release {release_id}")
    for r in rows:
        table.add_row(str(r.id), str(r.source_release_id), str(r.payload_size),
                      r.payload_digest[:16], _when(r.imported_at), r.imported_by)
    Console(soft_wrap=True).print(table)


def register_into(release_app: typer.Typer) -> None:
    """Attach `delta import|list` under `scheduler release`."""
    release_app.add_typer(delta_app, name="delta")
