"""Requirements across components: "application #N needs loader #M" (a release's ``requires``).

A device whose reported loader is older than an application release requires is scheduled the
loader release first (the schedule's component, key 17, says ``loader``); only once its report
shows the loader installed does it get the application. With no loader release that can meet
the requirement, the device is held (``blocked``) and the rollout status says why. At no point
does a device get a schedule naming the application while its reported loader is too old.
"""

from __future__ import annotations

from typing import Any

from sched_world import Api, SimDevice, World
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

APP_NEEDS_LOADER_3 = [("loader", 3)]


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
                            actor="alice")
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
    releases.recall_release(world.session(), release_id=loader3.id, revert=False, actor="alice",
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
