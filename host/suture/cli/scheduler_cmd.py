"""`suture scheduler`: the hospital's scheduler: service, devices, releases, rollouts, audit log.

Commands act on the scheduler's database directly, through the same services, roles and rules
as the HTTP API, as the operator their API token proves (``suture scheduler login``, or
``SUTURE_TOKEN``; ``scheduler_auth.py``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from suture.cli.errors import CliError, SutureTyper, describe, handled
from suture.cli.options import DryRunOpt, YesOpt, confirm, emit_json
from suture.errors import EXIT_FAILED, EXIT_USAGE
from suture.scheduler.authz import Permission, Principal

scheduler_app = SutureTyper(
    help="The hospital's scheduler: service, devices, releases, rollouts, audit log.",
    no_args_is_help=True,
)
device_app = SutureTyper(help="The device registry.", no_args_is_help=True)
release_app = SutureTyper(help="Releases: import (verified), list, show, recall, deltas.",
                          no_args_is_help=True)
rollout_app = SutureTyper(help="Rollouts: plan, approve, start, pause, resume, abort, status.",
                          no_args_is_help=True)
audit_app = SutureTyper(help="The audit log: keyed hash chain, checkpoints, export.",
                        no_args_is_help=True)
operator_app = SutureTyper(help="Operator accounts and their roles (administrators).",
                           no_args_is_help=True)
scheduler_app.add_typer(device_app, name="device")
scheduler_app.add_typer(release_app, name="release")
scheduler_app.add_typer(rollout_app, name="rollout")
scheduler_app.add_typer(audit_app, name="audit")
scheduler_app.add_typer(operator_app, name="operator")

# soft_wrap: a printed line is never broken at the terminal's width, so paths, key ids and
# verdicts stay whole (and greppable); tables and panels still fit the terminal.
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

DEFAULT_CONFIG = Path("scheduler.env")
ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
    help="Settings file written by `suture scheduler init`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str, code: int = EXIT_FAILED) -> CliError:
    """A refusal of the command itself, to raise: the CLI's one handler prints it."""
    return CliError(message, code)


# Every command already runs inside the CLI's one handler (suture.cli.errors); a block in
# `with _errors():` ends there too.
_errors = handled


def _settings(config: Path) -> Any:
    from suture.scheduler.config import load_settings
    from suture.scheduler.errors import ConfigurationError

    if not config.exists() and not any(
            name.startswith("SUTURE_SCHEDULER_") and name != "SUTURE_SCHEDULER_CONFIG"
            for name in os.environ):
        raise ConfigurationError(
            f"no scheduler here: {config.resolve()} does not exist; run the command in the "
            "folder where `suture scheduler init` ran, or give --config (or "
            "SUTURE_SCHEDULER_CONFIG)")
    try:
        return load_settings(config if config.exists() else None)
    except ValueError as exc:  # load_settings: a line it cannot read, a value it refuses
        found = describe(exc)
        raise ConfigurationError(found[0] if found else str(exc)) from None


def _sessions(config: Path) -> tuple[Any, sessionmaker[Session]]:
    from suture.scheduler.db import make_engine, make_session_factory
    from suture.scheduler.services.audit import load_audit_key

    settings = _settings(config)
    return settings, make_session_factory(make_engine(settings.database_url, pool_size=2),
                                          audit_key=load_audit_key(settings.audit_key_path))


def _run(config: Path, need: Permission | None,
         fn: Callable[[Any, Session, Principal], T]) -> T:
    """Sign in with the command's token (``scheduler_auth.py``), check ``need`` (None: any
    signed-in operator), then ``fn(settings, session, operator)``."""
    from suture.cli.scheduler_auth import signed_in
    from suture.scheduler.authz import require

    with _errors():
        settings, sessions = _sessions(config)
        with sessions() as session:
            me = signed_in(session, _now())
            if need is not None:
                require(me, need)
            return fn(settings, session, me)


def _now() -> int:
    return int(time.time())


def _when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# --- service ---------------------------------------------------------------------------------

