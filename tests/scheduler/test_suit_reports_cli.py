"""`suture scheduler device suit-reports ID`: the SUIT reports a device sent, decoded (the
failing command's record and reason, the conditions that held, the installed digest), as a
table and as JSON; an unknown device is an error."""

from __future__ import annotations

import json
from pathlib import Path

from sched_world import CLASS_ID, VENDOR_ID, cli_accounts
from suture.cli.main import app
from suture.formats.suit_report import PROPERTY_COMMAND
from suture.scheduler.config import load_settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.services import suit_reports
from suture.scheduler.services.audit import load_audit_key
from suture.suit import codepoints as cp
from suture.suit.digest import digest_bytes
from suture.suit.report import SuitRecord, encode_report, report_from_device
from typer.testing import CliRunner


def test_a_devices_suit_reports_as_json_and_table(cli: CliRunner) -> None:
    cli.invoke(app, ["scheduler", "init"])
    tokens = cli_accounts(cli, app)
    env = {"SUTURE_TOKEN": tokens["alice"], "COLUMNS": "250"}

    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, ["scheduler", *args], env=env)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    run("device", "add", "pump-1", "--board", "sim", "--vendor-id", VENDOR_ID,
        "--class-id", CLASS_ID)
    manifest = digest_bytes(b"manifest")
    failed = report_from_device(
        {"state": "failed", "installed": {"app": 3}, "error": {"code": 31, "message": "digest"}},
        manifest_digest=manifest,
        records=[SuitRecord((), cp.MANIFEST_COMMON, 4, 0, {PROPERTY_COMMAND: 1})],
        failed_at=SuitRecord((), cp.MANIFEST_INSTALL, 9, 0, {PROPERTY_COMMAND: 3}))
    settings = load_settings(Path("scheduler.env"))
    sessions = make_session_factory(make_engine(settings.database_url),
                                    audit_key=load_audit_key(settings.audit_key_path))
    with sessions() as session:
        suit_reports.record_suit_report(session, device_id="pump-1", counter=5,
                                        body=encode_report(failed), now=1_767_225_600)
    shown = json.loads(run("device", "suit-reports", "pump-1", "--json"))
    (report,) = shown["reports"]
    assert (report["succeeded"], report["result_code"], report["kind"]) == (False, 31, "MAC")
    assert report["result"]["record"]["properties"] == {"command": "condition-image-match"}
    assert report["records"][0]["section"] == "common"
    table = run("device", "suit-reports", "pump-1")
    assert "31 condition-failed" in table
    assert "install+9 #0 condition-image-match" in table
    assert "unknown" not in run("device", "suit-reports", "pump-9", code=1)
