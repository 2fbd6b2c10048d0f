"""`suture scheduler release delta import|list`: a vendor-signed delta uploaded from the command
line for a release (verified, stored, listed, as a table and as JSON, the same record the API
shows); a delta that does not verify or is not of the release is refused in one line and
nothing is stored; a viewer may list but not import."""

from __future__ import annotations

import json
from pathlib import Path

from sched_world import cli_accounts, make_envelope, sbom_path
from suture.cli.main import app
from suture.delta import make_delta
from suture.keys import PrivateKey, generate_private_key, write_key_pair
from test_delta_import_api import signed_delta
from typer.testing import CliRunner


def test_a_delta_from_the_command_line(cli: CliRunner, tmp_path: Path,
                                       vendor_key: PrivateKey) -> None:
    write_key_pair(vendor_key, tmp_path / "vendor.pem")
    cli.invoke(app, ["scheduler", "init", "--trust-anchor", "vendor.pub.pem"])
    tokens = cli_accounts(cli, app)

    def run(*args: str, code: int = 0, as_: str = "alice") -> str:
        result = cli.invoke(app, ["scheduler", *args],
                            env={"SUTURE_TOKEN": tokens[as_], "COLUMNS": "200"})
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    payloads = []
    for seq in (1, 2, 3):
        envelope, payload = make_envelope(vendor_key, tmp_path, seq)
        (tmp_path / f"app-{seq}.suit").write_bytes(envelope)
        run("release", "import", f"app-{seq}.suit", f"app-{seq}.bin", "--sbom",
            sbom_path(tmp_path, seq).name)
        payloads.append(payload)
    d = make_delta(*payloads[:2])
    (tmp_path / "app-2.delta").write_bytes(d.patch)
    (tmp_path / "app-2.delta.suit").write_bytes(signed_delta(vendor_key, d, 2))
    (tmp_path / "other.delta.suit").write_bytes(
        signed_delta(generate_private_key("ES256"), d, 2))
    bad = bytearray(d.patch)
    bad[-1] ^= 1
    (tmp_path / "bad.delta").write_bytes(bytes(bad))

    # refused, in one line each, and nothing stored
    for args, message in (
        (("1", "app-2.delta.suit", "app-2.delta"), "the delta is not of release 1"),
        (("2", "other.delta.suit", "app-2.delta"), "delta envelope does not verify"),
        (("2", "app-2.delta.suit", "bad.delta"), "the patch does not match"),
    ):
        out = run("release", "delta", "import", *args, code=1)
        assert message in out, out
        assert out.count("\n") == 1, out
    out = run("release", "delta", "import", "2", "app-2.delta.suit", "app-2.delta", code=1,
              as_="vera")
    assert "release:import" in out, out
    assert json.loads(run("release", "delta", "list", "2", "--json", as_="vera")) == []

    imported = json.loads(run("release", "delta", "import", "2", "app-2.delta.suit",
                              "app-2.delta", "--json"))
    assert (imported["release_id"], imported["source_release_id"], imported["payload_size"],
            imported["imported_by"]) == (2, 1, len(d.patch), "alice")
    assert json.loads(run("release", "delta", "list", "2", "--json", as_="vera")) == [imported]
    table = run("release", "delta", "list", "2")
    assert f"{imported['id']}" in table
    assert str(len(d.patch)) in table
    assert imported["payload_digest"][:16] in table
    out = run("release", "delta", "import", "2", "app-2.delta.suit", "app-2.delta", code=1)
    assert "has a delta from release 1" in out
    assert "no release 9" in run("release", "delta", "list", "9", code=1)
    # the line a person reads: which delta, of which release, from which, how large
    d3 = make_delta(*payloads[1:])
    (tmp_path / "app-3.delta").write_bytes(d3.patch)
    (tmp_path / "app-3.delta.suit").write_bytes(signed_delta(vendor_key, d3, 3))
    out = run("release", "delta", "import", "3", "app-3.delta.suit", "app-3.delta")
    assert out.strip() == (f"delta {imported['id'] + 1} of release 3 from release 2 "
                           f"({len(d3.patch)} bytes) verified and imported"), out
