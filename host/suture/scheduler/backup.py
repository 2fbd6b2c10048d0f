"""A scheduler's whole state in one folder, and back.

A backup holds what a scheduler cannot be rebuilt without: the database (SQLite's online backup,
or ``pg_dump`` for PostgreSQL, both consistent while the service runs), the settings file (the
device root secret), the schedule signing key, the audit key and its checkpoints, and the vendor
trust anchors, with a manifest of their SHA-256 digests. A restore checks every digest first,
refuses to overwrite a scheduler, writes the files into a folder (settings that named the old
folder now name the new one), loads the database, and upgrades its schema when the backup is
older than this version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from suture.scheduler.config import Settings, read_config_file, write_config_file
from suture.scheduler.errors import SchedulerError

MANIFEST = "backup.json"
SETTINGS_FILE = "scheduler.env"
FORMAT = 1
#: Settings that name a file the backup carries, and the name it has in the backup.
_FILES = {"signing_key_path": "scheduler-key.pem", "audit_key_path": "audit-key.json",
          "audit_checkpoint_path": "audit-checkpoints.jsonl"}


class BackupError(SchedulerError):
    """A backup that cannot be made, or a folder that is not a sound backup."""


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds: file name -> SHA-256 (hex), the database's kind and schema."""

    created_at: int
    database: str  # "sqlite" or "postgresql"
    schema: str
    files: dict[str, str]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _libpq_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _private_copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    dst.chmod(0o600)


def make_backup(settings: Settings, settings_file: Path, out: Path, *, schema: str
                ) -> BackupManifest:
    """Write the backup into ``out`` (a new folder, mode 0700)."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: a backup goes into a new folder")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)
    database = _sqlite_path(settings.database_url)
    if database is not None:
        if not database.exists():
            raise BackupError(f"no database at {database}")
        source = sqlite3.connect(database)
        target = sqlite3.connect(out / "scheduler.db")
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        (out / "scheduler.db").chmod(0o600)
        kind = "sqlite"
    elif settings.database_url.startswith("postgresql"):
        dump = shutil.which("pg_dump")
        if dump is None:
            raise BackupError("pg_dump is not installed (Debian: postgresql-client)")
        proc = subprocess.run(
            [dump, "--format=custom", "--no-owner", "--file", str(out / "scheduler.pgdump"),
             _libpq_url(settings.database_url)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BackupError(f"pg_dump failed: {proc.stderr.strip()[-300:]}")
        kind = "postgresql"
    else:
        raise BackupError(f"cannot back up a database at {settings.database_url}")
    _private_copy(settings_file, out / SETTINGS_FILE)
    for field, name in _FILES.items():
        path = getattr(settings, field)
        if path is not None and Path(path).exists():
            _private_copy(Path(path), out / name)
    public = settings.signing_key_path.with_name(settings.signing_key_path.stem + ".pub.pem")
    if public.exists():
        shutil.copyfile(public, out / "scheduler-key.pub.pem")
    anchors = out / "trust-anchors"
    for index, anchor in enumerate(settings.trust_anchor_paths):
        anchors.mkdir(exist_ok=True)
        shutil.copyfile(anchor, anchors / f"{index}-{Path(anchor).name}")
    files = {str(p.relative_to(out)): _digest(p) for p in sorted(out.rglob("*")) if p.is_file()}
    manifest = BackupManifest(int(time.time()), kind, schema, files)
    (out / MANIFEST).write_text(json.dumps(manifest.__dict__, indent=2) + "\n")
    return manifest


def read_manifest(folder: Path) -> BackupManifest:
    """The backup's manifest, every file checked against its digest."""
    try:
        raw = json.loads((folder / MANIFEST).read_text())
        manifest = BackupManifest(int(raw["created_at"]), str(raw["database"]),
                                  str(raw["schema"]), dict(raw["files"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{folder} is not a suture scheduler backup ({exc})") from None
    for name, digest in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise BackupError(f"the backup lacks {name}")
        if _digest(path) != digest:
            raise BackupError(f"{name} does not match the backup's manifest: altered or torn")
    return manifest


def restore_backup(folder: Path, into: Path, *, database_url: str | None = None) -> Path:
    """Restore the backup in ``folder`` as a scheduler in ``into``; the settings file written.
    ``database_url``: for a PostgreSQL backup, the (empty) database to load it into."""
    manifest = read_manifest(folder)
    target = into / SETTINGS_FILE
    if target.exists():
        raise BackupError(f"{target} exists: restore into a folder without a scheduler")
    values = read_config_file(folder / SETTINGS_FILE)
    into.mkdir(parents=True, exist_ok=True)
    for field, name in _FILES.items():
        if name in manifest.files:
            _private_copy(folder / name, into / name)
            values[field] = str(into / name)
    if "scheduler-key.pub.pem" in manifest.files:
        shutil.copyfile(folder / "scheduler-key.pub.pem", into / "scheduler-key.pub.pem")
    anchors = sorted(n for n in manifest.files if n.startswith("trust-anchors/"))
    if anchors:
        (into / "trust-anchors").mkdir(exist_ok=True)
        for name in anchors:
            shutil.copyfile(folder / name, into / name)
        values["trust_anchor_paths"] = [str(into / name) for name in anchors]
    if manifest.database == "sqlite":
        _private_copy(folder / "scheduler.db", into / "scheduler.db")
        values["database_url"] = f"sqlite:///{into / 'scheduler.db'}"
    else:
        url = database_url or str(values.get("database_url", ""))
        restore = shutil.which("pg_restore")
        if restore is None:
            raise BackupError("pg_restore is not installed (Debian: postgresql-client)")
        proc = subprocess.run(
            [restore, "--no-owner", "--clean", "--if-exists", "--dbname", _libpq_url(url),
             str(folder / "scheduler.pgdump")], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BackupError(f"pg_restore failed: {proc.stderr.strip()[-300:]}")
        values["database_url"] = url
    write_config_file(target, values)
    os.chmod(target, 0o600)
    return target
