"""The whole path: the vendor publishes a signed release, the scheduler mirrors it with a
key-bound GNAP token, and imports it only after the SUIT signature and digests verify."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from suture.keys import PrivateKey, generate_private_key
from suture.scheduler import migrate
from suture.scheduler.authz import Principal
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.errors import ReleaseVerificationError
from suture.scheduler.services.audit import AuditKey
from suture.scheduler.services.releases import list_releases
from suture.scheduler.team import sign_in_team
from suture.scheduler.vendor_mirror import MirrorError, mirror_release
from suture.vendor_services.gnap.client import GnapClient
from suture.vendor_services.repository.publish import ReleaseFiles, publish_release
from suture.vendor_services.repository.store import ReleaseError, ReleaseStore
from suture.vendor_services.settings import VendorSettings

REPO = "http://testserver/releases/"
SBOM = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}
Rollout = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'scheduler.db'}")
    migrate.upgrade(engine)
    yield make_session_factory(engine, audit_key=AuditKey.generate())
    engine.dispose()


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def release_manager(sessions: sessionmaker[Session]) -> Principal:
    """The scheduler's operator who mirrors releases (role release_manager)."""
    return sign_in_team(sessions, prefix="mirror", now=0).release_manager


@pytest.fixture
def signing_key() -> PrivateKey:
    return generate_private_key("ES256")


def release_files(base: Path, seq: int, payload: bytes | None = None) -> ReleaseFiles:
    base.mkdir(parents=True, exist_ok=True)
    (base / "app.bin").write_bytes(payload or f"pump firmware #{seq}\n".encode() * 64)
    description = {
        "sequence-number": seq,
        "vendor-id": "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
        "class-id": "1492af14-2569-5e48-bf42-9b2d51f2ab45",
        "components": [{"id": ["app"], "file": "app.bin", "uri": "https://vendor.example/app"}],
    }
    (base / "release.json").write_text(json.dumps(description))
    (base / "sbom.json").write_text(json.dumps(SBOM))
    (base / "notes.md").write_text(f"# Release {seq}\n")
    return ReleaseFiles(base / "release.json", base / "sbom.json", base / "notes.md")


def test_mirror_a_release_end_to_end(
    settings: VendorSettings, client: GnapClient, session: Session, signing_key: PrivateKey,
    release_manager: Principal,
    tmp_path: Path, rollout: Rollout,
) -> None:
    store = ReleaseStore(settings.releases_dir)
    meta = publish_release(store, "app-3.0.0", release_files(tmp_path / "src", 3), signing_key,
                           published_at=0)
    assert meta["artefacts"]["envelope"]["size"] > 0
    grant = client.request_grant(rollout("app-3.0.0", devices=4))
    release = mirror_release(
        session, client=client, grant=grant, repository_url=REPO, release_id="app-3.0.0",
        trust_anchors=[signing_key.public_key()], actor=release_manager, now=0,
    ).release
    client.finish(grant)
    assert (release.component, release.sequence_number) == ("app", 3)
    assert [r.sequence_number for r in list_releases(session)] == [3]


def test_mirror_refuses_a_release_signed_by_another_key(
    settings: VendorSettings, client: GnapClient, session: Session, signing_key: PrivateKey,
    release_manager: Principal,
    tmp_path: Path, rollout: Rollout,
) -> None:
    store = ReleaseStore(settings.releases_dir)
    impostor = generate_private_key("ES256")
    publish_release(store, "app-4.0.0", release_files(tmp_path / "src", 4), impostor,
                    published_at=0)
    grant = client.request_grant(rollout("app-4.0.0"))
    with pytest.raises(ReleaseVerificationError, match="does not verify"):
        mirror_release(
            session, client=client, grant=grant, repository_url=REPO, release_id="app-4.0.0",
            trust_anchors=[signing_key.public_key()], actor=release_manager, now=0,
        )
    assert list_releases(session) == []


