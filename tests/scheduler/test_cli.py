"""`suture scheduler ...`: a whole rollout from the command line, and clear one-line errors."""

from __future__ import annotations

from pathlib import Path

from sched_world import CLASS_ID, VENDOR_ID, cli_accounts, make_envelope
from suture.cli.main import app
from suture.keys import PrivateKey, generate_private_key, write_key_pair
from typer.testing import CliRunner

DEVICE_IDS = ("--vendor-id", "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
              "--class-id", "1492af14-2569-5e48-bf42-9b2d51f2ab45")



#: The operators' tokens of the test that runs (``sign_in``).
TOKENS: dict[str, str] = {}


def sign_in(cli: CliRunner) -> dict[str, str]:
    """The accounts of ``sched_world.ACCOUNTS``, made through the CLI; alice acts by default."""
    TOKENS.clear()
    TOKENS.update(cli_accounts(cli, app))
    return TOKENS


def run(cli: CliRunner, *args: str, code: int = 0, as_: str | None = "alice") -> str:
    env = {"SUTURE_TOKEN": TOKENS[as_]} if as_ is not None and as_ in TOKENS else None
    result = cli.invoke(app, ["scheduler", *args], env=env)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_rollout_from_the_command_line(cli: CliRunner, tmp_path: Path,
                                       vendor_key: PrivateKey) -> None:
    write_key_pair(vendor_key, tmp_path / "vendor.pem")
    out = run(cli, "init", "--trust-anchor", "vendor.pub.pem")
    assert "schema 0014" in out
    assert (tmp_path / "scheduler.env").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "audit-key.json").stat().st_mode & 0o777 == 0o600
    sign_in(cli)
    for i, crit in enumerate((2, 4)):
        out = run(cli, "device", "add", f"pump-{i}", "--board", "sim", "--vendor-id", VENDOR_ID,
                  "--class-id", CLASS_ID, "--group", "ward-3", "--criticality", str(crit),
                  "--installed", "app=1")
        assert "secret" in out
    envelope, payload = make_envelope(vendor_key, tmp_path, 2)
    (tmp_path / "app.suit").write_bytes(envelope)
    (tmp_path / "app.bin").write_bytes(payload)
    out = run(cli, "release", "import", "app.suit", "app.bin", "--sbom", "app-2.cdx.json")
    assert "verified and imported" in out
    assert "RECALLED" not in run(cli, "release", "list")
    out = run(cli, "rollout", "create", "--release", "1", "--name", "night", "--group", "ward-3",
              "--waves", "1,100%", "--window-cron", "0 2 * * *", "--window-tz", "Europe/Paris")
    assert "2 devices in 2 waves; needs 2 approval(s)" in out
    run(cli, "rollout", "approve", "1", as_="bob")
    err = run(cli, "rollout", "approve", "1", code=1, as_="bob")
    assert "already approved" in err
    assert err.count("\n") == 1
    assert "needs 2 approval(s)" in run(cli, "rollout", "start", "1", code=1)  # one of two
    run(cli, "rollout", "approve", "1", as_="carol")
    assert "running" in run(cli, "rollout", "start", "1")
    status = run(cli, "rollout", "status", "1")
    assert "wave" in status
    assert "pending=1" in status
    assert "paused" in run(cli, "rollout", "pause", "1")
    assert "running" in run(cli, "rollout", "resume", "1")
    assert "aborted" in run(cli, "rollout", "abort", "1", "--revert", "--yes")
    live = run(cli, "rollout", "status", "1", "--watch", "--interval", "0.1")
    assert "aborted by alice" in live  # the live view ends with the rollout
    assert "pump-1" in run(cli, "device", "show", "pump-1")
    assert "generation 2" in run(cli, "device", "rotate", "pump-1", "--secret-out", "p1.secret")
    assert len((tmp_path / "p1.secret").read_text().strip()) == 64
    assert "busy" in run(cli, "device", "busy", "pump-1", "--on")
    assert "rollout.abort" in run(cli, "audit", "list")
    assert "intact" in run(cli, "audit", "verify")


def test_errors_are_one_line(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    sign_in(cli)
    rogue = generate_private_key("ES256")
    write_key_pair(rogue, tmp_path / "rogue.pem")
    other = generate_private_key("ES256")
    write_key_pair(other, tmp_path / "other.pem")
    envelope, payload = make_envelope(rogue, tmp_path, 2)
    (tmp_path / "x.suit").write_bytes(envelope)
    (tmp_path / "x.bin").write_bytes(payload)
    cases = [
        (("release", "import", "x.suit", "x.bin", "--trust-anchor", "other.pub.pem"),
         "does not verify", 1),
        (("release", "import", "x.suit", "x.bin"), "no trust anchor", 1),
        (("release", "import", "missing.suit", "x.bin", "--trust-anchor", "other.pub.pem"),
         "No such file", 2),
        (("device", "add", "bad id!", "--board", "sim", *DEVICE_IDS),
         "id", 2),
        (("device", "add", "d1", "--board", "sim", *DEVICE_IDS,
          "--installed", "app"), "COMPONENT=VERSION", 2),
        (("rollout", "create", "--release", "1", "--name", "n", "--deadline", "tomorrow"),
         "--deadline 'tomorrow': use ISO 8601", 2),
        (("rollout", "start", "42"), "no rollout 42", 1),
        (("device", "show", "nope"), "no device", 1),
    ]
    for args, message, code in cases:
        out = run(cli, *args, code=code)
        assert message in out, (args, out)
        assert out.count("\n") == 1, out
    records = run(cli, "audit", "verify")  # nothing was changed since the accounts were made
    run(cli, "audit", "checkpoint", "--out", "cp.jsonl")
    assert records == run(cli, "audit", "verify")


def test_audit_verify_fails_on_a_broken_chain(cli: CliRunner, tmp_path: Path) -> None:
    import sqlite3

    run(cli, "init")
    sign_in(cli)
    run(cli, "device", "add", "d1", "--board", "sim", *DEVICE_IDS)
    db = sqlite3.connect(tmp_path / "scheduler.db")
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    db.commit()
    db.close()
    assert "broken at record 1" in run(cli, "audit", "verify", code=1)


def test_settings_refuse_the_default_secret(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "scheduler.env").write_text("SUTURE_SCHEDULER_DEVICE_ROOT_SECRET=changethis\n")
    assert "default" in run(cli, "device", "list", code=1)
