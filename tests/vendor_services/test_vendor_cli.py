"""The command line: `suture vendor …` and `suture scheduler vendor …`, the latter against a
vendor server on loopback (uvicorn), mirroring into a migrated SQLite scheduler database."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from suture.cli.main import app as suture_app
from suture.cli.scheduler_vendor_cmd import register_into
from suture.keys import generate_private_key, write_key_pair
from suture.vendor_services.gnap.client import GnapClient
from suture.vendor_services.gnap.clients import RegisteredClient, Registry
from suture.vendor_services.gnap.rights import release_access
from suture.vendor_services.httpsig import SigningKey, sign_request
from suture.vendor_services.repository.store import ReleaseStore
from suture.vendor_services.settings import VendorSettings
from typer.testing import CliRunner
from vendor_loopback import free_port, serving

runner = CliRunner()
DESCRIPTION = {
    "sequence-number": 12,
    "vendor-id": "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
    "class-id": "1492af14-2569-5e48-bf42-9b2d51f2ab45",
    "components": [{"id": ["app"], "file": "app.bin", "uri": "https://vendor.example/app"}],
}


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(suture_app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def keys(tmp_path: Path, name: str, alg: str = "ES256") -> tuple[Path, Path]:
    return write_key_pair(generate_private_key(alg), tmp_path / f"{name}.pem")


@pytest.fixture
def release_dir(tmp_path: Path) -> Path:
    src = tmp_path / "release"
    src.mkdir()
    (src / "app.bin").write_bytes(b"pump firmware 12\n" * 100)
    (src / "release.json").write_text(json.dumps(DESCRIPTION))
    (src / "sbom.json").write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5"}))
    (src / "notes.md").write_text("# 12\n")
    return src


def publish(data: Path, src: Path, key: Path, release: str = "app-12",
            *extra: str) -> tuple[int, str, str]:
    return run("vendor", "publish", release, "--description", src / "release.json",
               "--key", key, "--sbom", src / "sbom.json", "--notes", src / "notes.md",
               "--data", data, *extra)


def test_publish_and_list(tmp_path: Path, release_dir: Path) -> None:
    data = tmp_path / "vendor"
    private, _ = keys(tmp_path, "vendor")
    code, out, _ = publish(data, release_dir, private)
    assert code == 0, out
    assert "published app-12" in out
    code, out, err = publish(data, release_dir, private)
    assert code == 1
    assert "already published" in err
    assert "Traceback" not in out + err
    code, out, _ = run("vendor", "releases", "--data", data)
    assert (code, out.split()[0]) == (0, "app-12")
    code, _, err = publish(data, release_dir, tmp_path / "missing.pem", "app-13")
    assert code == 2  # an unreadable input file
    assert "error:" in err
    code, out, _ = run("vendor", "releases", "--data", data, "--json")
    assert code == 0
    assert [r["id"] for r in json.loads(out)] == ["app-12"]


def test_client_registration(tmp_path: Path) -> None:
    data = tmp_path / "vendor"
    _, public = keys(tmp_path, "scheduler", "EdDSA")
    code, out, err = run("vendor", "client", "add", "st-mary", "--key", public, "--release",
                         "app-*", "--max-devices", "50", "--max-window", "7d", "--data", data)
    assert code == 0, err
    registry = json.loads((data / "clients.json").read_text())["clients"][0]
    assert registry["max_window_seconds"] == 7 * 86_400
    assert registry["releases"] == ["app-*"]
    code, out, _ = run("vendor", "client", "list", "--data", data)
    assert "st-mary" in out
    code, out, _ = run("vendor", "client", "list", "--data", data, "--json")
    listed = json.loads(out)
    assert [(c["instance_id"], c["max_devices"]) for c in listed] == [("st-mary", 50)]
    code, _, err = run("vendor", "client", "add", "bad id!", "--key", public, "--data", data)
    assert code == 1
    assert "instance id" in err
    code, _, err = run("vendor", "client", "add", "x", "--key", tmp_path / "no.pem",
                       "--data", data)
    assert (code, "No such file" in err) == (2, True)
    assert run("vendor", "client", "remove", "st-mary", "--data", data)[0] == 0
    assert run("vendor", "client", "remove", "st-mary", "--data", data)[0] == 1


def test_biscuit_commands(tmp_path: Path) -> None:
    data = tmp_path / "vendor"
    assert run("vendor", "biscuit", "keygen", "--data", data)[0] == 0
    assert run("vendor", "biscuit", "keygen", "--data", data)[0] == 1  # no silent replacement
    code, token, err = run("vendor", "biscuit", "issue", "pump-1", "--release", "app-12",
                           "--release", "app-13", "--expires-in", "30d", "--data", data)
    assert code == 0, err
    code, narrow, err = run("vendor", "biscuit", "attenuate", token.strip(), "--release",
                            "app-12", "--expires-in", "10m", "--data", data)
    assert code == 0, err
    code, out, _ = run("vendor", "biscuit", "inspect", narrow.strip(), "--data", data)
    assert (code, "revocation id" in out) == (0, True)
    code, out, _ = run("vendor", "biscuit", "inspect", narrow.strip(), "--data", data, "--json")
    blocks = json.loads(out)
    assert 'device("pump-1")' in blocks[0]["source"]
    assert 'check if request_release("app-12")' in blocks[1]["source"]
    assert run("vendor", "biscuit", "revoke", blocks[1]["revocation_id"], "--data", data)[0] == 0
    assert blocks[1]["revocation_id"] in (data / "revoked-biscuits.txt").read_text()
    code, _, err = run("vendor", "biscuit", "issue", "pump-1", "--release", "a",
                       "--expires-in", "soon", "--data", data)
    assert code == 2
    assert "duration" in err
    other = tmp_path / "other"
    run("vendor", "biscuit", "keygen", "--data", other)
    code, _, err = run("vendor", "biscuit", "inspect", token.strip(), "--data", other)
    assert (code, "root key" in err) == (1, True)


@pytest.fixture
def loopback_vendor(tmp_path: Path) -> Iterator[VendorSettings]:
    port = free_port()
    settings = VendorSettings(data_dir=tmp_path / "vendor", public_url=f"http://127.0.0.1:{port}")
    with serving(settings, port):
        yield settings


class TlsTerminator(httpx.BaseTransport):
    """Stands for a reverse proxy: the client uses the public https URL, the server is
    reached over plain HTTP on loopback."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return self.inner.handle_request(request)