def test_mirror_refuses_files_changed_on_the_repository(
    settings: VendorSettings, client: GnapClient, session: Session, signing_key: PrivateKey,
    release_manager: Principal,
    tmp_path: Path, rollout: Rollout,
) -> None:
    store = ReleaseStore(settings.releases_dir)
    publish_release(store, "app-5.0.0", release_files(tmp_path / "src", 5), signing_key,
                    published_at=0)
    grant = client.request_grant(rollout("app-5.0.0"))
    payload = settings.releases_dir / "app-5.0.0" / "payload.bin"
    evil = b"evil firmware".ljust(payload.stat().st_size, b"\0")
    payload.write_bytes(evil)
    with pytest.raises(MirrorError, match="does not match the repository listing"):
        mirror_release(
            session, client=client, grant=grant, repository_url=REPO, release_id="app-5.0.0",
            trust_anchors=[signing_key.public_key()], actor=release_manager, now=0,
        )
    # The listing rewritten to match the swapped payload: the SUIT digest still refuses it.
    listing_path = settings.releases_dir / "app-5.0.0" / "release.json"
    listing = json.loads(listing_path.read_text())
    listing["artefacts"]["payload"]["sha256"] = hashlib.sha256(evil).hexdigest()
    listing_path.write_text(json.dumps(listing))
    with pytest.raises(ReleaseVerificationError, match="payload SHA-256"):
        mirror_release(
            session, client=client, grant=grant, repository_url=REPO, release_id="app-5.0.0",
            trust_anchors=[signing_key.public_key()], actor=release_manager, now=0,
        )
    assert list_releases(session) == []


def test_mirror_without_rights_to_the_release(
    settings: VendorSettings, client: GnapClient, session: Session, signing_key: PrivateKey,
    release_manager: Principal,
    tmp_path: Path, rollout: Rollout,
) -> None:
    store = ReleaseStore(settings.releases_dir)
    publish_release(store, "app-6.0.0", release_files(tmp_path / "src", 6), signing_key,
                    published_at=0)
    grant = client.request_grant(rollout("app-1.0.0"))
    with pytest.raises(MirrorError, match="insufficient_access"):
        mirror_release(
            session, client=client, grant=grant, repository_url=REPO, release_id="app-6.0.0",
            trust_anchors=[signing_key.public_key()], actor=release_manager, now=0,
        )
    assert list_releases(session) == []


def test_publish_refuses_bad_input(
    settings: VendorSettings, signing_key: PrivateKey, tmp_path: Path
) -> None:
    store = ReleaseStore(settings.releases_dir)
    files = release_files(tmp_path / "src", 7)
    with pytest.raises(ReleaseError, match="already published"):
        publish_release(store, "app-1.0.0", files, signing_key, published_at=0)
    with pytest.raises(ReleaseError, match="invalid release id"):
        publish_release(store, "../escape", files, signing_key, published_at=0)
    other = tmp_path / "other.bin"
    other.write_bytes(b"not the image")
    with pytest.raises(ReleaseError, match="not the image"):
        publish_release(
            store, "app-7.0.0",
            ReleaseFiles(files.description, files.sbom, files.notes, payload=other),
            signing_key, published_at=0,
        )
    (tmp_path / "src" / "release.json").write_text("{not json")
    with pytest.raises(ReleaseError, match="cannot build the envelope"):
        publish_release(store, "app-7.0.0", files, signing_key, published_at=0)
    assert not store.exists("app-7.0.0")
    assert store.list() == ["app-1.0.0", "app-2.0.0"]


def test_repository_files_are_immutable(settings: VendorSettings, vendor: TestClient) -> None:
    store = ReleaseStore(settings.releases_dir)
    with pytest.raises(ReleaseError, match="already published"):
        store.publish("app-1.0.0", envelope=b"e", payload=b"p", sbom=b"", notes=b"",
                      published_at=0)
    with pytest.raises(ReleaseError, match="larger than"):
        store.publish("big-1", envelope=b"e" * (2 << 20), payload=b"p", sbom=b"", notes=b"",
                      published_at=0)
    with pytest.raises(ReleaseError, match="envelope and a payload"):
        store.publish("empty-1", envelope=b"", payload=b"p", sbom=b"", notes=b"", published_at=0)
    assert store.list() == ["app-1.0.0", "app-2.0.0"]
