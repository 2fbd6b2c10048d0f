"""The operator's view, through the CLI against the vendor's services on loopback: a rollout of
a mirrored release is planned, the vendor refuses it and says why (`rollout grant`, `rollout
show --json`), it cannot start; once the vendor's policy allows it, it is granted and starts."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from sched_world import CLASS_ID, VENDOR_ID, cli_accounts
from suture.cli.main import app
from suture.keys import PrivateKey, generate_private_key, write_key_pair
from suture.suit.sbom_build import build_sbom
from suture.vendor_services.gnap.clients import RegisteredClient, Registry
from suture.vendor_services.gnap.policies import PolicyStore, RolloutPolicy
from suture.vendor_services.httpsig import SigningKey
from suture.vendor_services.repository.publish import ReleaseFiles, publish_release
from suture.vendor_services.repository.store import ReleaseStore
from suture.vendor_services.settings import VendorSettings
from suture.ward.server import free_socket
from test_direct_download_on_sim import vendor_serving
from typer.testing import CliRunner


def _publish(settings: VendorSettings, key: PrivateKey, base: Path) -> None:
    base.mkdir()
    data = b"pump app #2\n" * 64
    (base / "app.bin").write_bytes(data)
    (base / "release.json").write_text(json.dumps({
        "sequence-number": 2, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
        "components": [{"id": ["app"], "file": "app.bin", "uri": "https://vendor.example/a"}]}))
    (base / "sbom.json").write_bytes(build_sbom("pump-app", "2", {"app.bin": data}))
    (base / "notes.md").write_text("# 2\n")
    publish_release(ReleaseStore(settings.releases_dir), "pump-2",
                    ReleaseFiles(base / "release.json", base / "sbom.json", base / "notes.md"),
                    key, published_at=0)


def test_the_operator_sees_the_vendors_verdict(cli: CliRunner, tmp_path: Path,
                                              vendor_key: PrivateKey) -> None:
    tokens = cli_accounts(cli, app)

    def run(*args: str, code: int = 0, as_: str = "alice") -> str:
        result = cli.invoke(app, ["scheduler", *args], env={"SUTURE_TOKEN": tokens[as_]})
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return str(result.output)

    write_key_pair(vendor_key, tmp_path / "vendor.pem")
    gnap_key = tmp_path / "gnap.pem"
    write_key_pair(generate_private_key("EdDSA"), gnap_key)
    with free_socket() as s:
        port = s.getsockname()[1]
    settings = VendorSettings(data_dir=tmp_path / "vendor-data",
                              public_url=f"http://127.0.0.1:{port}")
    settings.data_dir.mkdir()
    _publish(settings, vendor_key, tmp_path / "src")
    Registry.load(settings.registry_path).add_client(RegisteredClient(
        "st-mary", SigningKey.from_file(gnap_key).jwk(), releases=["pump-*"]))
    policies = PolicyStore.load(settings.policies_path)
    policies.put(RolloutPolicy(client="st-mary", release="pump-*", max_devices=1))
    now = datetime.datetime.now(datetime.UTC)
    with vendor_serving(settings, port, lambda: datetime.datetime.now(datetime.UTC).timestamp()):
        run("vendor", "add", settings.releases_url, "--name", "acme", "--client-key",
            str(gnap_key), "--trust-anchor", "vendor.pub.pem", "--instance-id", "st-mary")
        run("vendor", "mirror", "acme", "pump-2", "--device", "mirror", "--start",
            now.isoformat(), "--end", (now + datetime.timedelta(hours=1)).isoformat())
        for name in ("pump-0", "pump-1"):
            run("device", "add", name, "--board", "esp32-s3", "--vendor-id", VENDOR_ID,
                "--class-id", CLASS_ID, "--group", "ward-3", "--installed", "app=1")
        ro = json.loads(run("rollout", "create", "--release", "1", "--name", "pumps",
                            "--group", "ward-3", "--json"))["id"]
        shown = json.loads(run("rollout", "show", str(ro), "--json"))["vendor"]
        assert shown["verdict"] == "not asked"
        out = run("rollout", "grant", str(ro), "--vendor", "acme", code=1)
        assert "vendor acme refused: 2 devices is more than the 1 the vendor allows" in out
        shown = json.loads(run("rollout", "show", str(ro), "--json"))["vendor"]
        assert shown["verdict"] == "refused"
        assert shown["allows_start"] is False
        assert "REFUSED: 2 devices" in run("rollout", "show", str(ro))
        run("rollout", "approve", str(ro), as_="bob")
        assert "2 devices is more than the 1" in run("rollout", "start", str(ro), code=1)
        # The vendor allows two: the same rollout is granted and starts.
        policies.put(RolloutPolicy(client="st-mary", release="pump-*", max_devices=2))
        out = json.loads(run("rollout", "grant", str(ro), "--vendor", "acme", "--json"))
        assert out["allows_start"] is True
        assert out["rights"]["rollout"]["count"] == 2
        assert "acme: granted (http://127.0.0.1:" in run("rollout", "show", str(ro))
        assert "running" in run("rollout", "start", str(ro))
        assert "every grant still holds" in run("vendor", "check", "acme")
