"""`suture vendor`: the vendor's release repository, GNAP authorization server and biscuits."""

from __future__ import annotations

import datetime
import re
import time
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
_err = Console(stderr=True, soft_wrap=True)

vendor_app = SutureTyper(
    help="The vendor's release repository and GNAP authorization server.",
    no_args_is_help=True,
)
client_app = SutureTyper(
    help="Hospital schedulers allowed to ask for tokens (GNAP clients by reference).",
    no_args_is_help=True,
)
biscuit_app = SutureTyper(
    help="Biscuit tokens for devices that download directly from the vendor.",
    no_args_is_help=True,
)
vendor_app.add_typer(client_app, name="client")
vendor_app.add_typer(biscuit_app, name="biscuit")

DataOption = Annotated[
    Path,
    typer.Option(
        "--data", envvar="SUTURE_VENDOR_DATA",
        help="The vendor's data directory (releases, clients.json, biscuit root key).",
    ),
]
DEFAULT_DATA = Path("vendor-data")
_DURATION = re.compile(r"^(\d+)([smhd])$")


def _duration(text: str) -> datetime.timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise CliError(f"duration {text!r}: use a number and s, m, h or d (e.g. 30d, 10m)",
                       EXIT_USAGE)
    value, unit = int(match.group(1)), match.group(2)
    return datetime.timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86_400}[unit])


@vendor_app.command("serve")
def serve(
    data: DataOption = DEFAULT_DATA,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8700,
    public_url: Annotated[
        str | None,
        typer.Option(help="URL clients use to reach this server (default http://HOST:PORT)."),
    ] = None,
    allow_unregistered: Annotated[
        bool,
        typer.Option(help="Also grant (small) rollouts to clients that present an unknown key."),
    ] = False,
    token_lifetime: Annotated[
        int, typer.Option(help="Seconds an access token lives (clients rotate before).")
    ] = 300,
    introspection_cache: Annotated[
        float,
        typer.Option(help="Seconds the repository keeps an introspection answer (0: never)."),
    ] = 10.0,
) -> None:
    """Run the GNAP authorization server (/gnap) and the release repository
    (/releases/).

    Every request must be signed (HTTP Message Signatures, RFC 9421); a request
    without a token gets 401 with WWW-Authenticate: GNAP as_uri=... naming this
    server's grant endpoint.
    """
    import uvicorn

    from suture.vendor_services.app import create_app
    from suture.vendor_services.settings import VendorSettings

    settings = VendorSettings(
        data_dir=data,
        public_url=public_url or f"http://{host}:{port}",
        allow_unregistered_clients=allow_unregistered,
        token_lifetime_seconds=token_lifetime,
        introspection_cache_seconds=introspection_cache,
    )
    data.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    _out.print(f"vendor services on {settings.public_url} (grant endpoint "
               f"{settings.grant_endpoint}, repository {settings.releases_url})",
               highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="info")


