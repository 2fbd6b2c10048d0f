"""Fixtures for the vendor side: a data directory with releases, the AS+RS app on a manual
clock, a registered hospital scheduler and its GNAP client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from suture.vendor_services.app import create_app
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.client import GnapClient
from suture.vendor_services.gnap.clients import RegisteredClient, Registry
from suture.vendor_services.gnap.rights import release_access
from suture.vendor_services.httpsig import SigningKey
from suture.vendor_services.repository.store import ReleaseStore
from suture.vendor_services.settings import VendorSettings
from vendor_world import BASE, RELEASES, START


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> VendorSettings:
    settings = VendorSettings(data_dir=tmp_path / "vendor", public_url=BASE)
    store = ReleaseStore(settings.releases_dir)
    for release in RELEASES:
        store.publish(
            release,
            envelope=b"envelope of " + release.encode(),
            payload=b"payload of " + release.encode() * 100,
            sbom=b'{"components": []}',
            notes=b"# " + release.encode(),
            published_at=int(START),
        )
    return settings


@pytest.fixture(params=["EdDSA", "ES256"])
def scheduler_key(request: pytest.FixtureRequest) -> SigningKey:
    return SigningKey.generate(request.param)


@pytest.fixture
def registry(settings: VendorSettings, scheduler_key: SigningKey) -> Registry:
    registry = Registry.load(settings.registry_path)
    registry.add_client(
        RegisteredClient(
            instance_id="st-mary",
            jwk=scheduler_key.jwk(),
            name="St Mary's",
            releases=["app-*"],
            max_devices=10,
        )
    )
    return registry


@pytest.fixture
def vendor(
    settings: VendorSettings, registry: Registry, clock: ManualClock
) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock, registry=registry)
    with TestClient(app, base_url=BASE) as http:
        yield http


@pytest.fixture
def client(vendor: TestClient, scheduler_key: SigningKey, clock: ManualClock) -> GnapClient:
    return GnapClient(
        vendor, grant_endpoint=f"{BASE}/gnap", key=scheduler_key, instance_id="st-mary",
        clock=clock,
    )


def make_rollout(release: str = "app-1.0.0", devices: int = 2) -> list[dict[str, Any]]:
    """The access right for a one-day rollout of ``release`` to ``devices`` pumps."""
    return [
        release_access(
            release,
            devices=[f"pump-{i:04d}" for i in range(devices)],
            window_start=int(START),
            window_end=int(START) + 86_400,
            location=f"{BASE}/releases/",
        )
    ]


@pytest.fixture
def rollout() -> Callable[..., list[dict[str, Any]]]:
    """``rollout(release="app-1.0.0", devices=2)``: access rights for a one-day rollout."""
    return make_rollout
