"""`suture scheduler vendor`: the vendors this scheduler mirrors releases from (GNAP client)."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suture.cli.errors import CliError, SutureTyper
from suture.cli.options import JsonOpt, emit_json
from suture.errors import EXIT_USAGE

# soft_wrap: a printed line is never broken at the terminal's width, so paths, key ids and
# verdicts stay whole (and greppable); tables and panels still fit the terminal.
_out = Console(soft_wrap=True)

vendor_app = SutureTyper(
    help="Vendors this scheduler mirrors releases from, with GNAP tokens.",
    no_args_is_help=True,
)

VendorsOption = Annotated[
    Path,
    typer.Option(
        "--vendors", envvar="SUTURE_SCHEDULER_VENDORS",
        help="The scheduler's vendors file (JSON).",
    ),
]
DEFAULT_VENDORS = Path("vendors.json")


@vendor_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The vendor's repository, e.g. https://v.example/releases/.")],
    name: Annotated[str, typer.Option(help="A short name for this vendor.")],
    client_key: Annotated[
        Path, typer.Option(help="This scheduler's GNAP client private key (PEM: ES256 or EdDSA).")
    ],
    trust_anchors: Annotated[
        list[Path],
        typer.Option("--trust-anchor", help="The vendor's release-signing public key (repeat)."),
    ],
    instance_id: Annotated[
        str | None,
        typer.Option(help="The id the vendor registered this scheduler under (else: by key)."),
    ] = None,
    biscuit_key: Annotated[
        Path | None,
        typer.Option(help="Vendor-run mode: the vendor's biscuit root key (PEM); devices then "
                          "download from the vendor with biscuits this scheduler issues."),
    ] = None,
    vendors: VendorsOption = DEFAULT_VENDORS,
    as_json: JsonOpt = False,
) -> None:
    """Register a vendor: find its authorization server and remember whom to trust.

    Calls URL without a token; the 401 answer names the vendor's GNAP
    authorization server (WWW-Authenticate: GNAP as_uri=...), whose discovery
    document is then checked.
    """
    import httpx

    from suture.keys import load_private_key, load_public_key
    from suture.scheduler.vendor_mirror import (
        VendorEntry,
        discover_vendor,
        load_vendors,
        save_vendors,
    )

    load_private_key(client_key)
    for anchor in trust_anchors:
        load_public_key(anchor)
    if biscuit_key is not None:
        from suture.vendor_services.biscuits import load_root_key

        load_root_key(biscuit_key)
    with httpx.Client(timeout=10.0) as http:
        as_uri = discover_vendor(http, url)
    entries = load_vendors(vendors)
    entries[name] = VendorEntry(
        name=name, repository_url=url, as_uri=as_uri,
        client_key=str(client_key.resolve()),
        trust_anchors=tuple(str(a.resolve()) for a in trust_anchors),
        instance_id=instance_id,
        biscuit_key=str(biscuit_key.resolve()) if biscuit_key is not None else None,
    )
    save_vendors(vendors, entries)
    if as_json:
        emit_json(_vendor_json(entries[name]))
        return
    _out.print(f"vendor {name}: repository {url}, authorization server {as_uri}",
               highlight=False, soft_wrap=True)


def _vendor_json(entry: Any) -> dict[str, object]:
    return {"name": entry.name, "repository_url": entry.repository_url, "as_uri": entry.as_uri,
            "instance_id": entry.instance_id, "client_key": entry.client_key,
            "trust_anchors": list(entry.trust_anchors), "direct_url": entry.direct_url}


@vendor_app.command("list")
def list_vendors(vendors: VendorsOption = DEFAULT_VENDORS, as_json: JsonOpt = False) -> None:
    """List the registered vendors."""
    from suture.scheduler.vendor_mirror import load_vendors

    entries = load_vendors(vendors)
    if as_json:
        emit_json([_vendor_json(v) for v in entries.values()])
        return
    table = Table("name", "repository", "authorization server", "instance id", "trust anchors")
    for v in entries.values():
        table.add_row(v.name, v.repository_url, v.as_uri, v.instance_id or "(by key)",
                      str(len(v.trust_anchors)))
    _out.print(table)


def _timestamp(text: str) -> int:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r}: use an ISO 8601 time, e.g. 2026-12-01T22:00:00+00:00",
                       EXIT_USAGE) from None
    if moment.tzinfo is None:
        raise CliError(f"{text!r}: give a timezone (e.g. +00:00)", EXIT_USAGE)
    return int(moment.timestamp())


@vendor_app.command("mirror")
def mirror(
    name: Annotated[str, typer.Argument(help="The vendor (as registered with add).")],
    release: Annotated[str, typer.Argument(help="The release id at the vendor.")],
    devices: Annotated[
        list[str], typer.Option("--device", help="A device of the rollout (repeat).")
    ],
    start: Annotated[str, typer.Option(help="Rollout window start (ISO 8601).")],
    end: Annotated[str, typer.Option(help="Rollout window end (ISO 8601).")],
    config: Annotated[
        Path,
        typer.Option("--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
                     help="Settings file written by `suture scheduler init` (its database)."),
    ] = Path("scheduler.env"),
    database_url: Annotated[
        str | None,
        typer.Option(help="The scheduler's database URL, instead of the settings file's."),
    ] = None,
    vendors: VendorsOption = DEFAULT_VENDORS,
    as_json: JsonOpt = False,
) -> None:
    """Fetch a release with a GNAP token naming the rollout, verify it, import it, as the
    signed-in operator (release_manager; `suture scheduler login`).

    The grant names the release, the devices and the window: the vendor sees and
    bounds what is installed. The token is revoked when the files are fetched.
    The SUIT signature (against the vendor's trust anchors) and every digest are
    verified before anything is imported.

    The release's deltas that the vendor published follow it: each whose source
    release this scheduler holds is fetched, verified and imported; the others are
    skipped. Each is printed (imported, skipped or refused, with the reason).
    """
    import httpx

    from suture.cli.scheduler_auth import signed_in
    from suture.cli.scheduler_cmd import _settings
    from suture.scheduler.db import make_engine, make_session_factory
    from suture.scheduler.services.audit import load_audit_key
    from suture.scheduler.vendor_mirror import MirrorError, load_vendors, mirror_vendor_release

    window_start, window_end = _timestamp(start), _timestamp(end)
    settings = _settings(config)
    entry = load_vendors(vendors).get(name)
    if entry is None:
        raise MirrorError(f"no vendor {name!r} in {vendors} (see: suture scheduler vendor add)")
    engine = make_engine(database_url or settings.database_url)
    try:
        sessions = make_session_factory(engine, audit_key=load_audit_key(settings.audit_key_path))
        with httpx.Client(timeout=30.0) as http, sessions() as session:
            me = signed_in(session, int(datetime.datetime.now(datetime.UTC).timestamp()))
            result, grant = mirror_vendor_release(
                session, http=http, entry=entry, release_id=release, devices=devices,
                window_start=window_start, window_end=window_end, actor=me,
                allow_missing_sbom=settings.allow_releases_without_sbom)
    finally:
        engine.dispose()
    imported = result.release
    if as_json:
        emit_json({"vendor": name, "vendor_release": release, "release": imported.id,
                   "component": imported.component,
                   "sequence_number": imported.sequence_number,
                   "grant_revoked": grant.continue_uri,
                   "deltas": [dataclasses.asdict(d) for d in result.deltas]})
        return
    _out.print(f"imported {release} as release {imported.id} ({imported.component} "
               f"#{imported.sequence_number}); grant {grant.continue_uri} revoked",
               highlight=False, soft_wrap=True)
    for d in result.deltas:
        if d.status == "imported":
            line = (f"delta from {d.source} (release {d.source_release}): imported as delta "
                    f"{d.delta_id}, patch {d.patch_size} B")
        else:
            line = f"delta from {d.source}: {d.status}: {d.reason}"
        _out.print(line, highlight=False, soft_wrap=True, markup=False)


def register_into(scheduler_app: typer.Typer) -> None:
    """Attach `vendor` under the `scheduler` command group, and the vendor's say on rollouts
    (`rollout grant`, `rollout show`, `vendor check`)."""
    from suture.cli.scheduler_grant_cmd import register_into as register_grants

    rollout_app = next((group.typer_instance for group in scheduler_app.registered_groups
                        if group.name == "rollout"), None)
    register_grants(rollout_app, vendor_app)
    scheduler_app.add_typer(vendor_app, name="vendor")