@pytest.mark.slow
def test_signatures_cover_the_public_url_behind_a_proxy(tmp_path: Path) -> None:
    port = free_port()
    public = "https://updates.vendor.example"
    settings = VendorSettings(data_dir=tmp_path / "vendor", public_url=public)
    key = SigningKey.generate("ES256")
    settings.data_dir.mkdir()
    Registry.load(settings.registry_path).add_client(RegisteredClient("st-mary", key.jwk()))
    ReleaseStore(settings.releases_dir).publish(
        "app-1", envelope=b"e", payload=b"firmware", sbom=b"{}", notes=b"n", published_at=0)
    now = int(time.time())
    with serving(settings, port), httpx.Client(transport=TlsTerminator(port)) as http:
        client = GnapClient(http, grant_endpoint=f"{public}/gnap", key=key,
                            instance_id="st-mary")
        grant = client.request_grant([release_access(
            "app-1", devices=["pump-1"], window_start=now, window_end=now + 3600)])
        assert client.fetch(grant, f"{public}/releases/app-1/payload").content == b"firmware"
        # Signed for the address the server sees instead of the public one: refused.
        response = http.get(f"{public}/releases/app-1/payload", headers=sign_request(
            key, "GET", f"http://127.0.0.1:{port}/releases/app-1/payload",
            {"Authorization": f"GNAP {grant.token.value}"}))
        assert (response.status_code, response.json()["error"]["code"]) == (
            401, "invalid_signature")
        client.finish(grant)


def _release_manager(config: Path, trust_anchor: Path, home: Path) -> str:
    """`suture scheduler init` with an administrator, who makes a release manager: its token."""
    password = "correct horse battery staple"

    def sched(*args: str | Path, stdin: str | None = None, token: str = "") -> str:
        result = runner.invoke(suture_app, ["scheduler", *[str(a) for a in args]], input=stdin,
                               env={"SUTURE_TOKEN": token, "XDG_CONFIG_HOME": str(home)})
        assert result.exit_code == 0, result.output
        return str(result.stdout)

    sched("init", "--config", config, "--trust-anchor", trust_anchor, "--admin", "root",
          "--password-stdin", stdin=password + "\n")
    admin = sched("login", "root", "--config", config, "--password-stdin", "--print",
                  stdin=password + "\n").strip()
    sched("operator", "add", "rita", "--no-password", "--role", "release_manager", "--config",
          config, token=admin)
    issued = json.loads(sched("token", "create", "--for", "rita", "--config", config, "--json",
                              token=admin))
    return str(issued["token"])


