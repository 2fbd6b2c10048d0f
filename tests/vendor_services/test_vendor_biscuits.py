"""Biscuits for direct download: issue, attenuate, authorize, and every refusal."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from biscuit_auth import KeyPair
from fastapi.testclient import TestClient
from suture.vendor_services import biscuits
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.repository.store import ReleaseStore
from suture.vendor_services.settings import VendorSettings

NOW = datetime.datetime(2027, 1, 15, 12, 0, tzinfo=datetime.UTC)
RELEASES = ["app-1.0.0", "app-2.0.0"]


@pytest.fixture
def root(tmp_path: Path) -> KeyPair:
    path = tmp_path / "root.pem"
    biscuits.generate_root_key(path)
    return biscuits.load_root_key(path)


def device_token(root: KeyPair, device: str = "pump-0017", days: int = 30) -> str:
    token = biscuits.issue(
        root.private_key, device_id=device, releases=RELEASES,
        expires=NOW + datetime.timedelta(days=days),
    )
    return token.to_base64()


def check(root: KeyPair, data: str, *, device: str = "pump-0017", release: str = "app-2.0.0",
          now: datetime.datetime = NOW, revoked: frozenset[str] = frozenset()) -> None:
    token = biscuits.parse(data, root.public_key)
    biscuits.authorize(token, device_id=device, release=release, now=now, revoked=revoked)


def test_issued_biscuit_allows_its_device_and_releases(root: KeyPair) -> None:
    data = device_token(root)
    for release in RELEASES:
        check(root, data, release=release)
    with pytest.raises(biscuits.BiscuitError, match="does not allow"):
        check(root, data, release="app-3.0.0")


def test_attenuated_biscuit_is_narrower(root: KeyPair) -> None:
    token = biscuits.parse(device_token(root), root.public_key)
    narrow = biscuits.attenuate(
        token, release="app-2.0.0", expires=NOW + datetime.timedelta(minutes=10)
    ).to_base64()
    check(root, narrow, release="app-2.0.0")
    # Used beyond its block: another release, or after the block's shorter expiry.
    with pytest.raises(biscuits.BiscuitError, match="does not allow"):
        check(root, narrow, release="app-1.0.0")
    with pytest.raises(biscuits.BiscuitError, match="does not allow"):
        check(root, narrow, now=NOW + datetime.timedelta(minutes=11))


def test_a_block_cannot_widen_the_rights(root: KeyPair) -> None:
    from biscuit_auth import BlockBuilder

    token = biscuits.parse(device_token(root), root.public_key)
    widened = token.append(BlockBuilder('release("app-9.9.9"); device("pump-0001");'))
    with pytest.raises(biscuits.BiscuitError):
        check(root, widened.to_base64(), release="app-9.9.9")
    with pytest.raises(biscuits.BiscuitError):
        check(root, widened.to_base64(), device="pump-0001")


def test_biscuit_signed_by_another_root(root: KeyPair) -> None:
    other = KeyPair()
    forged = device_token(other)
    with pytest.raises(biscuits.BiscuitError, match="root key"):
        check(root, forged)


def test_biscuit_for_another_device(root: KeyPair) -> None:
    with pytest.raises(biscuits.BiscuitError, match="does not allow"):
        check(root, device_token(root, device="pump-0099"))


def test_expired_biscuit(root: KeyPair) -> None:
    data = device_token(root, days=1)
    check(root, data, now=NOW + datetime.timedelta(hours=23))
    with pytest.raises(biscuits.BiscuitError, match="does not allow"):
        check(root, data, now=NOW + datetime.timedelta(days=1, seconds=1))


def test_revocation_ids(root: KeyPair, tmp_path: Path) -> None:
    token = biscuits.parse(device_token(root), root.public_key)
    narrow = biscuits.attenuate(token, release="app-2.0.0")
    revoked_file = tmp_path / "revoked.txt"
    # Revoking the attenuated block refuses it, not the token it was derived from.
    biscuits.revoke(revoked_file, narrow.revocation_ids[1])
    revoked = biscuits.load_revoked(revoked_file)
    check(root, token.to_base64(), revoked=revoked)
    with pytest.raises(biscuits.BiscuitError, match="revoked"):
        check(root, narrow.to_base64(), revoked=revoked)
    # Revoking the authority block refuses every token derived from it.
    biscuits.revoke(revoked_file, token.revocation_ids[0])
    with pytest.raises(biscuits.BiscuitError, match="revoked"):
        check(root, token.to_base64(), revoked=biscuits.load_revoked(revoked_file))
    with pytest.raises(biscuits.BiscuitError, match="hex"):
        biscuits.revoke(revoked_file, "not hex!")


@pytest.mark.parametrize("garbage", ["", "AAAA", "x" * 100, "é", "A" * 20000])
def test_garbage_is_refused_cleanly(root: KeyPair, garbage: str) -> None:
    with pytest.raises(biscuits.BiscuitError):
        check(root, garbage)


def test_direct_download_through_the_repository(
    vendor: TestClient, settings: VendorSettings, clock: ManualClock
) -> None:
    url = "http://testserver/direct/pump-0017/releases/app-1.0.0/payload"
    # Before the vendor has a biscuit root key, direct download is off.
    assert vendor.get(url, headers={"Authorization": "Bearer x"}).status_code == 404
    biscuits.generate_root_key(settings.biscuit_root_path)
    root = biscuits.load_root_key(settings.biscuit_root_path)
    now = datetime.datetime.fromtimestamp(clock(), datetime.UTC)
    token = biscuits.issue(
        root.private_key, device_id="pump-0017", releases=["app-1.0.0"],
        expires=now + datetime.timedelta(hours=1),
    )
    narrow = biscuits.attenuate(token, expires=now + datetime.timedelta(minutes=5))
    ok = vendor.get(url, headers={"Authorization": f"Bearer {narrow.to_base64()}"})
    assert ok.status_code == 200
    assert ok.content.startswith(b"payload of app-1.0.0")
    # Devices resume interrupted downloads with HTTP Range.
    part = vendor.get(url, headers={"Authorization": f"Bearer {narrow.to_base64()}",
                                    "Range": "bytes=8-19"})
    assert (part.status_code, part.content) == (206, ok.content[8:20])
    served = vendor.app.state.repository.served  # type: ignore[attr-defined]

    def refused(path: str, data: str, status: int = 403) -> None:
        response = vendor.get(path, headers={"Authorization": f"Bearer {data}"})
        assert response.status_code == status
        assert b"payload of" not in response.content
        assert vendor.app.state.repository.served == served  # type: ignore[attr-defined]

    refused(url.replace("pump-0017", "pump-0018"), narrow.to_base64())  # another device
    refused(url.replace("app-1.0.0", "app-2.0.0"), narrow.to_base64())  # another release
    other = biscuits.issue(KeyPair().private_key, device_id="pump-0017",
                           releases=["app-1.0.0"], expires=now + datetime.timedelta(hours=1))
    refused(url, other.to_base64())  # another root
    clock.advance(6 * 60)
    refused(url, narrow.to_base64())  # expired (the attenuated block's 5 minutes)
    assert vendor.get(url, headers={"Authorization": f"Bearer {token.to_base64()}"}).status_code \
        == 200
    biscuits.revoke(settings.revoked_biscuits_path, token.revocation_ids[0])
    served += 1
    refused(url, token.to_base64())  # revoked
    refused(url, "", status=401)


def test_a_recalled_release_is_not_served_for_any_biscuit(
    vendor: TestClient, settings: VendorSettings, clock: ManualClock
) -> None:
    biscuits.generate_root_key(settings.biscuit_root_path)
    root = biscuits.load_root_key(settings.biscuit_root_path)
    now = datetime.datetime.fromtimestamp(clock(), datetime.UTC)
    token = biscuits.issue(root.private_key, device_id="pump-0017",
                           releases=["app-1.0.0", "app-2.0.0"],
                           expires=now + datetime.timedelta(hours=1)).to_base64()
    bearer = {"Authorization": f"Bearer {token}"}
    base = "http://testserver/direct/pump-0017/releases"
    assert vendor.get(f"{base}/app-1.0.0/payload", headers=bearer).status_code == 200
    ReleaseStore(settings.releases_dir).recall("app-1.0.0", reason="battery overheats",
                                               at=int(clock()))
    served = vendor.app.state.repository.served  # type: ignore[attr-defined]
    for artefact in ("envelope", "payload"):
        refused = vendor.get(f"{base}/app-1.0.0/{artefact}", headers=bearer)
        assert refused.status_code == 403
        assert "recalled by the vendor: battery overheats" in refused.json()["error"][
            "description"]
    assert vendor.app.state.repository.served == served  # type: ignore[attr-defined]
    # The biscuit's other release, not recalled, is still served.
    assert vendor.get(f"{base}/app-2.0.0/payload", headers=bearer).status_code == 200
