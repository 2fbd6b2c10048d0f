"""`suture scheduler trust sign | publish | list | status`: a rotation of the scheduler's key
made and published from the command line, refused when not signed by the current anchor, when
not above the published version, or by an operator without the release manager's role; and
the per-device view, with the key 22 the device's schedule then carries."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import cbor2
from sched_world import CLASS_ID, VENDOR_ID, cli_accounts
from suture import cose
from suture.cli.main import app
from suture.keys import generate_private_key, load_private_key, write_key_pair
from suture.scheduler.config import load_settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.models import Device
from suture.scheduler.schedule_doc import K_TRUST_UPDATE
from suture.scheduler.services import schedules
from typer.testing import CliRunner

TOKENS: dict[str, str] = {}


def run(cli: CliRunner, *args: str, code: int = 0, as_: str = "alice") -> str:
    env = {"SUTURE_TOKEN": TOKENS[as_]} if as_ in TOKENS else None
    result = cli.invoke(app, ["scheduler", *args], env=env)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_publish_a_scheduler_key_rotation(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    TOKENS.clear()
    TOKENS.update(cli_accounts(cli, app))
    run(cli, "device", "add", "pump-1", "--board", "sim", "--vendor-id", VENDOR_ID,
        "--class-id", CLASS_ID)
    write_key_pair(generate_private_key("ES256"), tmp_path / "next.pem")
    write_key_pair(generate_private_key("ES256"), tmp_path / "intruder.pem")
    out = json.loads(run(cli, "trust", "sign", "--role", "scheduler", "--version", "1",
                         "--key", "scheduler-key.pub.pem", "--key", "next.pub.pem",
                         "--sign-with", "scheduler-key.pem", "--out", "rot1.cose", "--json"))
    assert (out["role"], out["version"], len(out["keys"])) == ("scheduler", 1, 2)
    run(cli, "trust", "sign", "--role", "scheduler", "--version", "1", "--key",
        "intruder.pub.pem", "--sign-with", "intruder.pem", "--out", "forged.cose")
    err = run(cli, "trust", "publish", "forged.cose", code=1)
    assert "does not verify" in err
    err = run(cli, "trust", "publish", "rot1.cose", code=1, as_="vera")  # a viewer
    assert "needs release:import" in err
    assert run(cli, "trust", "list", "--json").strip() == "[]"
    published = json.loads(run(cli, "trust", "publish", "rot1.cose", "--json"))
    assert (published["role"], published["version"]) == ("scheduler", 1)
    err = run(cli, "trust", "publish", "rot1.cose", code=1)
    assert "not above" in err
    listed = json.loads(run(cli, "trust", "list", "--json"))
    assert [(r["role"], r["version"], r["created_by"]) for r in listed] == [
        ("scheduler", 1, "alice")]
    status = json.loads(run(cli, "trust", "status", "--json"))
    assert status == [{"device_id": "pump-1", "versions": {}, "pending": "scheduler v1"}]
    assert "scheduler v1" in run(cli, "trust", "status")

    # the device's next schedule carries the rotation (key 22)
    settings = load_settings(tmp_path / "scheduler.env")
    sessions = make_session_factory(make_engine(settings.database_url))
    key = load_private_key(settings.signing_key_path)
    ctx = schedules.ScheduleContext(key=key, public_url=settings.public_url,
                                    poll_interval_s=60, poll_jitter_s=0, forced_window_s=0)
    result = schedules.poll_schedule(sessions(), device_id="pump-1", counter=1, now=10**9 * 2,
                                     ctx=ctx)
    doc = cbor2.loads(cose.verify1(result.document, [key.public_key()]))
    assert doc[K_TRUST_UPDATE] == (tmp_path / "rot1.cose").read_bytes()
    with sessions() as s, s.begin():  # once the device reports version 1, no longer
        d = s.get(Device, "pump-1")
        assert d is not None
        d.trust_versions = {"scheduler": 1, "vendor": 0}
    result = schedules.poll_schedule(sessions(), device_id="pump-1", counter=2, now=10**9 * 2,
                                     ctx=ctx)
    assert K_TRUST_UPDATE not in cbor2.loads(cose.verify1(result.document, [key.public_key()]))


def _page_commands() -> list[list[str]]:
    """The commands of docs/rotate-a-key.md's block that this test stands for."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "rotate-a-key.md").read_text()
    marker = "<!-- doc-test: tested-by tests/scheduler/test_trust_cli.py -->\n```sh\n"
    block = page[page.index(marker) + len(marker):].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.strip()]


def test_the_rotate_a_key_page_runs(cli: CliRunner, tmp_path: Path) -> None:
    write_key_pair(generate_private_key("ES256"), tmp_path / "acme-signing-2026.pem")
    write_key_pair(generate_private_key("ES256"), tmp_path / "acme-signing-2027.pem")
    run(cli, "init", "--trust-anchor", "acme-signing-2026.pub.pem")
    TOKENS.clear()
    TOKENS.update(cli_accounts(cli, app))
    run(cli, "device", "add", "pump-1", "--board", "sim", "--vendor-id", VENDOR_ID,
        "--class-id", CLASS_ID)
    commands = _page_commands()
    assert [c[:4] for c in commands] == [["suture", "scheduler", "trust", verb]
                                         for verb in ("sign", "publish", "status")]
    outputs = [run(cli, *command[2:]) for command in commands]
    assert "published vendor trust version 1" in outputs[1]
    assert "vendor v1" in outputs[2]
