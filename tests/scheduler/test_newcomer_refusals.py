"""What a newcomer following docs/run-a-rollout.md gets wrong is refused at once, with a message
that says what to do, and changes nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sched_world import cli_accounts
from suture.cli.main import app
from suture.scheduler.config import Settings
from typer.testing import CliRunner

VENDOR = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
CLASS = "1492af14-2569-5e48-bf42-9b2d51f2ab45"



def _run(cli: CliRunner, *args: str, token: str | None = None) -> tuple[int, str]:
    env = {"SUTURE_TOKEN": token} if token else None
    result = cli.invoke(app, ["scheduler", *args], env=env)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_outside_the_scheduler_folder_says_there_is_no_scheduler(cli: CliRunner) -> None:
    code, out = _run(cli, "device", "list")
    assert code != 0
    assert "no scheduler here" in out
    assert "device_root_secret" not in out


def test_a_failed_init_writes_no_settings(cli: CliRunner, tmp_path: Path) -> None:
    code, out = _run(cli, "init", "--trust-anchor", "no-such-vendor.pub.pem")
    assert code != 0
    assert "no-such-vendor.pub.pem" in out
    assert not (tmp_path / "scheduler.env").exists()
    assert not (tmp_path / "scheduler-key.pem").exists()
    code, out = _run(cli, "init", "--database", "mysql://nobody@nowhere/db")
    assert code != 0
    assert not (tmp_path / "scheduler.env").exists()


@pytest.mark.parametrize("url", ["postgres://u:p@db.example:5432/suture",
                                 "postgresql://u:p@db.example:5432/suture"])
def test_postgres_urls_as_hosting_services_write_them(url: str) -> None:
    settings = Settings(database_url=url, environment="development")
    assert settings.database_url == "postgresql+psycopg://u:p@db.example:5432/suture"
    assert Settings(database_url="sqlite:///x.db",
                    environment="development").database_url == "sqlite:///x.db"


def test_init_says_where_devices_poll_and_serve_refuses_an_unreachable_url(
        cli: CliRunner) -> None:
    code, out = _run(cli, "init")
    assert code == 0, out
    assert "devices poll http://127.0.0.1:8640" in out
    assert "--public-url" in out
    code, out = _run(cli, "serve", "--host", "0.0.0.0", "--port", "1")
    assert code == 2
    assert "--public-url" in out
    code, out = _run(cli, "init", "--public-url", "http://scheduler.ward3.example:8640")
    assert code == 0
    assert "devices poll http://scheduler.ward3.example:8640" in out
    assert "only this machine" not in out


def test_device_and_rollout_refusals(cli: CliRunner) -> None:
    assert _run(cli, "init")[0] == 0
    tokens = cli_accounts(cli, app)
    alice = tokens["alice"]
    code, out = _run(cli, "device", "add", "pump-1", "--board", "pico", "--vendor-id", VENDOR,
                     "--class-id", CLASS, token=alice)
    assert code != 0
    assert "unknown board 'pico'" in out
    assert "did you mean 'rpi-pico'" in out
    code, out = _run(cli, "device", "add", "pump-1", "--board", "rpi-pico", "--vendor-id",
                     "notauuid", "--class-id", CLASS, token=alice)
    assert code != 0
    assert "not a UUID" in out
    code, out = _run(cli, "device", "list", "--json", token=alice)
    assert code == 0
    assert "pump-1" not in out  # nothing was registered
    code, out = _run(cli, "device", "add", "pump-1", "--board", "rpi-pico", "--vendor-id",
                     VENDOR.upper(), "--class-id", CLASS, "--group", "ward-3", token=alice)
    assert code == 0, out
    assert VENDOR in _run(cli, "device", "show", "pump-1", "--json", token=alice)[1]


def test_a_deadline_in_the_past_is_refused() -> None:
    from suture.scheduler.errors import InvalidInputError
    from suture.scheduler.services.rollouts import _check_deadline

    now = int(time.time())
    with pytest.raises(InvalidInputError, match="in the past"):
        _check_deadline(int(datetime(2026, 3, 15, 1, tzinfo=UTC).timestamp()), now)
    _check_deadline(now + 3600, now)
    _check_deadline(None, now)
