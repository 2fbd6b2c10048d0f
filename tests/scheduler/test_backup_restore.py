"""A scheduler backed up and restored elsewhere is the same scheduler: its devices, their
credentials (the same root secret), its signing key and an audit log that still verifies; a
torn or altered backup is refused and an existing scheduler is never overwritten
(docs/production.md, "Backups, and a restore you have tried")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sched_world import cli_accounts
from suture.cli.main import app
from typer.testing import CliRunner

IDS = ("--vendor-id", "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
       "--class-id", "1492af14-2569-5e48-bf42-9b2d51f2ab45")



def _run(cli: CliRunner, *args: str, token: str | None = None, code: int = 0) -> str:
    result = cli.invoke(app, ["scheduler", *args],
                        env={"SUTURE_TOKEN": token} if token else None)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_backup_then_restore_elsewhere(cli: CliRunner, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _run(cli, "init")
    tokens = cli_accounts(cli, app)
    _run(cli, "device", "add", "pump-1", "--board", "sim", *IDS, "--secret-out", "p1.secret",
         token=tokens["alice"])
    secret = (tmp_path / "p1.secret").read_text()
    out = json.loads(_run(cli, "backup", "bk", "--json"))
    assert out["database"] == "sqlite"
    assert {"scheduler.db", "scheduler.env", "scheduler-key.pem", "audit-key.json"} <= set(
        out["files"])
    assert (tmp_path / "bk").stat().st_mode & 0o777 == 0o700

    # refused: an altered file, then an existing scheduler
    altered = tmp_path / "altered"
    altered.mkdir()
    for p in (tmp_path / "bk").iterdir():
        (altered / p.name).write_bytes(p.read_bytes())
    (altered / "scheduler.env").write_text((altered / "scheduler.env").read_text() + "#\n")
    assert "does not match" in _run(cli, "restore", str(altered), "--into", "other", code=1)
    assert not (tmp_path / "other" / "scheduler.env").exists()
    assert "exists" in _run(cli, "restore", "bk", "--into", ".", code=1)

    out = _run(cli, "restore", str(tmp_path / "bk"), "--into", str(tmp_path / "other"))
    assert "audit log verified" in out
    monkeypatch.chdir(tmp_path / "other")
    shown = json.loads(_run(cli, "device", "show", "pump-1", "--json", token=tokens["alice"]))
    assert "pump-1" in json.dumps(shown)
    # the same root secret: rotating there gives what rotating here would
    _run(cli, "device", "rotate", "pump-1", "--secret-out", "p1-new.secret",
         token=tokens["alice"])
    from suture.scheduler import credentials
    from suture.scheduler.config import load_settings

    root = load_settings(tmp_path / "scheduler.env").root_secret_bytes()
    assert bytes.fromhex(secret.strip()) == credentials.derive_secret(root, "pump-1", 1)
    rotated = (tmp_path / "other" / "p1-new.secret").read_text().strip()
    assert bytes.fromhex(rotated) == credentials.derive_secret(root, "pump-1", 2)
    settings = (tmp_path / "other" / "scheduler.env").read_text()
    assert str(tmp_path / "other" / "scheduler.db") in settings
    assert str(tmp_path / "other" / "audit-key.json") in settings


def test_a_folder_that_is_no_backup(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    assert "not a suture scheduler backup" in _run(cli, "restore", "nothing", "--into", "x",
                                                   code=1)