@pytest.mark.slow
def test_scheduler_mirrors_from_a_vendor_on_loopback(
    tmp_path: Path, release_dir: Path, loopback_vendor: VendorSettings
) -> None:
    data = loopback_vendor.data_dir
    vendor_private, vendor_public = keys(tmp_path, "vendor")
    client_private, client_public = keys(tmp_path, "gnap-client", "EdDSA")
    assert publish(data, release_dir, vendor_private)[0] == 0
    assert run("vendor", "client", "add", "st-mary", "--key", client_public, "--data", data,
               "--release", "app-*")[0] == 0
    # The running server picks up the client registered on disk by its next grant request.
    scheduler = typer.Typer()
    register_into(scheduler)
    vendors = tmp_path / "vendors.json"
    url = loopback_vendor.releases_url

    token = ""

    def sched(*args: str | Path) -> tuple[int, str, str]:
        result = runner.invoke(scheduler, ["vendor", *[str(a) for a in args]],
                               env={"SUTURE_TOKEN": token})
        return result.exit_code, result.stdout, result.stderr

    code, out, err = sched("add", url, "--name", "acme", "--client-key", client_private,
                           "--trust-anchor", vendor_public, "--instance-id", "st-mary",
                           "--vendors", vendors)
    assert code == 0, err
    assert f"authorization server {loopback_vendor.grant_endpoint}" in out
    code, out, _ = sched("list", "--vendors", vendors)
    assert "acme" in out
    # The scheduler's own settings file and database, as `suture scheduler init` makes them,
    # and a release manager signed in (the mirror imports as an operator).
    config = tmp_path / "scheduler.env"
    token = _release_manager(config, vendor_public, tmp_path)
    now = datetime.datetime.now(datetime.UTC)
    window = ["--start", now.isoformat(), "--end", (now + datetime.timedelta(days=2)).isoformat()]
    code, out, err = sched("mirror", "acme", "app-12", "--device", "pump-1", "--device",
                           "pump-2", *window, "--config", config, "--vendors", vendors)
    assert code == 0, err
    assert "imported app-12 as release" in out
    assert "(app #12)" in out
    # Done: the grant was revoked, and the same release cannot be imported twice.
    code, out, err = sched("mirror", "acme", "app-12", "--device", "pump-1", *window,
                           "--config", config, "--vendors", vendors)
    assert code == 1
    assert "exists" in err
    assert "Traceback" not in out + err
    # The release is in the scheduler, as its own CLI sees it.
    listed = runner.invoke(suture_app, ["scheduler", "release", "list", "--config", str(config),
                                        "--json"], env={"SUTURE_TOKEN": token})
    code, out, err = listed.exit_code, listed.stdout, listed.stderr
    assert code == 0, err
    assert [r["sequence_number"] for r in json.loads(out)] == [12]


def test_scheduler_vendor_add_refuses_what_is_not_gnap(tmp_path: Path) -> None:
    scheduler = typer.Typer()
    register_into(scheduler)
    client_private, _ = keys(tmp_path, "c")
    _, anchor = keys(tmp_path, "v")
    result = runner.invoke(scheduler, [
        "vendor", "add", "http://127.0.0.1:9/releases/", "--name", "x", "--client-key",
        str(client_private), "--trust-anchor", str(anchor), "--vendors",
        str(tmp_path / "v.json"),
    ])
    assert result.exit_code == 1
    assert "not a GNAP-protected repository" in result.stderr
    assert not (tmp_path / "v.json").exists()


def release_of(tmp_path: Path, seq: int, payload: bytes) -> Path:
    """A release's source files: DESCRIPTION with sequence number ``seq`` and ``payload``."""
    src = tmp_path / f"release-{seq}"
    src.mkdir(parents=True)
    (src / "app.bin").write_bytes(payload)
    (src / "release.json").write_text(json.dumps({**DESCRIPTION, "sequence-number": seq}))
    (src / "sbom.json").write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5"}))
    (src / "notes.md").write_text(f"# {seq}\n")
    return src


FIRMWARE = b"".join(f"pump firmware block {i:05d}\n".encode() for i in range(2000))


