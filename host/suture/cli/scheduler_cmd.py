"""`suture scheduler`: the hospital's scheduler: service, devices, releases, rollouts, audit log.

Commands act on the scheduler's database directly (through the same services as the HTTP API),
as the operator named by ``--as`` (default: ``$SUTURE_OPERATOR`` or the login name).
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

scheduler_app = typer.Typer(
    help="The hospital's scheduler: service, devices, releases, rollouts, audit log.",
    no_args_is_help=True,
)
device_app = typer.Typer(help="The device registry.", no_args_is_help=True)
release_app = typer.Typer(help="Releases: import (verified), list, show, recall.",
                          no_args_is_help=True)
rollout_app = typer.Typer(help="Rollouts: plan, approve, start, pause, resume, abort, status.",
                          no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
operator_app = typer.Typer(help="Operators of the HTTP API.", no_args_is_help=True)
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
ActorOpt = Annotated[str | None, typer.Option(
    "--as", envvar="SUTURE_OPERATOR", help="Operator name recorded in the audit log "
    "(default: the login name).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn every expected failure into one clear line and a non-zero exit code."""
    from suture.keys import KeyFileError
    from suture.scheduler.errors import SchedulerError

    try:
        yield
    except SchedulerError as exc:
        raise _fail(str(exc)) from None
    except KeyFileError as exc:
        raise _fail(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise _fail(f"{where}: {first.get('msg')}" if where else str(first.get("msg"))) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None


def _settings(config: Path) -> Any:
    from suture.scheduler.config import load_settings

    return load_settings(config if config.exists() else None)


def _sessions(config: Path) -> tuple[Any, sessionmaker[Session]]:
    from suture.scheduler.db import make_engine, make_session_factory

    settings = _settings(config)
    return settings, make_session_factory(make_engine(settings.database_url, pool_size=2))


def _run(config: Path, fn: Callable[[Any, Session], T]) -> T:
    with _errors():
        settings, sessions = _sessions(config)
        with sessions() as session:
            return fn(settings, session)


def _actor(actor: str | None) -> str:
    return actor or getpass.getuser()


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
    operator: Annotated[str | None, typer.Option(
        help="Also create this operator for the HTTP API and print its token.")] = None,
) -> None:
    """Create the database (or upgrade it), the ES256 signing key, the device root secret and
    the settings file. Safe to run again: existing keys and secrets are kept."""
    from suture.keys import (
        generate_private_key,
        key_id,
        load_private_key,
        public_key_path,
        write_key_pair,
    )
    from suture.scheduler import migrate
    from suture.scheduler.config import read_config_file, write_config_file
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
        key_path = Path(str(values["signing_key_path"]))
        if key_path.exists():
            signing = load_private_key(key_path)
            _out.print(f"signing key  {key_path} (kept)", highlight=False)
        else:
            signing = generate_private_key("ES256")
            write_key_pair(signing, key_path)
            _out.print(f"signing key  {key_path} (new, ES256)", highlight=False)
        write_config_file(config, values)
        from suture.scheduler.config import load_settings

        settings = load_settings(config)
        engine = make_engine(settings.database_url, pool_size=2)
        migrate.upgrade(engine)
        revision = migrate.current_revision(engine)
        _out.print(f"database     {settings.database_url} (schema {revision})", highlight=False)
        _out.print(f"settings     {config} (mode 0600: holds the device root secret)",
                   highlight=False)
        _out.print(f"key id       {key_id(signing.public_key()).hex()}", highlight=False)
        _out.print(f"devices verify schedules with {public_key_path(key_path)}", highlight=False)
        if operator:
            from suture.scheduler.services import operators

            with make_session_factory(engine)() as session:
                token = operators.add_operator(session, name=operator, actor="init", now=_now())
            _out.print(f"operator     {operator}  token {token}  (shown once)", highlight=False)


