"""A release's import refuses an SBOM that is missing, malformed, altered or another
release's (nothing stored), accepts the one its signed manifest binds, records which in the
audit log, and the API shows the SBOM and its difference from another release's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sched_world import (
    Api,
    World,
    cli_accounts,
    make_envelope,
    make_release,
    release_upload,
    sbom_path,
)
from sqlalchemy import func, select
from suture.cli.main import app
from suture.keys import PrivateKey, write_key_pair
from suture.scheduler.errors import ReleaseVerificationError
from suture.scheduler.models import Release
from suture.scheduler.services import audit, releases
from suture.suit.sbom_build import build_sbom
from typer.testing import CliRunner


def _import(world: World, envelope: bytes, payload: bytes, sbom: bytes | None,
            **kw: Any) -> Release:
    return releases.import_release(
        world.session(), envelope=envelope, payload=payload, sbom=sbom, notes=None,
        trust_anchors=[world.vendor_key.public_key()], actor=world.alice,
        now=world.clock.now(), **kw)


def _stored(world: World) -> int:
    with world.session() as s:
        return int(s.execute(select(func.count()).select_from(Release)).scalar_one())


def _import_audit(world: World) -> dict[str, Any]:
    with world.session() as s:
        rec = next(r for r in audit.recent(s) if r.action == "release.import")
        detail: dict[str, Any] = json.loads(rec.detail)
        return detail


def test_the_bound_sbom_is_stored_and_audited(world: World) -> None:
    envelope, payload, sbom = make_release(world.vendor_key, world.tmp, 2)
    rel = _import(world, envelope, payload, sbom)
    assert rel.sbom_digest is not None
    detail = _import_audit(world)
    assert detail["sbom"]["status"] == "bound"
    assert detail["sbom"]["sha256"] == rel.sbom_digest


def _altered(sbom: bytes) -> bytes:
    doc = json.loads(sbom)
    doc["components"][0]["name"] = "app-2-patched.bin"
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("case", "message"), [
    ("missing", "the manifest names an SBOM"),
    ("not json", "not JSON"),
    ("not cyclonedx", "bomFormat"),
    ("schema", "not valid CycloneDX"),
    ("altered", "not the one the signed manifest names"),
    ("another release's", "not the one the signed manifest names"),
])
def test_a_bad_sbom_is_refused_and_nothing_is_stored(world: World, case: str,
                                                     message: str) -> None:
    envelope, payload, sbom = make_release(world.vendor_key, world.tmp, 2)
    other = build_sbom("app", "3", {"app-3.bin": b"another payload"})
    given: bytes | None = {
        "missing": None,
        "not json": b"{components: [",
        "not cyclonedx": b'{"bomFormat": "SPDX", "specVersion": "1.6"}',
        "schema": b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": 3}',
        "altered": _altered(sbom),
        "another release's": other,
    }[case]
    with pytest.raises(ReleaseVerificationError, match=message):
        _import(world, envelope, payload, given)
    assert _stored(world) == 0


def test_a_release_binding_no_sbom_is_refused_unless_the_setting_allows(world: World) -> None:
    envelope, payload = make_envelope(world.vendor_key, world.tmp, 2, with_sbom=False)
    with pytest.raises(ReleaseVerificationError, match="allow_releases_without_sbom"):
        _import(world, envelope, payload, None)
    assert _stored(world) == 0
    rel = _import(world, envelope, payload, None, allow_missing_sbom=True)
    assert rel.sbom_digest is None
    assert _import_audit(world)["sbom"] == {"status": "missing-allowed"}


def test_an_sbom_the_manifest_does_not_bind_is_refused_even_when_allowed(world: World) -> None:
    envelope, payload = make_envelope(world.vendor_key, world.tmp, 2, with_sbom=False)
    sbom = build_sbom("app", "2", {"app-2.bin": payload})
    with pytest.raises(ReleaseVerificationError, match="names no SBOM"):
        _import(world, envelope, payload, sbom, allow_missing_sbom=True)
    assert _stored(world) == 0


def test_the_api_shows_the_sbom_and_the_difference(api: Api, vendor_key: PrivateKey,
                                                    tmp_path: Path) -> None:
    ids = []
    for seq in (2, 3):
        r = api.client.post("/api/v1/releases", headers=api.op,
                            json=release_upload(*make_release(vendor_key, tmp_path, seq)))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    shown = api.client.get(f"/api/v1/releases/{ids[0]}/sbom", headers=api.as_("carol"))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["digest"] == json.loads(
        api.client.get(f"/api/v1/releases/{ids[0]}", headers=api.op).text)["sbom_digest"]
    assert [c["name"] for c in body["components"]] == ["app-2.bin", "micropython"]
    assert body["licenses"] == ["MIT"]
    assert body["digest"] == hashlib.sha256(sbom_path(tmp_path, 2).read_bytes()).hexdigest()
    diff = api.client.get(f"/api/v1/releases/{ids[1]}/sbom/diff?against={ids[0]}",
                          headers=api.op).json()
    assert [c["name"] for c in diff["added"]] == ["app-3.bin"]
    assert [c["name"] for c in diff["removed"]] == ["app-2.bin"]
    assert diff["changed"] == []
    missing = api.client.get("/api/v1/releases/99/sbom", headers=api.op)
    assert missing.status_code == 404


def test_the_cli_shows_the_stored_sbom_and_the_difference(cli: CliRunner, vendor_key: PrivateKey,
                                                           tmp_path: Path) -> None:
    write_key_pair(vendor_key, tmp_path / "vendor.pem")
    assert cli.invoke(app, ["scheduler", "init", "--trust-anchor", "vendor.pub.pem"]
                      ).exit_code == 0
    tokens = cli_accounts(cli, app)

    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, ["scheduler", *args], env={"SUTURE_TOKEN": tokens["alice"]})
        assert result.exit_code == code, result.output
        return str(result.output)

    for seq in (2, 3):
        envelope, _ = make_envelope(vendor_key, tmp_path, seq)
        (tmp_path / f"app-{seq}.suit").write_bytes(envelope)
        run("release", "import", f"app-{seq}.suit", f"app-{seq}.bin",
            "--sbom", f"app-{seq}.cdx.json")
    out = run("release", "sbom", "1")
    assert "release 1: CycloneDX 1.6 for app 2, 2 components" in out
    diff = json.loads(run("release", "sbom", "2", "--against", "1", "--json"))
    assert ([c["name"] for c in diff["added"]], [c["name"] for c in diff["removed"]]) == (
        ["app-3.bin"], ["app-2.bin"])
    assert "no release 7" in run("release", "sbom", "7", code=1)
