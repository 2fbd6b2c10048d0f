"""The vendor in the loop, for scheduler tests: the vendor's services (AS + repository) on the
scheduler's clock, a hospital scheduler registered as its GNAP client, and releases published
there and mirrored here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sched_world import CLASS_ID, ROOT_SECRET, VENDOR_ID, World
from suture.scheduler.models import Release
from suture.scheduler.schemas import DeviceCreate
from suture.scheduler.services import devices
from suture.scheduler.vendor_authority import GnapAuthority
from suture.scheduler.vendor_mirror import MirrorResult, mirror_release
from suture.suit.sbom_build import build_sbom
from suture.vendor_services import biscuits
from suture.vendor_services.app import create_app
from suture.vendor_services.gnap.client import GnapClient
from suture.vendor_services.gnap.clients import RegisteredClient, Registry
from suture.vendor_services.gnap.policies import PolicyStore, RolloutPolicy
from suture.vendor_services.gnap.rights import release_access
from suture.vendor_services.httpsig import SigningKey
from suture.vendor_services.repository.publish import ReleaseFiles, publish_release
from suture.vendor_services.repository.store import ReleaseStore
from suture.vendor_services.settings import VendorSettings

VENDOR_URL = "http://vendor.test"
REPO = f"{VENDOR_URL}/releases/"


@dataclass
class Vendor:
    """The vendor's side and the hospital scheduler's client of it."""

    world: World
    settings: VendorSettings
    http: TestClient
    client: GnapClient
    store: ReleaseStore

    def clock(self) -> float:
        return float(self.world.clock.now())

    def publish(self, release_id: str, seq: int, metadata: dict[str, Any] | None = None,
                payload: bytes | None = None, delta_from: Sequence[str] = (),
                component: str = "app") -> dict[str, Any]:
        base = self.world.tmp / "vendor-src" / release_id
        base.mkdir(parents=True)
        data = payload or f"pump app #{seq}\n".encode() * 64
        (base / "app.bin").write_bytes(data)
        (base / "release.json").write_text(json.dumps({
            "sequence-number": seq, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
            "components": [{"id": [component], "file": "app.bin",
                            "uri": "https://vendor.example/app"}]}))
        (base / "sbom.json").write_bytes(build_sbom("pump-app", str(seq), {"app.bin": data}))
        (base / "notes.md").write_text(f"# {release_id}\n")
        return publish_release(self.store, release_id,
                               ReleaseFiles(base / "release.json", base / "sbom.json",
                                            base / "notes.md"),
                               self.world.vendor_key, published_at=self.world.clock.now(),
                               metadata=metadata, delta_from=delta_from)

    def mirror(self, release_id: str) -> Release:
        """Mirror a release as `suture scheduler vendor mirror` does."""
        return self.mirror_result(release_id).release

    def mirror_result(self, release_id: str) -> MirrorResult:
        """Mirror a release and its deltas; what became of them."""
        now = self.world.clock.now()
        grant = self.client.request_grant([release_access(
            release_id, devices=["mirror"], window_start=now, window_end=now + 3600,
            location=REPO)])
        try:
            return mirror_release(
                self.world.session(), client=self.client, grant=grant, repository_url=REPO,
                release_id=release_id, trust_anchors=[self.world.vendor_key.public_key()],
                actor=self.world.alice, vendor="acme")
        finally:
            self.client.finish(grant)

    def policy(self, release: str = "pump-*", **bounds: Any) -> None:
        PolicyStore.load(self.settings.policies_path).put(
            RolloutPolicy(client="st-mary", release=release, **bounds))

    def serve_hospitals(self, *names: str) -> None:
        """Register the scheduler as one the vendor runs for these hospitals (tenants)."""
        registry = Registry.load(self.settings.registry_path)
        registry.add_client(dataclasses.replace(registry.clients["st-mary"],
                                                hospitals=list(names)))

    def authority(self, *, direct: bool = False) -> GnapAuthority:
        root = None
        if direct:
            if not self.settings.biscuit_root_path.exists():
                biscuits.generate_root_key(self.settings.biscuit_root_path)
            root = biscuits.load_root_key(self.settings.biscuit_root_path)
        return GnapAuthority("acme", self.client, REPO,
                             f"{VENDOR_URL}/direct/" if direct else "", root)


def make_vendor(world: World, tmp: Path) -> Iterator[Vendor]:
    settings = VendorSettings(data_dir=tmp / "vendor-data", public_url=VENDOR_URL)
    key = SigningKey.generate("EdDSA")
    registry = Registry.load(settings.registry_path)
    registry.add_client(RegisteredClient(instance_id="st-mary", jwk=key.jwk(), name="St Mary's",
                                         releases=["pump-*"], max_devices=100))
    clock = lambda: float(world.clock.now())  # noqa: E731 (the scheduler's clock)
    app = create_app(settings, clock=clock, registry=registry)
    with TestClient(app, base_url=VENDOR_URL) as http:
        client = GnapClient(http, grant_endpoint=f"{VENDOR_URL}/gnap", key=key,
                            instance_id="st-mary", clock=clock)
        yield Vendor(world, settings, http, client, ReleaseStore(settings.releases_dir))


def add_devices(world: World, names: Sequence[str], *, board: str = "esp32-s3",
                group: str = "ward-3", installed: dict[str, int] | None = None) -> None:
    for name in names:
        devices.add_device(world.session(), create=DeviceCreate(
            id=name, board=board, vendor_id=VENDOR_ID, class_id=CLASS_ID, groups=[group],
            installed=installed or {"app": 1}), root_secret=ROOT_SECRET, actor=world.alice,
            now=world.clock.now())