@scheduler_app.command()
def serve(
    config: ConfigOpt = DEFAULT_CONFIG,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8640,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the scheduler's HTTP service (device API, operator API, OpenAPI at /docs)."""
    import uvicorn

    from suture.scheduler.api.app import create_app

    with _errors():
        settings = _settings(config)
        app = create_app(settings)
    _out.print(f"scheduler on http://{host}:{port} (OpenAPI: /openapi.json, docs: /docs)",
               highlight=False)
    uvicorn.run(app, host=host, port=port, workers=workers, log_level="info")


# --- devices ---------------------------------------------------------------------------------

def _parse_installed(items: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items or []:
        name, sep, version = item.partition("=")
        if not sep or not version.isdigit():
            raise ValueError(f"--installed {item!r}: expected COMPONENT=VERSION, e.g. app=3")
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
    config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None,
) -> None:
    """Register a device and issue its credential (the secret is shown once)."""
    from suture.scheduler.schemas import DeviceCreate
    from suture.scheduler.services import devices

    def go(settings: Any, session: Session) -> None:
        create = DeviceCreate(id=device_id, board=board, vendor_id=vendor_id, class_id=class_id,
                              ward=ward, location=location, criticality=criticality,
                              tags=tag or [], groups=group or [],
                              installed=_parse_installed(installed))
        _, cred = devices.add_device(session, create=create,
                                     root_secret=settings.root_secret_bytes(),
                                     actor=_actor(actor), now=_now())
        _out.print(f"device {device_id} registered; credential fingerprint "
                   f"{cred.fingerprint[:16]}", highlight=False)
        if secret_out is not None:
            fd = os.open(secret_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(cred.secret_hex + "\n")
            _out.print(f"secret written to {secret_out}", highlight=False)
        else:
            _out.print(f"secret {cred.secret_hex}  (shown once: provision it into the device)",
                       highlight=False)

    _run(config, go)


@device_app.command("list")
def device_list(
    group: Annotated[str | None, typer.Option(help="Only this group.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """List registered devices."""
    from suture.scheduler.schemas import DevicePublic
    from suture.scheduler.services import devices

    def go(settings: Any, session: Session) -> None:
        rows, total = devices.list_devices(session, limit=limit, group=group)
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

    _run(config, go)


@device_app.command("show")
def device_show(device_id: str, config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False
                ) -> None:
    """A device's record and its status history."""
    from suture.scheduler.schemas import DeviceDetail, DeviceEventPublic, DevicePublic
    from suture.scheduler.services import devices

    def go(settings: Any, session: Session) -> None:
        d, events = devices.get_device(session, device_id=device_id)
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

    _run(config, go)


@device_app.command("rotate")
def device_rotate(
    device_id: str,
    secret_out: Annotated[Path | None, typer.Option(
        help="Write the new secret (hex) to this file (mode 0600) instead of printing it.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None,
) -> None:
    """Issue a new credential to a device; the old secret stops working at once."""
    from suture.scheduler.services import devices

    cred = _run(config, lambda s, session: devices.rotate_credential(
        session, device_id=device_id, root_secret=s.root_secret_bytes(), actor=_actor(actor),
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
    config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None,
) -> None:
    """Mark a device as in clinical use (nothing is installed until it is released)."""
    from suture.scheduler.schemas import DeviceUpdate
    from suture.scheduler.services import devices

    _run(config, lambda s, session: devices.update_device(
        session, device_id=device_id, change=DeviceUpdate(busy=busy), actor=_actor(actor),
        now=_now()))
    _out.print(f"device {device_id} {'busy' if busy else 'available'}")


# --- releases --------------------------------------------------------------------------------

def _parse_requires(items: list[str] | None) -> list[Any]:
    from suture.scheduler.schemas import Requirement

    out = []
    for item in items or []:
        name, sep, version = item.partition(">=")
        if not sep or not version.strip().isdigit():
            raise ValueError(f"--requires {item!r}: expected COMPONENT>=VERSION, e.g. loader>=3")
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
    config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None,
) -> None:
    """Verify a release against the vendor's trust anchor, then store it."""
    from suture.keys import load_public_key
    from suture.scheduler.services import releases

    def go(settings: Any, session: Session) -> None:
        anchors = [load_public_key(p) for p in (trust_anchor or settings.trust_anchor_paths)]
        rel = releases.import_release(
            session, envelope=envelope.read_bytes(), payload=payload.read_bytes(),
            sbom=sbom.read_bytes() if sbom else None,
            notes=notes.read_text() if notes else None, trust_anchors=anchors,
            actor=_actor(actor), must_pass_through=must_pass_through,
            requires=_parse_requires(requires), now=_now())
        _out.print(f"release {rel.id}: {rel.component} #{rel.sequence_number} "
                   f"({rel.payload_size} bytes) verified and imported", highlight=False)

    _run(config, go)


@release_app.command("list")
def release_list(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """List releases."""
    from suture.scheduler.schemas import ReleasePublic
    from suture.scheduler.services import releases

    def go(settings: Any, session: Session) -> None:
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

    _run(config, go)


@release_app.command("show")
def release_show(release_id: int, config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """One release in full (JSON)."""
    from suture.scheduler.schemas import ReleasePublic
    from suture.scheduler.services import releases

    rel = _run(config, lambda s, session: ReleasePublic.model_validate(
        releases.get_release(session, release_id=release_id)))
    _out.print_json(rel.model_dump_json())


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
    config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None,
) -> None:
    """Change a release's place in the version graph: must-pass-through, requirements."""
    from suture.scheduler.schemas import ReleaseUpdate
    from suture.scheduler.services import releases

    def go(settings: Any, session: Session) -> Any:
        change = ReleaseUpdate(must_pass_through=must_pass_through,
                               requires=[] if no_requires else
                               (_parse_requires(requires) if requires else None))
        return releases.update_release(session, release_id=release_id, change=change,
                                       actor=_actor(actor), now=_now())

    rel = _run(config, go)
    needs = ", ".join(f"{q['component']}>={q['min_version']}" for q in rel.requires) or "nothing"
    _out.print(f"release {rel.id}: {rel.component} #{rel.sequence_number}; must-pass-through "
               f"{'yes' if rel.must_pass_through else 'no'}; requires {needs}", highlight=False)


@release_app.command("recall")
def release_recall(
    release_id: int,
    revert: Annotated[bool, typer.Option(
        help="Devices in trial revert (confirmed ones cannot: they keep it).")] = False,
    config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None,
) -> None:
    """Withdraw a release: its rollouts abort and it is never planned again."""
    from suture.scheduler.services import releases

    _run(config, lambda s, session: releases.recall_release(
        session, release_id=release_id, revert=revert, actor=_actor(actor), now=_now()))
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
        raise ValueError(f"--deadline {text!r}: use ISO 8601 (2026-03-01T02:00+01:00) or unix "
                         "seconds") from None
    if parsed.tzinfo is None:
        raise ValueError(f"--deadline {text!r}: give a time zone offset")
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
    config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None,
) -> None:
    """Plan a rollout into waves; it then awaits approval."""
    from suture.scheduler.schemas import RolloutCreate, WindowSpec
    from suture.scheduler.services import rollouts

    def go(settings: Any, session: Session) -> None:
        spec = RolloutCreate(
            name=name, release_id=release, target_groups=group or [], target_filter=filter_,
            waves=[w.strip() for w in waves.split(",") if w.strip()],
            order=order,  # type: ignore[arg-type]
            success_threshold=success_threshold, error_threshold=error_threshold,
            error_min_sample=min_sample, on_error=on_error,  # type: ignore[arg-type]
            window=WindowSpec(cron=window_cron, duration_s=window_duration, tz=window_tz)
            if window_cron else None,
            deadline=_parse_time(deadline), download_only=download_only)
        ro = rollouts.create_rollout(session, spec=spec, actor=_actor(actor), now=_now())
        _out.print(f"rollout {ro.id}: {ro.target_count} devices in {ro.wave_count} waves; "
                   f"needs {ro.required_approvals} approval(s)", highlight=False)
        _print_held(rollouts.rollout_status(session, rollout_id=ro.id))

    _run(config, go)


def _rollout_action(verb: str, call: Callable[..., Any], **extra: Any) -> Callable[..., None]:
    def command(rollout_id: Annotated[int, typer.Argument(help="Rollout id.")],
                config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None) -> None:
        from suture.scheduler.services import rollouts

        def go(settings: Any, session: Session) -> Any:
            ro = call(session, rollout_id=rollout_id, actor=_actor(actor), now=_now(), **extra)
            return ro.state, rollouts.rollout_status(session, rollout_id=rollout_id)

        state, status = _run(config, go)
        _out.print(f"rollout {rollout_id}: {state}", highlight=False)
        if verb in ("start", "resume"):
            _print_held(status)

    command.__doc__ = {
        "approve": "Approve a rollout (two distinct operators for critical devices).",
        "start": "Start an approved rollout.",
        "pause": "Pause a running rollout: nothing new starts; trials finish.",
        "resume": "Resume a paused rollout.",
    }[verb]
    return command


def _register_rollout_actions() -> None:
    from suture.scheduler.services import rollouts

    for verb, call in (("approve", rollouts.approve_rollout), ("start", rollouts.start_rollout),
                       ("pause", rollouts.pause_rollout), ("resume", rollouts.resume_rollout)):
        rollout_app.command(verb)(_rollout_action(verb, call))


@rollout_app.command("abort")
def rollout_abort(
    rollout_id: int,
    revert: Annotated[bool, typer.Option(
        help="Devices in trial revert; refused if a device confirmed the release.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None,
) -> None:
    """Abort a rollout; with --revert, the devices in trial go back.

    A device that confirmed the release has no backup to go back to: --revert is
    refused while any has (abort without it, and roll out a fixed release).
    """
    from suture.scheduler.services import rollouts

    ro = _run(config, lambda s, session: rollouts.abort_rollout(
        session, rollout_id=rollout_id, revert=revert, actor=_actor(actor), now=_now()))
    _out.print(f"rollout {rollout_id}: {ro.state}{' (reverting)' if revert else ''}")


@rollout_app.command("list")
def rollout_list(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """List rollouts."""
    from suture.scheduler.services import rollouts

    rows = _run(config, lambda s, session: rollouts.list_rollouts(session))
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
        return _run(config, lambda s, session: rollouts.rollout_status(
            session, rollout_id=rollout_id))

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
def audit_verify(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Recompute the audit log's hash chain; exit 1 at the first record that does not match."""
    from suture.scheduler.services import audit

    result = _run(config, lambda s, session: audit.verify(session))
    if result.ok:
        _out.print(f"audit log intact: {result.records} records", highlight=False)
        return
    raise _fail(f"audit log broken at record {result.first_bad_seq}: {result.reason} "
                f"({result.records} records verified before it)")


@audit_app.command("list")
def audit_list(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
               config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """The latest audit records."""
    from suture.scheduler.services import audit

    rows = _run(config, lambda s, session: audit.recent(session, limit=limit))
    table = Table("seq", "when", "actor", "action", "subject", "detail", title="audit log")
    for r in rows:
        table.add_row(str(r.seq), _when(r.at), r.actor, r.action, r.subject, r.detail[:80])
    _out.print(table)


@operator_app.command("add")
def operator_add(name: str, config: ConfigOpt = DEFAULT_CONFIG, actor: ActorOpt = None) -> None:
    """Create an operator of the HTTP API and print its bearer token (shown once)."""
    from suture.scheduler.services import operators

    token = _run(config, lambda s, session: operators.add_operator(
        session, name=name, actor=_actor(actor), now=_now()))
    _out.print(f"operator {name}: token {token}  (shown once)", highlight=False)


_register_rollout_actions()
__import__("suture.cli.scheduler_vendor_cmd", fromlist=["_"]).register_into(scheduler_app)


def register(app: typer.Typer) -> None:
    """Attach the `scheduler` command group to the root app."""
    app.add_typer(scheduler_app, name="scheduler")
