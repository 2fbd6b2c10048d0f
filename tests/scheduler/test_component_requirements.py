"""Requirements across components: "application #N needs loader #M" (a release's ``requires``).

A device whose reported loader is older than an application release requires is scheduled the
loader release first (the schedule's component, key 17, says ``loader``); only once its report
shows the loader installed does it get the application. With no loader release that can meet
the requirement, the device is held (``blocked``) and the rollout status says why. At no point
does a device get a schedule naming the application while its reported loader is too old.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sched_world import CLASS_ID, VENDOR_ID, Api, SimDevice, World, cli_accounts, make_envelope
from suture.cli.main import app
from suture.keys import PrivateKey, write_key_pair
from suture.scheduler.models import RolloutDevice
from suture.scheduler.policies.decide import Action
from suture.scheduler.schedule_doc import (
    K_ACTION,
    K_COMPONENT,
    K_ENVELOPE_URI,
    K_RELEASE_ID,
    K_SEQUENCE_NUMBER,
)
from suture.scheduler.schemas import ReleaseUpdate, Requirement
from suture.scheduler.services import releases
from typer.testing import CliRunner

APP_NEEDS_LOADER_3 = [("loader", 3)]
DOC = Path(__file__).resolve().parents[2] / "docs" / "run-a-rollout.md"


def doc_example(command: str) -> str:
    """The output docs/run-a-rollout.md shows for ``$ command`` (up to the block's end)."""
    text = DOC.read_text()
    start = text.index(f"$ {command}\n") + len(command) + 3
    return text[start:text.index("```", start)]


class Watch:
    """Polls and acts for devices, checking every schedule against the rule: a schedule that
    names app #2 goes only to a device that reported loader >= 3."""

    def __init__(self, world: World, app_id: int) -> None:
        self.world = world
        self.app_id = app_id
        self.seen: dict[str, list[tuple[str, int, int]]] = {}  # device -> (component, seq, action)

    def check(self, dev: SimDevice, doc: dict[int, Any]) -> dict[int, Any]:
        if K_RELEASE_ID in doc:
            self.seen.setdefault(dev.id, []).append(
                (doc[K_COMPONENT], doc[K_SEQUENCE_NUMBER], doc[K_ACTION]))
            if doc[K_RELEASE_ID] == self.app_id:
                assert doc[K_COMPONENT] == "app"
                with self.world.session() as s:
                    from suture.scheduler.models import Device

                    device = s.get(Device, dev.id)
                    assert device is not None
                    reported = device.installed.get("loader", 0)
                assert reported >= 3, f"{dev.id} got app #2 on loader {reported}"
        return doc

    def poll(self, dev: SimDevice) -> dict[int, Any]:
        return self.check(dev, dev.poll())

    def run(self, dev: SimDevice, max_steps: int = 16) -> None:
        """Follow the schedule until nothing is left, checking each document on the way."""
        real_poll = dev.poll

        def checked_poll() -> dict[int, Any]:
            return self.check(dev, real_poll())

        dev.poll = checked_poll  # type: ignore[method-assign]
        try:
            dev.update_fully(max_steps=max_steps)
        finally:
            dev.poll = real_poll  # type: ignore[method-assign]


def test_fleet_loader_first_where_needed(world: World) -> None:
    current = [world.device(f"pump-{i}", installed={"app": 1, "loader": 3}) for i in range(2)]
    old = world.device("pump-old", installed={"app": 1, "loader": 1})
    factory = world.device("pump-factory", installed={"app": 1})  # no loader reported: 0
    world.release(2, component="loader")
    loader3 = world.release(3, component="loader")
    world.release(4, component="loader")
    app2 = world.release(2, requires=APP_NEEDS_LOADER_3)
    ro = world.rollout(app2.id)
    world.start(ro.id)
    watch = Watch(world, app2.id)
    assert world.status(ro.id).blocked == []
    for dev in current:
        doc = watch.poll(dev)
        assert (doc[K_RELEASE_ID], doc[K_COMPONENT], doc[K_SEQUENCE_NUMBER]) == (app2.id, "app", 2)
    for dev in (old, factory):
        doc = watch.poll(dev)
        assert doc[K_ACTION] == Action.DOWNLOAD
        assert (doc[K_RELEASE_ID], doc[K_COMPONENT], doc[K_SEQUENCE_NUMBER]) == (
            loader3.id, "loader", 3)
        assert doc[K_ENVELOPE_URI].endswith(f"/releases/{loader3.id}/envelope")
    for dev in [*current, old, factory]:
        watch.run(dev)
    assert world.status(ro.id).totals == {"succeeded": 4}
    for dev in current:
        assert dev.installed == {"app": 2, "loader": 3}
        assert {c for c, _, _ in watch.seen[dev.id]} == {"app"}
    for dev in (old, factory):
        assert dev.installed == {"app": 2, "loader": 3}
        steps = [(c, v) for c, v, _ in watch.seen[dev.id]]
        # Every loader document comes before the first application document.
        first_app = steps.index(("app", 2))
        assert set(steps[:first_app]) == {("loader", 3)}
        assert set(steps[first_app:]) == {("app", 2)}


def test_app_only_after_the_report_shows_the_loader(world: World) -> None:
    dev = world.device("pump-1", installed={"app": 1, "loader": 1})
    loader3 = world.release(3, component="loader")
    app2 = world.release(2, requires=APP_NEEDS_LOADER_3)
    ro = world.rollout(app2.id)
    world.start(ro.id)
    assert dev.follow() == Action.DOWNLOAD  # the loader, staged
    doc = dev.poll()
    assert (doc[K_ACTION], doc[K_RELEASE_ID]) == (Action.INSTALL, loader3.id)
    dev.report("installing", rollout_id=ro.id, release_id=loader3.id)
    # Installing, but the device has not reported the new loader yet: still the loader step.
    assert dev.poll()[K_RELEASE_ID] == loader3.id
    dev.installed["loader"] = 3
    dev.report("trial", rollout_id=ro.id, release_id=loader3.id)
    doc = dev.poll()
    assert (doc[K_ACTION], doc[K_RELEASE_ID]) == (Action.CONFIRM_WAIT, loader3.id)
    dev.report("confirmed", rollout_id=ro.id, release_id=loader3.id)
    doc = dev.poll()
    assert (doc[K_ACTION], doc[K_RELEASE_ID], doc[K_COMPONENT]) == (Action.DOWNLOAD, app2.id, "app")


def test_loader_confirmed_without_the_version_fails_the_step(world: World) -> None:
    """A device that says it confirmed the loader step but still reports the old loader does
    not move on to the application."""
    dev = world.device("pump-1", installed={"app": 1, "loader": 1})
    loader3 = world.release(3, component="loader")
    app2 = world.release(2, requires=APP_NEEDS_LOADER_3)
    ro = world.rollout(app2.id)
    world.start(ro.id)
    dev.follow()
    dev.report("installing", rollout_id=ro.id, release_id=loader3.id)
    dev.report("confirmed", rollout_id=ro.id, release_id=loader3.id)  # loader still 1
    assert world.status(ro.id).totals == {"failed": 1}
    assert dev.action() == Action.NONE
    assert K_RELEASE_ID not in dev.poll()


def test_loader_gone_back_is_scheduled_the_loader_again(world: World) -> None:
    """Planned straight to the application (loader 3 at planning), the device then reports
    loader 1 (stage0 restored an older loader): its next schedule is the loader, not the
    application, even with the application already staged."""
    dev = world.device("pump-1", installed={"app": 1, "loader": 3})
    loader3 = world.release(3, component="loader")
    app2 = world.release(2, requires=APP_NEEDS_LOADER_3)
    ro = world.rollout(app2.id, window={"cron": "0 2 * * *", "duration_s": 3600, "tz": "UTC"})
    world.start(ro.id)
    assert dev.follow() == Action.DOWNLOAD
    doc = dev.poll()
    assert (doc[K_ACTION], doc[K_RELEASE_ID]) == (Action.DOWNLOAD, app2.id)  # staged, no window
    dev.installed["loader"] = 1
    dev.report("staged", rollout_id=ro.id, release_id=app2.id)
    world.clock.set(world.clock.now() + 2 * 3600 + 60)  # inside the window
    doc = dev.poll()
    assert (doc[K_ACTION], doc[K_RELEASE_ID], doc[K_COMPONENT]) == (
        Action.DOWNLOAD, loader3.id, "loader")
    with world.session() as s:
        entry = s.get(RolloutDevice, (ro.id, dev.id))
        assert entry is not None
        assert (entry.state, entry.step_release_id) == ("pending", loader3.id)


def test_requirement_added_after_planning(world: World) -> None:
    dev = world.device("pump-1", installed={"app": 1, "loader": 1})
    loader3 = world.release(3, component="loader")
    app2 = world.release(2)
    ro = world.rollout(app2.id)
    world.start(ro.id)
    releases.update_release(world.session(), release_id=app2.id, now=world.clock.now(),
                            change=ReleaseUpdate(requires=[Requirement(component="loader",
                                                                       min_version=3)]),
                            actor=world.alice)
    doc = dev.poll()
    assert (doc[K_RELEASE_ID], doc[K_COMPONENT]) == (loader3.id, "loader")


def test_held_when_no_loader_release_can_meet_it(world: World, api: Api) -> None:
    ready = world.device("pump-ready", installed={"app": 1, "loader": 3})
    dev = world.device("pump-1", installed={"app": 1, "loader": 1})
    loader2 = world.release(2, component="loader")
    app2 = world.release(2, requires=APP_NEEDS_LOADER_3)
    ro = world.rollout(app2.id)
    world.start(ro.id)
    status = world.status(ro.id)
    assert status.totals == {"pending": 1, "blocked": 1}
    assert [h.device_id for h in status.blocked] == ["pump-1"]
    reason = status.blocked[0].reason
    assert reason == (f"app #2 (release {app2.id}) requires loader >= 3 (device has 1): "
                      f"no loader release >= 3 is imported")
    doc = dev.poll()
    assert doc[K_ACTION] == Action.NONE
    assert K_RELEASE_ID not in doc
    assert K_COMPONENT not in doc
    assert ready.poll()[K_RELEASE_ID] == app2.id  # the others go on
    # The operator API shows the same.
    body = api.client.get(f"/api/v1/rollouts/{ro.id}", headers=api.op).json()
    assert body["totals"]["blocked"] == 1
    assert body["blocked"] == [{"device_id": "pump-1", "wave": 0, "reason": reason}]
    # Nothing changes on the next passes; the device stays held and is not timed out.
    world.clock.set(world.clock.now() + 7 * 3600)
    world.advance()
    assert world.status(ro.id).totals["blocked"] == 1
    # A recalled loader 3 does not help.
    loader3 = world.release(3, component="loader")
    releases.recall_release(world.session(), release_id=loader3.id, revert=False, actor=world.alice,
                            now=world.clock.now())
    world.advance()
    assert world.status(ro.id).blocked[0].reason.endswith(
        "every loader release >= 3 is recalled")
    assert dev.poll()[K_ACTION] == Action.NONE
    # Loader 4 imported: the next pass plans it, then the application.
    loader4 = world.release(4, component="loader")
    world.advance()
    assert world.status(ro.id).blocked == []
    doc = dev.poll()
    assert (doc[K_RELEASE_ID], doc[K_COMPONENT], doc[K_SEQUENCE_NUMBER]) == (
        loader4.id, "loader", 4)
    dev.update_fully()
    assert dev.installed == {"app": 2, "loader": 4}
    assert loader2.id != loader4.id


def test_a_blocked_dependency_holds_with_its_own_reason(world: World) -> None:
    dev = world.device("pump-1", installed={"app": 1, "loader": 1})
    loader3 = world.release(3, component="loader", requires=[("stage0", 2)])
    app2 = world.release(2, requires=APP_NEEDS_LOADER_3)
    ro = world.rollout(app2.id)
    world.start(ro.id)
    [held] = world.status(ro.id).blocked
    assert held.reason == (f"app #2 (release {app2.id}) requires loader >= 3 (device has 1): "
                           f"loader #3 (release {loader3.id}) cannot be installed first: it "
                           f"requires stage0 >= 2")
    assert K_RELEASE_ID not in dev.poll()


def test_cli_requires_and_held_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      vendor_key: PrivateKey) -> None:
    """The commands of docs/run-a-rollout.md's "Requirements" section, as an operator runs them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()

    def run(*args: str, code: int = 0, as_: str = "alice") -> str:
        result = cli.invoke(app, ["scheduler", *args], env={"SUTURE_TOKEN": tokens.get(as_, "")})
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    tokens: dict[str, str] = {}
    write_key_pair(vendor_key, tmp_path / "vendor.pem")
    run("init", "--trust-anchor", "vendor.pub.pem")
    tokens.update(cli_accounts(cli, app))
    for name, installed in (("pump-01", ("app=1", "loader=3")), ("pump-02", ("app=1",
                                                                              "loader=1"))):
        run("device", "add", name, "--board", "sim", "--vendor-id", VENDOR_ID, "--class-id",
            CLASS_ID, "--group", "ward-3", *(a for i in installed for a in ("--installed", i)))
    for component, seq in (("app", 2), ("loader", 3)):
        envelope, _ = make_envelope(vendor_key, tmp_path, seq, component)
        (tmp_path / f"{component}-{seq}.suit").write_bytes(envelope)
    out = run("release", "import", "app-2.suit", "app-2.bin", "--sbom", "app-2.cdx.json",
              "--requires", "loader>=3")
    assert "release 1: app #2" in out
    assert "loader>=3" in run("release", "list")
    err = run("release", "update", "1", "--requires", "loader3", code=2)
    assert err.strip() == "error: --requires 'loader3': expected COMPONENT>=VERSION, e.g. loader>=3"
    out = run("rollout", "create", "--release", "1", "--name", "app 2", "--group", "ward-3")
    assert out == doc_example("suture scheduler rollout create --release 1 --name \"app 2\" "
                              "--group ward-3")
    assert "rollout 1: 2 devices in 1 waves" in out
    assert "1 device(s) held until their requirements can be met:" in out
    reason = ("app #2 (release 1) requires loader >= 3 (device has 1): no loader release >= 3 "
              "is imported")
    assert f"pump-02: {reason}" in out
    run("rollout", "approve", "1", as_="bob")
    out = run("rollout", "start", "1")
    assert "rollout 1: running" in out
    assert f"pump-02: {reason}" in out
    status = run("rollout", "status", "1")
    assert "held: 1 device(s)" in status
    assert "no loader release >= 3 is imported" in status
    assert "pump-02" in status
    held = json.loads(run("rollout", "status", "1", "--json"))["blocked"]
    assert held == [{"device_id": "pump-02", "wave": 0, "reason": reason}]
    out = run("release", "import", "loader-3.suit", "loader-3.bin", "--sbom", "loader-3.cdx.json")
    assert "release 2: loader #3" in out
    out = run("release", "update", "1", "--requires", "loader>=3", "--must-pass-through")
    assert out.strip() == "release 1: app #2; must-pass-through yes; requires loader>=3"
    out = run("release", "update", "1", "--no-requires", "--no-must-pass-through")
    assert out.strip() == "release 1: app #2; must-pass-through no; requires nothing"