@scheduler_app.command()
def init(
    config: ConfigOpt = DEFAULT_CONFIG,
    database: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL (default: sqlite:///scheduler.db beside the settings file; "
        "postgresql+psycopg://... for several nodes).")] = None,
    key: Annotated[Path | None, typer.Option(
        help="Signing key file to create (default: scheduler-key.pem beside the settings).")
    ] = None,
    trust_anchor: Annotated[list[Path] | None, typer.Option(
        help="A vendor's public key (PEM) that releases must verify against; repeatable.")
    ] = None,
    public_url: Annotated[str | None, typer.Option(
        help="Where devices reach the scheduler (default http://127.0.0.1:8640).")] = None,
    admin: Annotated[str | None, typer.Option(
        help="Create this administrator account (only while there is no active one); it asks "
        "for a password.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        help="Read the administrator's password from the first line of stdin.")] = False,
) -> None:
    """Create the database (or upgrade it), the ES256 signing key, the device root secret, the
    audit key and the settings file. Safe to run again: existing keys and secrets are kept."""
    from suture.keys import (
        generate_private_key,
        key_id,
        load_private_key,
        load_public_key,
        public_key_path,
        write_key_pair,
    )
    from suture.scheduler import migrate
    from suture.scheduler.config import load_settings, read_config_file, write_config_file
    from suture.scheduler.db import make_engine, make_session_factory

    with _errors():
        base = config.resolve().parent
        base.mkdir(parents=True, exist_ok=True)
        existing = read_config_file(config) if config.exists() else {}
        values: dict[str, object] = dict(existing)
        values.setdefault("environment", "production")
        if database is not None:
            values["database_url"] = database
        values.setdefault("database_url", f"sqlite:///{base / 'scheduler.db'}")
        if key is not None:
            values["signing_key_path"] = str(key)
        values.setdefault("signing_key_path", str(base / "scheduler-key.pem"))
        values.setdefault("device_root_secret", secrets.token_hex(32))
        if trust_anchor:
            values["trust_anchor_paths"] = [str(p.resolve()) for p in trust_anchor]
        if public_url is not None:
            values["public_url"] = public_url
        values.setdefault("public_url", "http://127.0.0.1:8640")
        values.setdefault("audit_key_path", str(base / "audit-key.json"))
        values.setdefault("audit_checkpoint_path", str(base / "audit-checkpoints.jsonl"))
        # everything is checked before anything is written: a failed init leaves no settings
        try:
            settings = load_settings(None, **values)
        except ValueError as exc:
            found = describe(exc)
            raise CliError(found[0] if found else str(exc), EXIT_USAGE) from None
        for anchor in settings.trust_anchor_paths:
            load_public_key(anchor)
        engine = make_engine(settings.database_url, pool_size=2)
        migrate.upgrade(engine)
        revision = migrate.current_revision(engine)
        key_path = Path(str(values["signing_key_path"]))
        if key_path.exists():
            signing = load_private_key(key_path)
            _out.print(f"signing key  {key_path} (kept)", highlight=False)
        else:
            signing = generate_private_key("ES256")
            write_key_pair(signing, key_path)
            _out.print(f"signing key  {key_path} (new, ES256)", highlight=False)
        write_config_file(config, values)
        _out.print(f"database     {settings.database_url} (schema {revision})", highlight=False)
        audit_key = _ensure_audit_key(settings.audit_key_path,
                                      make_session_factory(engine)())
        _out.print(f"settings     {config} (mode 0600: holds the device root secret)",
                   highlight=False)
        _out.print(f"key id       {key_id(signing.public_key()).hex()}", highlight=False)
        _out.print(f"devices verify schedules with {public_key_path(key_path)}", highlight=False)
        _out.print(f"devices poll {settings.public_url}", highlight=False)
        if _is_loopback_url(settings.public_url):
            _out.print("  (only this machine reaches it: for devices on the network, run init "
                       "again with --public-url http://THIS-HOST:8640)", highlight=False)
        if admin:
            from suture.cli.scheduler_operator_cmd import read_new_password
            from suture.scheduler.services import operators

            password = read_new_password(password_stdin)
            with make_session_factory(engine, audit_key=audit_key)() as session:
                operators.bootstrap_administrator(session, name=admin, password=password,
                                                  now=_now())
            _out.print(f"administrator {admin} (sign in: suture scheduler login {admin})",
                       highlight=False)


def _is_loopback_url(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ensure_audit_key(path: Path, session: Session) -> Any:
    """The audit key file, made (mode 0600) when missing: it covers the records from the next
    one on; the checkpoint verification key goes beside it."""
    from suture.scheduler.services import audit

    if path.exists():
        key = audit.load_audit_key(path)
        _out.print(f"audit key    {path} (kept; checkpoint key {key.key_id})", highlight=False)
        return key
    seq, _ = audit.head(session)
    key = audit.AuditKey.generate(keyed_from_seq=seq + 1)
    audit.write_audit_key(path, key)
    public = path.with_name(path.stem + ".checkpoint.pub.pem")
    audit.write_checkpoint_public_key(public, key)
    _out.print(f"audit key    {path} (new, mode 0600: keep it off the database's storage; "
               f"auditors verify checkpoints with {public})", highlight=False)
    return key


@scheduler_app.command()
def serve(
    config: ConfigOpt = DEFAULT_CONFIG,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8640,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    tls_cert: Annotated[Path | None, typer.Option(
        help="Serve HTTPS with this certificate chain (PEM; the CA devices pin signs it).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(
        help="The private key of --tls-cert (PEM).")] = None,
) -> None:
    """Run the scheduler's HTTP service (device API, operator API, OpenAPI at /docs); with
    --tls-cert and --tls-key, over HTTPS (the public URL must then be https://)."""
    import uvicorn

    from suture.scheduler.api.app import create_app
    from suture.scheduler.api.asgi import settle_heap

    with _errors():
        settings = _settings(config)
        if (tls_cert is None) != (tls_key is None):
            raise CliError("--tls-cert and --tls-key go together", EXIT_USAGE)
        for given in (tls_cert, tls_key):
            if given is not None and not given.is_file():
                raise CliError(f"{given}: no such file", EXIT_USAGE)
        if tls_cert is not None and not settings.public_url.startswith("https://"):
            raise CliError(
                f"the service would speak HTTPS while devices are told {settings.public_url}: "
                "set `suture scheduler init --public-url https://THIS-HOST:PORT`", EXIT_USAGE)
        if _is_loopback_url(settings.public_url) and not _is_loopback_url(f"http://{host}"):
            raise CliError(
                f"devices would be told to poll {settings.public_url}, which only this machine "
                f"reaches, while the service listens on {host}: set the address devices use "
                "with `suture scheduler init --public-url http://THIS-HOST:8640`", EXIT_USAGE)
        app = create_app(settings, config_path=config if config.exists() else None)
        settle_heap()
    scheme = "https" if tls_cert is not None else "http"
    _out.print(f"scheduler on {scheme}://{host}:{port} (OpenAPI: /openapi.json, docs: /docs)",
               highlight=False)
    uvicorn.run(app, host=host, port=port, workers=workers, log_level="info",
                ssl_certfile=str(tls_cert) if tls_cert is not None else None,
                ssl_keyfile=str(tls_key) if tls_key is not None else None)


# --- devices ---------------------------------------------------------------------------------

def _parse_installed(items: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items or []:
        name, sep, version = item.partition("=")
        if not sep or not version.isdigit():
            raise CliError(f"--installed {item!r}: expected COMPONENT=VERSION, e.g. app=3",
                           EXIT_USAGE)
        out[name] = int(version)
    return out


@device_app.command("add")
def device_add(
    device_id: Annotated[str, typer.Argument(help="Device id (letters, digits, . _ -).")],
    board: Annotated[str, typer.Option(help="Board name (boards/<board>).")],
    vendor_id: Annotated[str, typer.Option(help="SUIT vendor id (UUID).")],
    class_id: Annotated[str, typer.Option(help="SUIT class id (UUID).")],
    ward: Annotated[str, typer.Option(help="Ward.")] = "",
    location: Annotated[str, typer.Option(help="Room, bed ...")] = "",
    criticality: Annotated[int, typer.Option(
        min=1, max=4, help="1 low, 2 medium, 3 high, 4 critical (two-person approval).")] = 2,
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeatable.")] = None,
    group: Annotated[list[str] | None, typer.Option(help="A group; repeatable.")] = None,
    installed: Annotated[list[str] | None, typer.Option(
        help="COMPONENT=VERSION at provisioning; repeatable.")] = None,
    secret_out: Annotated[Path | None, typer.Option(
        help="Write the device secret (hex) to this file (mode 0600) instead of printing it.")
    ] = None,
    suit_device_id: Annotated[str | None, typer.Option(
        help="SUIT device id (UUID): listed in the device set of the hospital's manifest.")
    ] = None,
    hospital_manifest: Annotated[bool, typer.Option(
        help="Its loader processes the hospital's manifest over the vendor's: its schedules "
             "name the rollout's hospital envelope (docs/formats/suit-extensions.md).")
    ] = False,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """Register a device and issue its credential (the secret is shown once)."""
    from suture.scheduler.schemas import DeviceCreate
    from suture.scheduler.services import devices

    def go(settings: Any, session: Session, me: Principal) -> None:
        create = DeviceCreate(id=device_id, board=board, vendor_id=vendor_id, class_id=class_id,
                              ward=ward, location=location, criticality=criticality,
                              tags=tag or [], groups=group or [],
                              installed=_parse_installed(installed),
                              suit_device_id=suit_device_id,
                              hospital_manifest=hospital_manifest)
        _, cred = devices.add_device(session, create=create,
                                     root_secret=settings.root_secret_bytes(),
                                     actor=me, now=_now())
        if secret_out is not None:
            fd = os.open(secret_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(cred.secret_hex + "\n")
        if as_json:
            emit_json({"id": device_id, "credential_fingerprint": cred.fingerprint,
                       "credential_generation": cred.generation,
                       "secret": None if secret_out is not None else cred.secret_hex,
                       "secret_file": str(secret_out) if secret_out is not None else None})
            return
        _out.print(f"device {device_id} registered; credential fingerprint "
                   f"{cred.fingerprint[:16]}", highlight=False)
        if secret_out is not None:
            _out.print(f"secret written to {secret_out}", highlight=False)
        else:
            _out.print(f"secret {cred.secret_hex}  (shown once: provision it into the device)",
                       highlight=False)

    _run(config, Permission.DEVICE_WRITE, go)


@device_app.command("list")
def device_list(
    group: Annotated[str | None, typer.Option(help="Only this group.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """List registered devices."""
    from suture.scheduler.schemas import DevicePublic
    from suture.scheduler.services import devices

    def go(settings: Any, session: Session, me: Principal) -> None:
        rows, total = devices.list_devices(session, limit=limit, group=group,
                                           tenant=me.tenant)
        if as_json:
            _out.print_json(json.dumps([DevicePublic.model_validate(d).model_dump() for d in rows]))
            return
        table = Table("id", "board", "ward", "crit", "installed", "state", "busy", "last seen",
                      title=f"{total} devices")
        for d in rows:
            table.add_row(d.id, d.board, d.ward, str(d.criticality),
                          " ".join(f"{k}={v}" for k, v in sorted(d.installed.items())),
                          d.state, "yes" if d.busy else "", _when(d.last_seen))
        _out.print(table)

    _run(config, Permission.DEVICE_READ, go)


@device_app.command("show")
def device_show(device_id: str, config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False
                ) -> None:
    """A device's record and its status history."""
    from suture.scheduler.schemas import DeviceDetail, DeviceEventPublic, DevicePublic
    from suture.scheduler.services import devices

    def go(settings: Any, session: Session, me: Principal) -> None:
        d, events = devices.get_device(session, device_id=device_id, tenant=me.tenant)
        detail = DeviceDetail(**DevicePublic.model_validate(d).model_dump(),
                              history=[DeviceEventPublic.model_validate(e) for e in events])
        if as_json:
            _out.print_json(detail.model_dump_json())
            return
        info = Table.grid(padding=(0, 2))
        for name in ("id", "board", "vendor_id", "class_id", "ward", "location", "criticality",
                     "tags", "groups", "installed", "state", "busy", "schedule_number",
                     "credential_generation"):
            info.add_row(name, str(getattr(detail, name)))
        info.add_row("last seen", _when(detail.last_seen))
        _out.print(Panel(info, title=f"device {device_id}"))
        hist = Table("when", "kind", "state", "detail", title="history")
        for e in detail.history:
            hist.add_row(_when(e.at), e.kind, e.state, json.dumps(e.detail)[:100])
        _out.print(hist)

    _run(config, Permission.DEVICE_READ, go)


@device_app.command("rotate")
def device_rotate(
    device_id: str,
    secret_out: Annotated[Path | None, typer.Option(
        help="Write the new secret (hex) to this file (mode 0600) instead of printing it.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Issue a new credential to a device; the old secret stops working at once."""
    from suture.scheduler.services import devices

    cred = _run(config, Permission.DEVICE_CREDENTIAL, lambda s, session, me:
                devices.rotate_credential(session, device_id=device_id,
                                          root_secret=s.root_secret_bytes(), actor=me,
                                          now=_now()))
    _out.print(f"device {device_id}: credential generation {cred.generation}, fingerprint "
               f"{cred.fingerprint[:16]}", highlight=False)
    if secret_out is not None:
        fd = os.open(secret_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(cred.secret_hex + "\n")
        _out.print(f"secret written to {secret_out}", highlight=False)
    else:
        _out.print(f"secret {cred.secret_hex}  (shown once)", highlight=False)


@device_app.command("busy")
def device_busy(
    device_id: str,
    busy: Annotated[bool, typer.Option("--on/--off", help="In clinical use (no install) or not.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Mark a device as in clinical use (nothing is installed until it is released)."""
    from suture.scheduler.schemas import DeviceUpdate
    from suture.scheduler.services import devices

    _run(config, Permission.DEVICE_WRITE, lambda s, session, me: devices.update_device(
        session, device_id=device_id, change=DeviceUpdate(busy=busy), actor=me, now=_now()))
    _out.print(f"device {device_id} {'busy' if busy else 'available'}")


# --- releases --------------------------------------------------------------------------------

def _parse_requires(items: list[str] | None) -> list[Any]:
    from suture.scheduler.schemas import Requirement

    out = []
    for item in items or []:
        name, sep, version = item.partition(">=")
        if not sep or not version.strip().isdigit():
            raise CliError(f"--requires {item!r}: expected COMPONENT>=VERSION, e.g. loader>=3",
                           EXIT_USAGE)
        out.append(Requirement(component=name.strip(), min_version=int(version)))
    return out


@release_app.command("import")
def release_import(
    envelope: Annotated[Path, typer.Argument(help="The SUIT envelope (.suit).")],
    payload: Annotated[Path, typer.Argument(help="The payload the manifest describes.")],
    sbom: Annotated[Path | None, typer.Option(help="CycloneDX SBOM (JSON).")] = None,
    notes: Annotated[Path | None, typer.Option(help="Release notes (text file).")] = None,
    trust_anchor: Annotated[list[Path] | None, typer.Option(
        help="Vendor public key (PEM); default: the settings' trust anchors.")] = None,
    must_pass_through: Annotated[bool, typer.Option(
        help="Devices on older versions must install this release on their way up.")] = False,
    requires: Annotated[list[str] | None, typer.Option(
        help="COMPONENT>=VERSION the device must already run; repeatable.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """Verify a release against the vendor's trust anchor, then store it."""
    from suture.keys import load_public_key
    from suture.scheduler.schemas import ReleasePublic
    from suture.scheduler.services import releases

    def go(settings: Any, session: Session, me: Principal) -> None:
        anchors = [load_public_key(p) for p in (trust_anchor or settings.trust_anchor_paths)]
        rel = releases.import_release(
            session, envelope=envelope.read_bytes(), payload=payload.read_bytes(),
            sbom=sbom.read_bytes() if sbom else None,
            notes=notes.read_text() if notes else None, trust_anchors=anchors,
            actor=me, must_pass_through=must_pass_through,
            requires=_parse_requires(requires), now=_now(),
            allow_missing_sbom=settings.allow_releases_without_sbom)
        if as_json:
            emit_json(ReleasePublic.model_validate(rel).model_dump(mode="json"))
            return
        _out.print(f"release {rel.id}: {rel.component} #{rel.sequence_number} "
                   f"({rel.payload_size} bytes) verified and imported", highlight=False)

    _run(config, Permission.RELEASE_IMPORT, go)


@release_app.command("list")
def release_list(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """List releases."""
    from suture.scheduler.schemas import ReleasePublic
    from suture.scheduler.services import releases

    def go(settings: Any, session: Session, me: Principal) -> None:
        rows = [ReleasePublic.model_validate(r) for r in releases.list_releases(session)]
        if as_json:
            _out.print_json(json.dumps([r.model_dump() for r in rows]))
            return
        table = Table("id", "component", "seq", "size", "must-pass", "requires", "recalled",
                      "imported", title="releases")
        for r in rows:
            table.add_row(str(r.id), r.component, str(r.sequence_number), str(r.payload_size),
                          "yes" if r.must_pass_through else "",
                          ", ".join(f"{q.component}>={q.min_version}" for q in r.requires),
                          "RECALLED" if r.recalled else "", _when(r.imported_at))
        _out.print(table)

    _run(config, Permission.RELEASE_READ, go)


@release_app.command("show")
def release_show(release_id: int, config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False
                 ) -> None:
    """One release in full; --json for every field."""
    from suture.scheduler.schemas import ReleasePublic
    from suture.scheduler.services import releases

    rel = _run(config, Permission.RELEASE_READ, lambda s, session, me:
               ReleasePublic.model_validate(releases.get_release(session,
                                                                 release_id=release_id)))
    fields = rel.model_dump(mode="json")
    if as_json:
        emit_json(fields)
        return
    info = Table.grid(padding=(0, 2))
    for name, value in fields.items():
        shown = _when(value) if name.endswith("_at") and isinstance(value, int) else (
            json.dumps(value) if isinstance(value, list | dict) else str(value))
        info.add_row(name, shown)
    _out.print(Panel(info, title=f"release {release_id}"))


@release_app.command("sbom")
def release_sbom(
    release_id: int,
    against: Annotated[int | None, typer.Option(
        "--against", metavar="RELEASE",
        help="Show what changed from this (earlier) release's SBOM instead.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """The SBOM a release was imported with (the one its signed manifest binds): components
    and licences, or with --against the components added, removed and changed since another
    release."""
    from suture.cli.release_cmd import print_diff, print_sbom
    from suture.scheduler.services.release_sboms import stored_sbom
    from suture.suit.sbom import diff_sboms, diff_summary, sbom_summary

    def go(settings: Any, session: Session, me: Principal) -> Any:
        new = stored_sbom(session, release_id=release_id, actor=me)
        old = stored_sbom(session, release_id=against, actor=me) if against else None
        return new, old

    new, old = _run(config, Permission.RELEASE_READ, go)
    if old is None:
        if as_json:
            emit_json({"release_id": release_id, **sbom_summary(new)})
            return
        print_sbom(new, f"release {release_id}")
        return
    result = diff_sboms(old, new)
    if as_json:
        emit_json({"release_id": release_id, "against": against, **diff_summary(result)})
        return
    print_diff(result)


@release_app.command("update")
def release_update(
    release_id: int,
    must_pass_through: Annotated[bool | None, typer.Option(
        "--must-pass-through/--no-must-pass-through",
        help="Devices on older versions must (or need not) install this release on their way up."
    )] = None,
    requires: Annotated[list[str] | None, typer.Option(
        help="COMPONENT>=VERSION the device must already run; repeatable; replaces the list.")
    ] = None,
    no_requires: Annotated[bool, typer.Option(
        "--no-requires", help="Remove every requirement.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Change a release's place in the version graph: must-pass-through, requirements."""
    from suture.scheduler.schemas import ReleaseUpdate
    from suture.scheduler.services import releases

    def go(settings: Any, session: Session, me: Principal) -> Any:
        change = ReleaseUpdate(must_pass_through=must_pass_through,
                               requires=[] if no_requires else
                               (_parse_requires(requires) if requires else None))
        return releases.update_release(session, release_id=release_id, change=change,
                                       actor=me, now=_now())

    rel = _run(config, Permission.RELEASE_UPDATE, go)
    needs = ", ".join(f"{q['component']}>={q['min_version']}" for q in rel.requires) or "nothing"
    _out.print(f"release {rel.id}: {rel.component} #{rel.sequence_number}; must-pass-through "
               f"{'yes' if rel.must_pass_through else 'no'}; requires {needs}", highlight=False)


@release_app.command("recall")
def release_recall(
    release_id: int,
    revert: Annotated[bool, typer.Option(
        "--revert/--no-revert",
        help="Devices in trial revert (confirmed ones cannot: they keep it).")] = False,
    config: ConfigOpt = DEFAULT_CONFIG, yes: YesOpt = False, dry_run: DryRunOpt = False,
) -> None:
    """Withdraw a release: its rollouts abort and it is never planned again.

    With --revert it asks first (--yes: do not ask; without a terminal nothing is done
    without it); --dry-run says which rollouts would stop and which devices would revert.
    """
    from suture.cli.scheduler_preview import preview_recall
    from suture.scheduler.services import releases

    if dry_run:
        previews = _run(config, Permission.RELEASE_RECALL, lambda s, session, me:
                        preview_recall(session, release_id=release_id, revert=revert))
        _out.print(f"release {release_id} would be recalled: never planned again; "
                   f"{len(previews)} rollout(s) of it would be aborted", highlight=False)
        for preview in previews:
            for line in preview.lines():
                _out.print(line, highlight=False)
        _out.print("dry run: nothing was changed", highlight=False)
        return
    if revert:
        confirm(f"Recall release {release_id} and revert the devices in trial?", yes=yes)
    _run(config, Permission.RELEASE_RECALL, lambda s, session, me: releases.recall_release(
        session, release_id=release_id, revert=revert, actor=me, now=_now()))
    _out.print(f"release {release_id} recalled{' (devices in trial revert)' if revert else ''}")


# --- rollouts --------------------------------------------------------------------------------

def _parse_time(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--deadline {text!r}: use ISO 8601 (2026-03-01T02:00+01:00) or unix "
                         "seconds", EXIT_USAGE) from None
    if parsed.tzinfo is None:
        raise CliError(f"--deadline {text!r}: give a time zone offset", EXIT_USAGE)
    return int(parsed.timestamp())


@rollout_app.command("create")
def rollout_create(
    release: Annotated[int, typer.Option(help="Release id to roll out.")],
    name: Annotated[str, typer.Option(help="A name for operators.")],
    group: Annotated[list[str] | None, typer.Option(help="Target group; repeatable.")] = None,
    filter_: Annotated[str, typer.Option("--filter", help=(
        'Target filter, e.g. \'ward == "ICU" and criticality <= 3\' (docs/scheduler.md).'))
    ] = "",
    waves: Annotated[str, typer.Option(help="Wave sizes: counts or percentages, comma-separated."
                                       )] = "100%",
    order: Annotated[str, typer.Option(help="oldest-first or criticality.")] = "oldest-first",
    success_threshold: Annotated[float, typer.Option(
        help="Fraction of a wave that must succeed before the next opens.")] = 0.9,
    error_threshold: Annotated[float, typer.Option(
        help="Failure fraction that stops the rollout.")] = 0.2,
    min_sample: Annotated[int, typer.Option(
        help="Finished devices needed before the error threshold applies.")] = 5,
    on_error: Annotated[str, typer.Option(help="pause, or abort (and revert).")] = "pause",
    window_cron: Annotated[str | None, typer.Option(
        help="Maintenance window start (cron, 5 fields), e.g. '0 2 * * *'.")] = None,
    window_duration: Annotated[int, typer.Option(help="Window length in seconds.")] = 7200,
    window_tz: Annotated[str, typer.Option(help="Window time zone.")] = "UTC",
    deadline: Annotated[str | None, typer.Option(
        help="After this time the install is forced (ISO 8601 or unix seconds).")] = None,
    download_only: Annotated[bool, typer.Option(help="Stage only; never install.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """Plan a rollout into waves; it then awaits approval."""
    from suture.scheduler.schemas import RolloutCreate, RolloutPublic, WindowSpec
    from suture.scheduler.services import rollouts

    def go(settings: Any, session: Session, me: Principal) -> None:
        spec = RolloutCreate(
            name=name, release_id=release, target_groups=group or [], target_filter=filter_,
            waves=[w.strip() for w in waves.split(",") if w.strip()],
            order=order,  # type: ignore[arg-type]
            success_threshold=success_threshold, error_threshold=error_threshold,
            error_min_sample=min_sample, on_error=on_error,  # type: ignore[arg-type]
            window=WindowSpec(cron=window_cron, duration_s=window_duration, tz=window_tz)
            if window_cron else None,
            deadline=_parse_time(deadline), download_only=download_only)
        ro = rollouts.create_rollout(session, spec=spec, actor=me, now=_now())
        if as_json:
            emit_json(RolloutPublic.model_validate(ro).model_dump(mode="json"))
            return
        _out.print(f"rollout {ro.id}: {ro.target_count} devices in {ro.wave_count} waves; "
                   f"needs {ro.required_approvals} approval(s)", highlight=False)
        _print_held(rollouts.rollout_status(session, rollout_id=ro.id, tenant=me.tenant))

    _run(config, Permission.ROLLOUT_PLAN, go)


ReasonOpt = Annotated[str, typer.Option(
    "--reason", help="Why (kept with the decision and in the audit log; at most 1000 "
                     "characters).")]


def _rollout_decision(rollout_id: int, config: Path, as_json: bool,
                      call: Callable[..., Any], reason: str) -> None:
    from suture.scheduler.services import rollouts

    def go(settings: Any, session: Session, me: Principal) -> Any:
        ro = call(session, rollout_id=rollout_id, actor=me, now=_now(), reason=reason)
        return ro.state, rollouts.rollout_status(session, rollout_id=rollout_id, tenant=me.tenant)

    state, status = _run(config, Permission.ROLLOUT_APPROVE, go)
    if as_json:
        emit_json(status.rollout.model_dump(mode="json"))
        return
    _out.print(f"rollout {rollout_id}: {state}; {len(status.rollout.approvals)} approval(s) of "
               f"{status.rollout.required_approvals}"
               + ("; denied" if status.rollout.denied else ""), highlight=False)


@rollout_app.command("approve")
def rollout_approve(rollout_id: Annotated[int, typer.Argument(help="Rollout id.")],
                    reason: ReasonOpt = "", config: ConfigOpt = DEFAULT_CONFIG,
                    as_json: JsonOpt = False) -> None:
    """Approve a rollout (two distinct approvers, not its authors, for critical devices).

    Refused while a denial of the rollout stands (change it, which clears the denial)."""
    from suture.scheduler.services import rollouts

    _rollout_decision(rollout_id, config, as_json, rollouts.approve_rollout, reason)


@rollout_app.command("deny")
def rollout_deny(rollout_id: Annotated[int, typer.Argument(help="Rollout id.")],
                 reason: ReasonOpt, config: ConfigOpt = DEFAULT_CONFIG,
                 as_json: JsonOpt = False) -> None:
    """Deny a rollout, saying why (--reason is required).

    The same approvers as for an approval may deny. Until the rollout is changed (which
    clears the denial) or aborted, it is neither approved further nor started."""
    from suture.scheduler.services import rollouts

    _rollout_decision(rollout_id, config, as_json, rollouts.deny_rollout, reason)


def _rollout_action(verb: str, call: Callable[..., Any], **extra: Any) -> Callable[..., None]:
    need = Permission.ROLLOUT_OPERATE

    def command(rollout_id: Annotated[int, typer.Argument(help="Rollout id.")],
                config: ConfigOpt = DEFAULT_CONFIG) -> None:
        from suture.scheduler.services import rollouts

        def go(settings: Any, session: Session, me: Principal) -> Any:
            ro = call(session, rollout_id=rollout_id, actor=me, now=_now(), **extra)
            return ro.state, rollouts.rollout_status(session, rollout_id=rollout_id,
                                                     tenant=me.tenant)

        state, status = _run(config, need, go)
        _out.print(f"rollout {rollout_id}: {state}", highlight=False)
        if verb in ("start", "resume"):
            _print_held(status)

    command.__doc__ = {
        "start": "Start an approved rollout.",
        "pause": "Pause a running rollout: nothing new starts; trials finish.",
        "resume": "Resume a paused rollout.",
    }[verb]
    return command


def _register_rollout_actions() -> None:
    from suture.scheduler.services import rollouts

    for verb, call in (("start", rollouts.start_rollout),
                       ("pause", rollouts.pause_rollout), ("resume", rollouts.resume_rollout)):
        rollout_app.command(verb)(_rollout_action(verb, call))


@rollout_app.command("abort")
def rollout_abort(
    rollout_id: int,
    revert: Annotated[bool, typer.Option(
        "--revert/--no-revert",
        help="Devices in trial revert; refused if a device confirmed the release.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG, yes: YesOpt = False, dry_run: DryRunOpt = False,
) -> None:
    """Abort a rollout; with --revert, the devices in trial go back.

    A device that confirmed the release has no backup to go back to: --revert is
    refused while any has (abort without it, and roll out a fixed release).
    With --revert it asks first (--yes: do not ask; without a terminal nothing is
    done without it); --dry-run says which devices would revert, keep the release
    or drop what they staged, and whether the scheduler would refuse.
    """
    from suture.cli.scheduler_preview import preview_abort
    from suture.scheduler.services import rollouts

    if dry_run:
        preview = _run(config, Permission.ROLLOUT_OPERATE, lambda s, session, me:
                       preview_abort(session, rollout_id=rollout_id, revert=revert))
        for line in preview.lines():
            _out.print(line, highlight=False)
        _out.print("dry run: nothing was changed", highlight=False)
        return
    if revert:
        confirm(f"Abort rollout {rollout_id} and revert its devices in trial?", yes=yes)

    ro = _run(config, Permission.ROLLOUT_OPERATE, lambda s, session, me: rollouts.abort_rollout(
        session, rollout_id=rollout_id, revert=revert, actor=me, now=_now()))
    _out.print(f"rollout {rollout_id}: {ro.state}{' (reverting)' if revert else ''}")


@rollout_app.command("list")
def rollout_list(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """List rollouts."""
    from suture.scheduler.schemas import RolloutPublic
    from suture.scheduler.services import rollouts

    rows = _run(config, Permission.ROLLOUT_READ,
                lambda s, session, me: [RolloutPublic.model_validate(r)
                                        for r in rollouts.list_rollouts(session, tenant=me.tenant)])
    if as_json:
        emit_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table("id", "name", "release", "state", "wave", "targets", "approvals", "reason",
                  title="rollouts")
    for r in rows:
        table.add_row(str(r.id), r.name, str(r.release_id), r.state,
                      f"{r.current_wave + 1}/{r.wave_count}", str(r.target_count),
                      f"{len(r.approvals)}/{r.required_approvals}", r.status_reason)
    _out.print(table)


def _print_held(status: Any) -> None:
    """Say which devices the rollout holds, and why (a requirement no release meets yet)."""
    held = status.totals.get("blocked", 0)
    if not held:
        return
    _out.print(f"{held} device(s) held until their requirements can be met:", highlight=False)
    for h in status.blocked[:10]:
        _out.print(f"  {h.device_id}: {h.reason}", highlight=False, soft_wrap=True)
    if held > 10:
        _out.print(f"  ... ({held - 10} more: suture scheduler rollout status "
                   f"{status.rollout.id})", highlight=False)


def held_table(status: Any) -> Table:
    """The held devices of a rollout status, one row each with its reason."""
    table = Table("device", "wave", "held because",
                  title=f"held: {status.totals.get('blocked', 0)} device(s)")
    for h in status.blocked:
        table.add_row(h.device_id, str(h.wave + 1), h.reason)
    return table


def render_status(status: Any) -> Group:
    """The rollout status view: header, one progress bar per wave, totals."""
    ro = status.rollout
    head = Table.grid(padding=(0, 2))
    head.add_row("state", f"[bold]{ro.state}[/bold]  {ro.status_reason}")
    head.add_row("release", str(ro.release_id))
    head.add_row("wave", f"{ro.current_wave + 1} of {ro.wave_count}")
    head.add_row("approvals", f"{', '.join(ro.approvals) or '-'} "
                              f"({len(ro.approvals)}/{ro.required_approvals})")
    head.add_row("thresholds", f"success {ro.success_threshold:.0%}, error "
                               f"{ro.error_threshold:.0%} after {ro.error_min_sample}")
    if ro.window_cron:
        head.add_row("window", f"{ro.window_cron} for {ro.window_duration_s}s ({ro.window_tz})")
    if ro.deadline:
        head.add_row("deadline", _when(ro.deadline))
    waves = Table("wave", "progress", "size", "succeeded", "failed", "in flight", "states")
    for w in status.waves:
        ok = w.states.get("succeeded", 0)
        bad = w.states.get("failed", 0) + w.states.get("reverted", 0)
        flight = sum(v for k, v in w.states.items()
                     if k in ("downloading", "staged", "installing", "trial", "reverting"))
        marker = "▶ " if w.wave == ro.current_wave and ro.state == "running" else ""
        waves.add_row(f"{marker}{w.wave + 1}", ProgressBar(total=max(1, w.size), completed=ok,
                                                           width=30),
                      str(w.size), str(ok), str(bad), str(flight),
                      " ".join(f"{k}={v}" for k, v in sorted(w.states.items())))
    parts: list[Any] = [Panel(head, title=f"rollout {ro.id}: {ro.name}"), waves]
    if status.blocked:
        parts.append(held_table(status))
    return Group(*parts)


@rollout_app.command("status")
def rollout_status(
    rollout_id: int,
    watch: Annotated[bool, typer.Option(help="Live view until the rollout ends (Ctrl-C stops).")
                     ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    max_seconds: Annotated[float, typer.Option(help="Stop watching after this long.")
                           ] = 24 * 3600.0,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """Progress of a rollout per wave; --watch keeps a live view."""
    from suture.scheduler.services import rollouts

    def fetch() -> Any:
        return _run(config, Permission.ROLLOUT_READ, lambda s, session, me:
                    rollouts.rollout_status(session, rollout_id=rollout_id, tenant=me.tenant))

    status = fetch()
    if as_json:
        _out.print_json(status.model_dump_json())
        return
    if not watch:
        _out.print(render_status(status))
        return
    deadline = time.monotonic() + max_seconds
    try:
        with Live(render_status(status), console=_out, refresh_per_second=4) as live:
            while status.rollout.state not in ("completed", "aborted") and \
                    time.monotonic() < deadline:
                time.sleep(interval)
                status = fetch()
                live.update(render_status(status))
    except KeyboardInterrupt:
        pass


# --- audit, operators ------------------------------------------------------------------------

@audit_app.command("verify")
def audit_verify(
    config: ConfigOpt = DEFAULT_CONFIG,
    checkpoints: Annotated[list[Path] | None, typer.Option(
        "--checkpoints", help="A checkpoint file or JSON-lines export kept outside the "
        "database (signed checkpoints); repeatable.")] = None,
    checkpoint_key: Annotated[Path | None, typer.Option(
        help="The checkpoint verification key (PEM); default: the audit key's.")] = None,
) -> None:
    """Recompute the audit log's hash chain and MACs, check the head and every checkpoint
    given; exit 1 at the first record that does not verify."""
    from suture.scheduler.services import audit

    def go(settings: Any, session: Session, me: Principal) -> Any:
        found = [cp for path in checkpoints or [] for cp in audit.parse_checkpoints(
            path.read_text().splitlines(), source=str(path))]
        public = None
        if checkpoint_key is not None:
            from cryptography.hazmat.primitives.asymmetric import ed25519
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            loaded = load_pem_public_key(checkpoint_key.read_bytes())
            if not isinstance(loaded, ed25519.Ed25519PublicKey):
                raise ValueError(f"{checkpoint_key}: not an Ed25519 public key")
            public = loaded
        return audit.verify(session, checkpoints=found, checkpoint_key=public)

    result = _run(config, Permission.AUDIT_READ, go)
    if result.ok:
        extra = f", {result.checkpoints} checkpoint(s) match" if result.checkpoints else ""
        _out.print(f"audit log intact: {result.records} records{extra}", highlight=False)
        return
    raise _fail(f"audit log broken at record {result.first_bad_seq}: {result.reason} "
                f"({result.records} records verified before it)")


@audit_app.command("list")
def audit_list(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
               config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """The latest audit records."""
    from suture.scheduler.schemas import AuditRecordPublic
    from suture.scheduler.services import audit

    rows = _run(config, Permission.AUDIT_READ,
                lambda s, session, me: audit.recent(session, limit=limit))
    if as_json:
        emit_json([AuditRecordPublic.model_validate(r).model_dump(mode="json") for r in rows])
        return
    table = Table("seq", "when", "actor", "action", "subject", "detail", title="audit log")
    for r in rows:
        table.add_row(str(r.seq), _when(r.at), r.actor, r.action, r.subject, r.detail[:80])
    _out.print(table)


_register_rollout_actions()
__import__("suture.cli.scheduler_vendor_cmd", fromlist=["_"]).register_into(scheduler_app)
__import__("suture.cli.scheduler_backup_cmd", fromlist=["_"]).register_into(scheduler_app)
__import__("suture.cli.scheduler_trust_cmd", fromlist=["_"]).register_into(scheduler_app)
__import__("suture.cli.scheduler_ddi_cmd", fromlist=["_"]).register_into(scheduler_app)
__import__("suture.cli.scheduler_tenant_cmd", fromlist=["_"]).register_into(scheduler_app)
__import__("suture.cli.scheduler_suit_report_cmd", fromlist=["_"]).register_into(device_app)
__import__("suture.cli.scheduler_delta_cmd", fromlist=["_"]).register_into(release_app)
__import__("suture.cli.scheduler_operator_cmd", fromlist=["_"]).register_into(
    scheduler_app, operator=operator_app, device=device_app, rollout=rollout_app,
    audit=audit_app)


def register(app: typer.Typer) -> None:
    """Attach the `scheduler` command group to the root app."""
    app.add_typer(scheduler_app, name="scheduler")
