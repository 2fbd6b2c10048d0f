"""The vendor's rollout policy per hospital and release, the rollout a right describes, and
recalls: what the AS grants, refuses (with the reason the hospital's operators see) and ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from suture.cli.main import app as suture_app
from suture.keys import generate_private_key, write_key_pair
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.client import GnapClient, GnapClientError
from suture.vendor_services.gnap.clients import RegisteredClient, Registry, RegistryError
from suture.vendor_services.gnap.errors import GnapError
from suture.vendor_services.gnap.policies import PolicyError, PolicyStore, RolloutPolicy
from suture.vendor_services.gnap.rights import release_access, rollout_exceeds, validate_access
from suture.vendor_services.repository.store import ReleaseError, ReleaseStore
from suture.vendor_services.settings import VendorSettings
from typer.testing import CliRunner
from vendor_world import BASE, START

DAY = 86_400


def planned(release: str = "app-1.0.0", *, count: int = 4, classes: list[str] | None = None,
            waves: list[int] | None = None, start: int = int(START),
            end: int = int(START) + DAY) -> dict[str, Any]:
    """A right describing a planned rollout (count and classes, not device ids)."""
    right = release_access(release, devices=[], window_start=start, window_end=end,
                           location=f"{BASE}/releases/")
    right["rollout"] = {"count": count, "classes": classes or ["esp32-s3"],
                        "waves": waves or [1, count - 1], "window": {"start": start, "end": end}}
    return right


def refusal(client: GnapClient, right: dict[str, Any]) -> GnapClientError:
    with pytest.raises(GnapClientError) as caught:
        client.request_grant([right])
    assert caught.value.code == "request_denied"
    return caught.value


def test_the_policy_bounds_what_is_granted(settings: VendorSettings, vendor: TestClient,
                                          client: GnapClient) -> None:
    store = PolicyStore.load(settings.policies_path)
    store.put(RolloutPolicy(client="st-mary", release="app-1.*", max_devices=5,
                            max_first_wave=1, classes=["esp32-s3", "sim"],
                            not_before=int(START) - DAY, not_after=int(START) + 3 * DAY))
    store.put(RolloutPolicy(client="*", release="app-2.*", refuse="field safety notice 17"))
    granted = client.request_grant([planned(count=5, waves=[1, 4])])
    assert granted.token.access[0]["rollout"]["count"] == 5
    assert "6 devices is more than the 5" in refusal(client, planned(count=6)).description
    assert "first wave of 2" in refusal(client, planned(waves=[2, 2])).description
    assert "device class rpi-pico is not supported" in refusal(
        client, planned(classes=["esp32-s3", "rpi-pico"])).description
    assert "may not be installed after" in refusal(
        client, planned(end=int(START) + 4 * DAY)).description
    assert "field safety notice 17" in refusal(client, planned("app-2.0.0")).description
    # A change of the grant (RFC 9635 §5.3) is judged by the same policy.
    with pytest.raises(GnapClientError, match="7 devices is more than the 5"):
        client.modify(granted, [planned(count=7)])
    client.modify(granted, [planned(count=3, waves=[1, 2])])
    assert granted.token.access[0]["rollout"]["count"] == 3
    # The file edited under the running AS: the next request sees it.
    store.remove("st-mary", "app-1.*")
    assert client.request_grant([planned(count=9, waves=[5, 4])]).token.access


def test_a_recall_ends_grants_with_the_recall(settings: VendorSettings, vendor: TestClient,
                                              client: GnapClient, clock: ManualClock) -> None:
    granted = client.request_grant([planned()])
    store = ReleaseStore(settings.releases_dir)
    store.recall("app-1.0.0", reason="battery overheats", at=int(START))
    assert store.metadata("app-1.0.0")["recall"] == {"recalled_at": int(START),
                                                     "reason": "battery overheats"}
    with pytest.raises(ReleaseError, match="already recalled"):
        store.recall("app-1.0.0", reason="again", at=int(START))
    refused = refusal(client, planned())
    assert refused.recall == {"recalled_at": int(START), "reason": "battery overheats"}
    clock.advance(10)
    with pytest.raises(GnapClientError, match="recalled by the vendor") as polled:
        client.poll(granted)
    assert polled.value.recall is not None


def test_a_vendor_run_scheduler_is_judged_by_each_hospitals_policy(
        settings: VendorSettings, registry: Registry, vendor: TestClient,
        client: GnapClient) -> None:
    """The vendor runs one scheduler (one GNAP client) for several hospitals: a rollout right
    naming a hospital it serves is judged by that hospital's policy, not the client's."""
    store = PolicyStore.load(settings.policies_path)
    store.put(RolloutPolicy(client="st-mary", release="app-*", max_devices=2))
    store.put(RolloutPolicy(client="st-luke", release="app-*", max_devices=5))

    def for_(hospital: str, count: int) -> dict[str, Any]:
        right = planned(count=count)
        right["rollout"]["hospital"] = hospital
        return right

    # Not (yet) a client that plans for hospitals: a right naming one is refused.
    assert "does not plan rollouts for hospital 'st-luke'" in refusal(
        client, for_("st-luke", 3)).description
    mine = registry.clients["st-mary"]
    registry.add_client(RegisteredClient(mine.instance_id, mine.jwk, releases=["app-*"],
                                         max_devices=10, hospitals=["st-luke", "st-john"]))
    granted = client.request_grant([for_("st-luke", 5)])  # st-luke's 5, not the client's 2
    assert granted.token.access[0]["rollout"]["hospital"] == "st-luke"
    assert "6 devices is more than the 5" in refusal(client, for_("st-luke", 6)).description
    assert client.request_grant([for_("st-john", 9)]).token.access  # no policy: the bounds
    assert "does not plan rollouts for hospital 'st-anne'" in refusal(
        client, for_("st-anne", 1)).description
    # A grant for one hospital does not cover another's rollout, nor one without a hospital.
    held = granted.token.access[0]
    assert "another hospital" in (rollout_exceeds(held, validate_access([for_("st-john", 1)])[0])
                                  or "")
    assert "another hospital" in (rollout_exceeds(held, validate_access([planned(count=1)])[0])
                                  or "")
    with pytest.raises(RegistryError, match="hospitals"):
        registry.add_client(RegisteredClient("acme-cloud", mine.jwk, hospitals=["st mary"]))


def test_rights_describe_a_rollout_and_what_exceeds_it() -> None:
    right = validate_access([planned(count=4, waves=[1, 3])])[0]
    assert right["rollout"]["classes"] == ["esp32-s3"]
    for bad, why in (({"count": 0}, "count"), ({"waves": [1, 1]}, "add up"),
                     ({"classes": []}, "classes"), ({"devices": ["a"], "count": 2}, "number"),
                     ({"maintenance": {"cron": "0 2 * * *", "duration_s": 0}}, "duration_s")):
        wrong = planned(count=4, waves=[1, 3])
        wrong["rollout"].update(bad)
        with pytest.raises(GnapError, match=why):
            validate_access([wrong])
    assert rollout_exceeds(right, validate_access([planned(count=3, waves=[1, 2])])[0]) is None
    cases = {
        "more devices": planned(count=5, waves=[1, 4]),
        "another release": planned("app-2.0.0", count=4, waves=[1, 3]),
        "later window end": planned(count=4, waves=[1, 3], end=int(START) + 2 * DAY),
        "other device classes": planned(count=4, waves=[1, 3], classes=["sim"]),
        "larger first wave": planned(count=4, waves=[2, 2]),
    }
    for why, wanted in cases.items():
        assert why in (rollout_exceeds(right, validate_access([wanted])[0]) or ""), why


def test_policy_entries_are_checked(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="positive"):
        RolloutPolicy(client="a", release="*", max_devices=0).check()
    with pytest.raises(PolicyError, match="later"):
        RolloutPolicy(client="a", release="*", not_before=5, not_after=5).check()
    path = tmp_path / "policies.json"
    path.write_text(json.dumps({"policies": [{"client": "a", "release": "*", "colour": 1}]}))
    with pytest.raises(PolicyError, match="unknown fields"):
        PolicyStore.load(path)


runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(suture_app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_policy_and_recall_commands(settings: VendorSettings) -> None:
    data = settings.data_dir
    key = data / "acme-cloud.pem"
    _, public = write_key_pair(generate_private_key("EdDSA"), key)
    code, out, err = run("vendor", "client", "add", "acme-cloud", "--key", public,
                         "--hospital", "st-mary", "--hospital", "st-luke", "--data", data,
                         "--json")
    assert code == 0, err
    assert json.loads(out)["hospitals"] == ["st-mary", "st-luke"]
    assert Registry.load(settings.registry_path).clients["acme-cloud"].hospitals == [
        "st-mary", "st-luke"]
    code, out, err = run("vendor", "policy", "set", "st-mary", "app-*", "--max-devices", "50",
                         "--class", "esp32-s3", "--not-after", "2027-01-01T00:00:00+00:00",
                         "--max-window", "7d", "--data", data, "--json")
    assert code == 0, err
    assert json.loads(out)["max_window_seconds"] == 7 * DAY
    code, out, _ = run("vendor", "policy", "list", "--data", data, "--json")
    assert [p["max_devices"] for p in json.loads(out)] == [50]
    code, _, err = run("vendor", "policy", "set", "st-mary", "app-*", "--max-devices", "0",
                       "--data", data)
    assert code != 0
    assert "positive" in err
    code, out, _ = run("vendor", "recall", "app-1.0.0", "--reason", "battery", "--dry-run",
                       "--data", data)
    assert code == 0
    assert "would recall" in out
    assert ReleaseStore(settings.releases_dir).recall_of("app-1.0.0") is None
    code, _, err = run("vendor", "recall", "app-1.0.0", "--reason", "battery", "--data", data)
    assert code != 0  # no terminal, no --yes: nothing done
    assert ReleaseStore(settings.releases_dir).recall_of("app-1.0.0") is None
    code, out, err = run("vendor", "recall", "app-1.0.0", "--reason", "battery", "--yes",
                         "--data", data, "--json")
    assert code == 0, err
    assert json.loads(out)["reason"] == "battery"
    code, _, err = run("vendor", "policy", "remove", "st-mary", "app-*", "--data", data)
    assert code == 0, err
    code, _, err = run("vendor", "policy", "remove", "st-mary", "app-*", "--data", data)
    assert code != 0
    assert "no policy" in err


def test_publish_refuses_bad_metadata(tmp_path: Path) -> None:
    from suture.keys import generate_private_key, write_key_pair
    from suture.suit.sbom_build import build_sbom

    key, _ = write_key_pair(generate_private_key("ES256"), tmp_path / "vendor.pem")
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.bin").write_bytes(b"firmware" * 64)
    (src / "release.json").write_text(json.dumps({
        "sequence-number": 3, "vendor-id": "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
        "class-id": "1492af14-2569-5e48-bf42-9b2d51f2ab45",
        "components": [{"id": ["app"], "file": "app.bin", "uri": "https://v.example/a"}]}))
    (src / "sbom.json").write_bytes(build_sbom("app", "3", {"app.bin": b"firmware" * 64}))
    (src / "notes.md").write_text("# 3\n")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"device_classes": ["esp32-s3"], "pass_through": [-1]}))
    data = tmp_path / "vendor-data"
    args = ("vendor", "publish", "app-3", "--description", src / "release.json", "--key", key,
            "--sbom", src / "sbom.json", "--notes", src / "notes.md", "--metadata", meta,
            "--data", data)
    code, _, err = run(*args)
    assert code != 0
    assert "pass_through" in err
    assert not ReleaseStore(data / "releases").exists("app-3")
    meta.write_text(json.dumps({"device_classes": ["esp32-s3"], "pass_through": [2]}))
    code, out, err = run(*args, "--json")
    assert code == 0, err
    assert json.loads(out)["vendor"]["pass_through"] == [2]
