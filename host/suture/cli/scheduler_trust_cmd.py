"""`suture scheduler trust`: publish a signed trust-store update (a vendor or scheduler key
rotation, docs/formats/trust-store.md) to the devices, list what was published, and show per
device which version it holds (suture.scheduler.services.trust_rotations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from suture.cli.errors import SutureTyper
from suture.cli.options import emit_json
from suture.scheduler.authz import Permission, Principal

trust_app = SutureTyper(
    help="Trust-anchor rotations: publish a signed trust-store update to the devices, list "
         "them, and see which version each device holds.",
    no_args_is_help=True)
_out = Console(soft_wrap=True)

ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
    help="Settings file written by `suture scheduler init`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _baseline(settings: Any) -> dict[str, list[bytes]]:
    from suture.keys import load_private_key, load_public_key
    from suture.scheduler.services import trust_rotations

    own = load_private_key(settings.signing_key_path).public_key()
    vendors = [load_public_key(p) for p in settings.trust_anchor_paths]
    return trust_rotations.baseline(own, vendors)


@trust_app.command("sign")
def sign(
    role: Annotated[str, typer.Option(help="vendor (SUIT envelopes) or scheduler (schedules).")],
    version: Annotated[int, typer.Option(min=1, max=0xFFFFFFFF,
                                         help="Above the version the devices hold now.")],
    key: Annotated[list[Path], typer.Option(
        help="A public key (PEM) the devices trust for the role afterwards; repeatable.")],
    sign_with: Annotated[Path, typer.Option(
        help="A private key (PEM) the devices trust for the role now: the old anchor.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed update.")],
    as_json: JsonOpt = False,
) -> None:
    """Make a signed trust-store update (docs/formats/trust-store.md): the role's new keys and
    version, signed by its current anchor. Run it where that private key is kept."""
    from suture.cli.scheduler_cmd import _errors
    from suture.formats.trust_store import TrustUpdate, sec1_point, sign_trust_update
    from suture.keys import load_private_key, load_public_key

    with _errors():
        update = TrustUpdate(role, version,
                             tuple(sec1_point(load_public_key(p)) for p in key))
        document = sign_trust_update(update, load_private_key(sign_with))
        out.write_bytes(document)
    if as_json:
        emit_json({"role": role, "version": version, "keys": [sec1_point(
            load_public_key(p)).hex() for p in key], "out": str(out), "bytes": len(document)})
        return
    _out.print(f"{out}: {role} trust version {version}, {len(key)} keys, {len(document)} bytes",
               highlight=False)


@trust_app.command("publish")
def publish(
    document: Annotated[Path, typer.Argument(
        help="The signed trust-store update (COSE_Sign1: `suture scheduler trust sign`).",
        exists=True, dir_okay=False)],
    config: ConfigOpt = Path("scheduler.env"), as_json: JsonOpt = False,
) -> None:
    """Publish a rotation: checked as a device checks it (signed by the role's current
    anchors, a version above theirs), then carried in the schedule of every device that does
    not hold it yet."""
    from suture.cli.scheduler_cmd import _now, _run
    from suture.scheduler.services import trust_rotations

    data = document.read_bytes()

    def go(settings: Any, session: Session, me: Principal) -> Any:
        return trust_rotations.publish(session, document=data, baseline=_baseline(settings),
                                       actor=me, now=_now())

    row = _run(config, Permission.RELEASE_IMPORT, go)
    if as_json:
        emit_json({"role": row.role, "version": row.version, "keys": row.keys,
                   "document_sha256": row.document_sha256})
        return
    _out.print(f"published {row.role} trust version {row.version} ({len(row.keys)} keys); "
               "devices get it at their next poll", highlight=False)


@trust_app.command("list")
def list_(config: ConfigOpt = Path("scheduler.env"), as_json: JsonOpt = False) -> None:
    """The rotations published, per role and version."""
    from suture.cli.scheduler_cmd import _run, _when
    from suture.scheduler.services import trust_rotations

    rows = _run(config, Permission.DEVICE_READ,
                lambda s, session, me: trust_rotations.list_rotations(session))
    if as_json:
        emit_json([{"role": r.role, "version": r.version, "keys": r.keys,
                    "document_sha256": r.document_sha256, "created_at": r.created_at,
                    "created_by": r.created_by} for r in rows])
        return
    table = Table("role", "version", "keys", "published", "by", title="trust rotations")
    for r in rows:
        table.add_row(r.role, str(r.version), str(len(r.keys)), _when(r.created_at), r.created_by)
    _out.print(table)


@trust_app.command("status")
def status(config: ConfigOpt = Path("scheduler.env"), as_json: JsonOpt = False) -> None:
    """Per device: the trust-store versions it reports and the rotation it still needs."""
    from suture.cli.scheduler_cmd import _run
    from suture.scheduler.services import trust_rotations

    rows = _run(config, Permission.DEVICE_READ,
                lambda s, session, me: trust_rotations.device_trust(session,
                                                                    tenant=me.tenant))
    if as_json:
        _out.print_json(json.dumps([{"device_id": r.device_id, "versions": r.versions,
                                     "pending": r.pending} for r in rows]))
        return
    table = Table("device", "vendor", "scheduler", "carried in its schedule",
                  title="trust versions the devices report")
    for r in rows:
        table.add_row(r.device_id, _held(r.versions, "vendor"), _held(r.versions, "scheduler"),
                      r.pending or "")
    _out.print(table)


def _held(versions: dict[str, int], role: str) -> str:
    return str(versions[role]) if role in versions else "?"


def register_into(scheduler_app: typer.Typer) -> None:
    scheduler_app.add_typer(trust_app, name="trust")
