"""`suture scheduler backup` and `suture scheduler restore`: the scheduler's whole state in one
folder and back (suture.scheduler.backup; docs/production.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from suture.cli.options import JsonOpt, emit_json

ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
    help="Settings file written by `suture scheduler init`.")]


def backup(
    out: Annotated[Path, typer.Argument(help="A new folder for the backup.")],
    config: ConfigOpt = Path("scheduler.env"),
    as_json: JsonOpt = False,
) -> None:
    """Back up the scheduler while it runs: database, settings (the device root secret), signing
    key, audit key and checkpoints, trust anchors, with a manifest of their SHA-256 digests.

    The folder holds every secret of the scheduler (mode 0700): keep it as you keep the host."""
    from suture.cli.scheduler_cmd import _settings
    from suture.scheduler import migrate
    from suture.scheduler.backup import make_backup
    from suture.scheduler.db import make_engine

    settings = _settings(config)
    schema = migrate.current_revision(make_engine(settings.database_url, pool_size=1)) or ""
    manifest = make_backup(settings, config, out, schema=schema)
    if as_json:
        emit_json({"folder": str(out), **manifest.__dict__})
        return
    typer.echo(f"backup in {out}: {manifest.database} database (schema {manifest.schema}), "
               f"{len(manifest.files)} files, digests in {out / 'backup.json'}")


def restore(
    folder: Annotated[Path, typer.Argument(help="A folder written by `suture scheduler backup`.")],
    into: Annotated[Path, typer.Option(help="Folder of the restored scheduler.")] = Path("."),
    database: Annotated[str | None, typer.Option(
        help="PostgreSQL backups: the empty database to load it into (default: the backup's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup as a scheduler in --into: every digest checked first, an existing
    scheduler never overwritten, the schema upgraded to this version, the audit log verified."""
    from suture.scheduler import migrate
    from suture.scheduler.backup import BackupError, restore_backup
    from suture.scheduler.config import load_settings
    from suture.scheduler.db import make_engine, make_session_factory
    from suture.scheduler.services import audit

    settings_file = restore_backup(folder, into, database_url=database)
    settings = load_settings(settings_file)
    engine = make_engine(settings.database_url, pool_size=1)
    migrate.upgrade(engine)
    key = audit.load_audit_key(settings.audit_key_path)
    with make_session_factory(engine, audit_key=key)() as session:
        result = audit.verify(session, key=key)
    if not result.ok:
        raise BackupError(f"restored, but the audit log does not verify: {result.reason}")
    schema = migrate.current_revision(engine) or ""
    if as_json:
        emit_json({"settings": str(settings_file), "schema": schema,
                   "audit_records": result.records})
        return
    typer.echo(f"restored into {settings_file.parent}: schema {schema}, audit log verified "
               f"({result.records} records); start it with `suture scheduler serve`")


def register_into(scheduler_app: typer.Typer) -> None:
    """Attach `backup` and `restore` under the `scheduler` command group."""
    scheduler_app.command()(backup)
    scheduler_app.command()(restore)