def test_publish_with_deltas(tmp_path: Path) -> None:
    data = tmp_path / "vendor"
    private, _ = keys(tmp_path, "vendor")
    assert publish(data, release_of(tmp_path, 11, FIRMWARE), private, "app-11")[0] == 0
    twelve = release_of(tmp_path, 12, FIRMWARE.replace(b"block 01000", b"BLOCK 01000"))
    code, out, err = publish(data, twelve, private, "app-12", "--delta-from", "app-11")
    assert code == 0, err
    patch = json.loads((data / "releases" / "app-12" / "release.json").read_text())[
        "deltas"]["app-11"]["patch"]["size"]
    assert f"delta from app-11: patch {patch} B of {len(FIRMWARE)} B" in out
    thirteen = release_of(tmp_path, 13, FIRMWARE.replace(b"block 01001", b"BLOCK 01001"))
    # refused: nothing published
    for source, reason in (("app-10", "no published release 'app-10'"),
                           ("app-13", "no published release 'app-13'"),
                           ("app-12", "not earlier")):
        seq = 11 if source == "app-12" else 13
        src = thirteen if seq == 13 else release_of(tmp_path / "again", seq, FIRMWARE)
        code, out, err = publish(data, src, private, f"app-{seq}b", "--delta-from", source)
        assert code == 1, out
        assert reason in err
        assert "Traceback" not in out + err
    code, out, err = publish(data, thirteen, private, "app-13", "--delta-from", "app-11",
                             "--delta-from", "app-12", "--json")
    assert code == 0, err
    meta = json.loads(out)
    assert sorted(meta["deltas"]) == ["app-11", "app-12"]
    code, out, _ = run("vendor", "releases", "--data", data)
    assert [x.split()[0] for x in out.splitlines()] == ["app-11", "app-12", "app-13"]
    line = out.splitlines()[2]
    assert f"from app-11 {meta['deltas']['app-11']['patch']['size']} B" in line


@pytest.mark.slow
def test_scheduler_mirrors_a_release_and_its_deltas_on_loopback(
    tmp_path: Path, loopback_vendor: VendorSettings
) -> None:
    data = loopback_vendor.data_dir
    vendor_private, vendor_public = keys(tmp_path, "vendor")
    client_private, client_public = keys(tmp_path, "gnap-client", "EdDSA")
    for seq, sources in ((10, ()), (11, ()), (12, ("app-11",)), (13, ("app-10", "app-12"))):
        src = release_of(tmp_path, seq, FIRMWARE.replace(b"block 00100", f"v{seq}".encode()))
        extra = [a for s in sources for a in ("--delta-from", s)]
        assert publish(data, src, vendor_private, f"app-{seq}", *extra)[0] == 0
    assert run("vendor", "client", "add", "st-mary", "--key", client_public, "--data", data,
               "--release", "app-*")[0] == 0
    scheduler = typer.Typer()
    register_into(scheduler)
    vendors = tmp_path / "vendors.json"
    config = tmp_path / "scheduler.env"
    token = _release_manager(config, vendor_public, tmp_path)

    def sched(*args: str | Path) -> tuple[int, str, str]:
        result = runner.invoke(scheduler, ["vendor", *[str(a) for a in args]],
                               env={"SUTURE_TOKEN": token})
        return result.exit_code, result.stdout, result.stderr

    code, _, err = sched("add", loopback_vendor.releases_url, "--name", "acme", "--client-key",
                         client_private, "--trust-anchor", vendor_public, "--instance-id",
                         "st-mary", "--vendors", vendors)
    assert code == 0, err
    now = datetime.datetime.now(datetime.UTC)
    window = ["--device", "pump-1", "--start", now.isoformat(), "--end",
              (now + datetime.timedelta(days=2)).isoformat(), "--config", config,
              "--vendors", vendors]
    code, out, err = sched("mirror", "acme", "app-11", *window)
    assert code == 0, err
    assert "delta" not in out
    code, out, err = sched("mirror", "acme", "app-12", *window)
    assert code == 0, err
    patch = json.loads((data / "releases" / "app-12" / "release.json").read_text())[
        "deltas"]["app-11"]["patch"]["size"]
    assert f"delta from app-11 (release 1): imported as delta 1, patch {patch} B" in out
    # app-10 was never mirrored here: its delta is skipped, and said so.
    code, out, err = sched("mirror", "acme", "app-13", *window, "--json")
    assert code == 0, err
    got = {d["source"]: d for d in json.loads(out)["deltas"]}
    assert (got["app-12"]["status"], got["app-12"]["source_release"]) == ("imported", 2)
    assert got["app-10"]["status"] == "skipped"
    assert "no earlier release here has its source image" in got["app-10"]["reason"]
    listed = runner.invoke(suture_app, ["scheduler", "release", "delta", "list", "3",
                                        "--config", str(config), "--json"],
                           env={"SUTURE_TOKEN": token})
    assert listed.exit_code == 0, listed.stderr
    assert [d["source_release_id"] for d in json.loads(listed.stdout)] == [2]