@vendor_app.command("publish")
def publish(
    release_id: Annotated[str, typer.Argument(help="Release id, e.g. pump-app-2.4.1.")],
    description: Annotated[
        Path, typer.Option(help="SUIT description file (.toml, .yaml, .json); see docs/suit.md.")
    ],
    key: Annotated[Path, typer.Option(help="The vendor's signing key (PEM) for the envelope.")],
    sbom: Annotated[Path, typer.Option(help="Software bill of materials (CycloneDX JSON).")],
    notes: Annotated[Path, typer.Option(help="Release notes (Markdown).")],
    payload: Annotated[
        Path | None,
        typer.Option(help="The payload file (default: the description's single component)."),
    ] = None,
    metadata: Annotated[
        Path | None,
        typer.Option(help="The vendor's release metadata (JSON: device classes, requirements, "
                          "pass-through versions, criticality; see docs/vendor.md)."),
    ] = None,
    delta_from: Annotated[
        list[str] | None,
        typer.Option("--delta-from", metavar="RELEASE_ID",
                     help="An earlier published release of the same component to build a "
                          "signed delta from, published with this one (repeat)."),
    ] = None,
    data: DataOption = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Sign, verify and add a release to the repository.

    The SUIT envelope is built from the description and signed with the vendor
    key, then verified before anything is written. Releases are immutable: an id
    is published once.

    With --delta-from, a patch from each named release's image to this one is
    built, applied to check it, and its SUIT envelope (this release's sequence
    number and image, the source's digest as a condition) signed with the same
    key; the deltas are published with the release, or nothing is: an unknown
    source, one of another component, vendor or class, or one not earlier is
    refused.
    """
    from suture.cli.vendor_policy_cmd import read_metadata
    from suture.keys import load_private_key
    from suture.vendor_services.repository.publish import ReleaseFiles, publish_release
    from suture.vendor_services.repository.store import ReleaseStore
    from suture.vendor_services.settings import VendorSettings

    private = load_private_key(key)
    store = ReleaseStore(VendorSettings(data_dir=data).releases_dir)
    meta = publish_release(
        store, release_id, ReleaseFiles(description, sbom, notes, payload), private,
        published_at=int(time.time()),
        metadata=read_metadata(metadata) if metadata is not None else None,
        delta_from=delta_from or (),
    )
    if as_json:
        emit_json(meta)
        return
    table = Table("artefact", "size", "sha256", title=f"published {release_id}")
    for name, entry in meta["artefacts"].items():
        table.add_row(name, str(entry["size"]), entry["sha256"])
    full = meta["artefacts"]["payload"]["size"]
    for source, delta in meta.get("deltas", {}).items():
        for name in ("envelope", "patch"):
            table.add_row(f"delta from {source}: {name}", str(delta[name]["size"]),
                          delta[name]["sha256"])
    _out.print(table)
    for source, delta in meta.get("deltas", {}).items():
        _out.print(f"delta from {source}: patch {delta['patch']['size']} B of {full} B "
                   f"({100 * delta['patch']['size'] / full:.1f}%)", highlight=False,
                   soft_wrap=True)


@vendor_app.command("releases")
def releases(data: DataOption = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """List the published releases."""
    from suture.vendor_services.repository.store import ReleaseStore
    from suture.vendor_services.settings import VendorSettings

    store = ReleaseStore(VendorSettings(data_dir=data).releases_dir)
    metas = [store.metadata(release_id) for release_id in store.list()]
    if as_json:
        emit_json(metas)
        return
    for release_id, meta in zip(store.list(), metas, strict=True):
        size = meta["artefacts"]["payload"]["size"]
        deltas = ", ".join(f"from {s} {d['patch']['size']} B"
                           for s, d in meta.get("deltas", {}).items())
        _out.print(f"{release_id}  payload {size} B" + (f"  deltas {deltas}" if deltas else ""),
                   highlight=False, soft_wrap=True)


@client_app.command("add")
def client_add(
    instance_id: Annotated[str, typer.Argument(help="The client's instance id (its name here).")],
    key: Annotated[
        Path, typer.Option(help="The scheduler's GNAP client public key (PEM, e.g. *.pub.pem).")
    ],
    name: Annotated[str, typer.Option(help="Who this is, for people.")] = "",
    releases: Annotated[
        list[str] | None,
        typer.Option("--release", help="Release ids it may fetch (shell patterns; repeat)."),
    ] = None,
    max_devices: Annotated[int, typer.Option(help="Most devices in one rollout.")] = 1000,
    max_window: Annotated[str, typer.Option(help="Longest rollout window, e.g. 14d.")] = "14d",
    hospitals: Annotated[
        list[str] | None,
        typer.Option("--hospital", help="A hospital (tenant) this scheduler, run by the vendor, "
                     "plans rollouts for; its rollouts are judged by that hospital's policy "
                     "(repeat)."),
    ] = None,
    data: DataOption = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Register a hospital's scheduler as a GNAP client.

    Records its key, the releases it may fetch and the bounds of the rollouts it
    may ask for. It then identifies itself by INSTANCE_ID (RFC 9635 §2.3.1).
    A scheduler the vendor runs for several hospitals names them with --hospital.
    """
    from suture.vendor_services.gnap.clients import RegisteredClient, Registry
    from suture.vendor_services.httpsig import load_public_pem, public_jwk
    from suture.vendor_services.settings import VendorSettings

    public = load_public_pem(key.read_bytes())
    registry = Registry.load(VendorSettings(data_dir=data).registry_path)
    client = RegisteredClient(
        instance_id=instance_id, jwk=public_jwk(public), name=name,
        releases=releases or ["*"], max_devices=max_devices,
        max_window_seconds=int(_duration(max_window).total_seconds()),
        hospitals=list(hospitals or []),
    )
    registry.add_client(client)
    if as_json:
        emit_json(_client_json(client))
        return
    _out.print(f"registered client {instance_id} (key id {public_jwk(public)['kid']})",
               highlight=False, soft_wrap=True)


def _client_json(client: Any) -> dict[str, object]:
    return {"instance_id": client.instance_id, "name": client.name,
            "releases": list(client.releases), "max_devices": client.max_devices,
            "max_window_seconds": client.max_window_seconds, "key_id": client.kid,
            "hospitals": list(client.hospitals)}


@client_app.command("list")
def client_list(data: DataOption = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """List the registered clients and their bounds."""
    from suture.vendor_services.gnap.clients import Registry
    from suture.vendor_services.settings import VendorSettings

    registry = Registry.load(VendorSettings(data_dir=data).registry_path)
    if as_json:
        emit_json([_client_json(c) for c in registry.clients.values()])
        return
    table = Table("instance id", "name", "releases", "max devices", "max window", "key id")
    for c in registry.clients.values():
        table.add_row(c.instance_id, c.name, " ".join(c.releases), str(c.max_devices),
                      f"{c.max_window_seconds // 86_400} d", c.kid)
    _out.print(table)


@client_app.command("remove")
def client_remove(
    instance_id: Annotated[str, typer.Argument(help="The client to forget.")],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Forget a client and end its access at once.

    Its grants and tokens are revoked: continuing a grant, rotating a token
    and fetching with one are refused from now on, even by a running server;
    its next grant request is refused (invalid_client).
    """
    import sqlite3

    from suture.vendor_services.gnap.clients import Registry
    from suture.vendor_services.gnap.grants import GrantStore
    from suture.vendor_services.settings import VendorSettings
    from suture.vendor_services.statedb import StateDb, StateDbError

    settings = VendorSettings(data_dir=data)
    Registry.load(settings.registry_path).remove_client(instance_id)
    state = StateDb(settings.state_path)
    try:
        revoked = GrantStore(state).revoke_client(instance_id)
    except sqlite3.Error as e:
        raise StateDbError(f"{settings.state_path}: {e}") from None
    finally:
        state.close()
    _out.print(f"removed client {instance_id}; {revoked} grant{'' if revoked == 1 else 's'} "
               "revoked", highlight=False, soft_wrap=True)


@biscuit_app.command("keygen")
def biscuit_keygen(
    data: DataOption = DEFAULT_DATA,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing root key (every biscuit it signed stops working)."
    )] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create the Ed25519 root key that signs device biscuits (enables direct download)."""
    from suture.vendor_services import biscuits
    from suture.vendor_services.settings import VendorSettings

    path = VendorSettings(data_dir=data).biscuit_root_path
    if path.exists() and not force:
        raise CliError(f"{path} exists (use --force to replace it and invalidate every biscuit)")
    biscuits.generate_root_key(path)
    public = biscuits.load_root_key(path).public_key.to_bytes().hex()
    if as_json:
        emit_json({"root_key": str(path), "public_key": public})
        return
    _out.print(f"biscuit root key {path}\npublic key {public}", highlight=False, soft_wrap=True)


@biscuit_app.command("issue")
def biscuit_issue(
    device: Annotated[str, typer.Argument(help="The device id the biscuit is for.")],
    releases: Annotated[
        list[str], typer.Option("--release", help="A release it may fetch (repeat).")
    ],
    expires_in: Annotated[str, typer.Option(help="Lifetime, e.g. 30d.")] = "30d",
    data: DataOption = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Issue a device biscuit for direct download.

    Its authority block holds the device id, the releases it may fetch and an
    expiry check. Prints the token (base64) on stdout and its revocation id on
    stderr.
    """
    from suture.vendor_services import biscuits
    from suture.vendor_services.settings import VendorSettings

    root_path = VendorSettings(data_dir=data).biscuit_root_path
    root = biscuits.load_root_key(root_path)
    expires = datetime.datetime.now(datetime.UTC) + _duration(expires_in)
    token = biscuits.issue(root.private_key, device_id=device, releases=releases,
                           expires=expires)
    if as_json:
        emit_json({"token": token.to_base64(), "device_id": device, "releases": releases,
                   "expires": expires.isoformat(timespec="seconds"),
                   "revocation_id": token.revocation_ids[0]})
        return
    _out.print(token.to_base64(), highlight=False, soft_wrap=True)
    _err.print(f"expires {expires.isoformat(timespec='seconds')}; revocation id "
               f"{token.revocation_ids[0]}", highlight=False, soft_wrap=True)


@biscuit_app.command("attenuate")
def biscuit_attenuate(
    token: Annotated[str, typer.Argument(help="The biscuit (base64) to narrow.")],
    release: Annotated[str | None, typer.Option(help="Allow only this release.")] = None,
    expires_in: Annotated[str | None, typer.Option(help="Expire sooner, e.g. 10m.")] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Narrow a biscuit: one release, a shorter expiry.

    Appends a block of checks. Anyone holding the biscuit can do this; the
    result can never do more than the original.
    """
    from suture.vendor_services import biscuits
    from suture.vendor_services.settings import VendorSettings

    root = biscuits.load_root_key(VendorSettings(data_dir=data).biscuit_root_path)
    parsed = biscuits.parse(token.strip(), root.public_key)
    expires = (
        datetime.datetime.now(datetime.UTC) + _duration(expires_in) if expires_in else None
    )
    narrow = biscuits.attenuate(parsed, release=release, expires=expires)
    _out.print(narrow.to_base64(), highlight=False, soft_wrap=True)
    _err.print(f"revocation id of the new block {narrow.revocation_ids[-1]}",
               highlight=False, soft_wrap=True)


@biscuit_app.command("inspect")
def biscuit_inspect(
    token: Annotated[str, typer.Argument(help="The biscuit (base64).")],
    data: DataOption = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Verify a biscuit against the root key and print its blocks and revocation ids."""
    from suture.vendor_services import biscuits
    from suture.vendor_services.settings import VendorSettings

    root = biscuits.load_root_key(VendorSettings(data_dir=data).biscuit_root_path)
    parsed = biscuits.parse(token.strip(), root.public_key)
    blocks = [
        {"block": i, "source": parsed.block_source(i), "revocation_id": rid}
        for i, rid in enumerate(parsed.revocation_ids)
    ]
    if as_json:
        emit_json(blocks)
        return
    for block in blocks:
        _out.print(f"block {block['block']}  revocation id {block['revocation_id']}",
                   highlight=False)
        for line in str(block["source"]).splitlines():
            _out.print(f"  {line}", highlight=False, markup=False)


@biscuit_app.command("revoke")
def biscuit_revoke(
    revocation_id: Annotated[str, typer.Argument(help="A block's revocation id (hex).")],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Revoke a biscuit block: the repository refuses it and every biscuit derived from it."""
    from suture.vendor_services import biscuits
    from suture.vendor_services.settings import VendorSettings

    biscuits.revoke(VendorSettings(data_dir=data).revoked_biscuits_path, revocation_id)
    _out.print("revoked", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Attach the `vendor` command group to the root app."""
    from suture.cli.vendor_policy_cmd import register_into

    register_into(vendor_app)
    app.add_typer(vendor_app, name="vendor")
