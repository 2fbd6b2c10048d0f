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


def _vendor(tmp_path: Path, vendor_key: PrivateKey) -> tuple[VendorSettings, Path, int]:
    """A vendor's data folder on a free port with one release published (``_publish``), and
    the scheduler's GNAP client key (``gnap.pem``), and the port to serve it on."""
    write_key_pair(vendor_key, tmp_path / "vendor.pem")
    gnap_key = tmp_path / "gnap.pem"
    write_key_pair(generate_private_key("EdDSA"), gnap_key)
    with free_socket() as s:
        port = s.getsockname()[1]
    settings = VendorSettings(data_dir=tmp_path / "vendor-data",
                              public_url=f"http://127.0.0.1:{port}")
    settings.data_dir.mkdir()
    _publish(settings, vendor_key, tmp_path / "src")
    return settings, gnap_key, port


def test_the_operator_sees_the_vendors_verdict(cli: CliRunner, tmp_path: Path,
                                              vendor_key: PrivateKey) -> None:
    tokens = cli_accounts(cli, app)

    def run(*args: str, code: int = 0, as_: str = "alice") -> str:
        result = cli.invoke(app, ["scheduler", *args], env={"SUTURE_TOKEN": tokens[as_]})
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return str(result.output)

    settings, gnap_key, port = _vendor(tmp_path, vendor_key)
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


def test_the_devices_biscuits_are_listed_and_one_is_revoked(
        cli: CliRunner, tmp_path: Path, vendor_key: PrivateKey) -> None:
    """Vendor-run mode through the CLI: the granted rollout's devices hold biscuits; `rollout
    biscuits` lists their revocation ids (never the tokens), and once the vendor revokes one
    (`suture vendor biscuit revoke`) that device's biscuit is refused on /direct/, the other's
    still served."""
    import httpx
    from sqlalchemy import select
    from suture.cli.scheduler_cmd import _sessions
    from suture.scheduler.models import DeviceBiscuit
    from suture.vendor_services import biscuits

    tokens = cli_accounts(cli, app)

    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, list(args), env={"SUTURE_TOKEN": tokens["alice"]})
        assert result.exit_code == code, result.output
        return str(result.output)

    settings, gnap_key, port = _vendor(tmp_path, vendor_key)
    biscuits.generate_root_key(settings.biscuit_root_path)
    Registry.load(settings.registry_path).add_client(RegisteredClient(
        "st-mary", SigningKey.from_file(gnap_key).jwk(), releases=["pump-*"]))
    now = datetime.datetime.now(datetime.UTC)
    with vendor_serving(settings, port, lambda: datetime.datetime.now(datetime.UTC).timestamp()):
        run("scheduler", "vendor", "add", settings.releases_url, "--name", "acme",
            "--client-key", str(gnap_key), "--trust-anchor", "vendor.pub.pem",
            "--instance-id", "st-mary", "--biscuit-key", str(settings.biscuit_root_path))
        run("scheduler", "vendor", "mirror", "acme", "pump-2", "--device", "mirror", "--start",
            now.isoformat(), "--end", (now + datetime.timedelta(hours=1)).isoformat())
        for name in ("pump-0", "pump-1"):
            run("scheduler", "device", "add", name, "--board", "esp32-s3", "--vendor-id",
                VENDOR_ID, "--class-id", CLASS_ID, "--group", "ward-3", "--installed", "app=1")
        ro = json.loads(run("scheduler", "rollout", "create", "--release", "1", "--name",
                            "pumps", "--group", "ward-3", "--json"))["id"]
        assert "no biscuits" in run("scheduler", "rollout", "biscuits", str(ro))
        run("scheduler", "rollout", "grant", str(ro), "--vendor", "acme")
        listed = json.loads(run("scheduler", "rollout", "biscuits", str(ro), "--json"))
        assert [(b["device"], b["release"]) for b in listed] == [("pump-0", 1), ("pump-1", 1)]
        assert all("token" not in b for b in listed)
        _, sessions = _sessions(Path("scheduler.env"))
        with sessions() as session:
            held = {b.device_id: b.token for b in session.execute(select(DeviceBiscuit))
                    .scalars()}
        run("vendor", "biscuit", "revoke", listed[0]["revocation_id"], "--data",
            str(settings.data_dir))

        def fetch(device: str) -> int:
            return httpx.get(f"{settings.public_url}/direct/{device}/releases/pump-2/payload",
                             headers={"Authorization": f"Bearer {held[device]}"}).status_code

        assert (fetch("pump-0"), fetch("pump-1")) == (403, 200)
