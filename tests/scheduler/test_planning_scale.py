"""Planning at fleet scale: the set-based planner (filter and path evaluated once per distinct
combination of the values they read, one bulk write) plans exactly what a device-by-device
evaluation of the same policy plans, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sched_world import CLASS_ID, VENDOR_ID, World
from sqlalchemy import insert, select
from suture.scheduler import credentials
from suture.scheduler.errors import InvalidInputError
from suture.scheduler.filterexpr import Predicate, compile_filter
from suture.scheduler.models import TERMINAL_ENTRY_STATES, Device, Release, RolloutDevice
from suture.scheduler.policies import paths, waves
from suture.scheduler.services import planning, rollouts

FLEET = 240


def _fleet(world: World, count: int = FLEET) -> None:
    now = world.clock.now()
    rows = []
    for i in range(count):
        dev = f"m-{i:04d}"
        rows.append({
            "id": dev, "board": ("feather", "pico")[i % 2], "vendor_id": VENDOR_ID,
            "class_id": CLASS_ID, "ward": f"ward-{i % 5}", "location": f"bed {i % 7}",
            "criticality": 1 + i % 4, "tags": [["pilot"], [], ["pilot", "night"]][i % 3],
            "groups": [f"site-{i % 3}"] + (["icu"] if i % 11 == 0 else []),
            "installed": {"app": 1 + i % 5, **({"loader": 2} if i % 4 == 0 else {})},
            "state": "idle", "busy": i % 13 == 0, "created_at": now - (i * 7919) % 1000,
            "last_seen": None if i % 6 == 0 else now - i, "credential_generation": 1,
            "credential_fingerprint": credentials.fingerprint(b"\0" * 32),
            "last_counter": 0, "schedule_number": 0, "schedule_decision": "",
        })
    with world.session() as s, s.begin():
        s.execute(insert(Device), rows)


def _expected(world: World, rollout_id: int) -> list[tuple[str, int, int, str, int | None]]:
    """The plan of ``rollout_id``'s policy, device by device over full device records:
    (device, wave, position, state, step release) in rollout order."""
    with world.session() as s:
        ro = rollouts.rollout_status(s, rollout_id=rollout_id).rollout
        release = s.get(Release, ro.release_id)
        assert release is not None
        graph = planning.load_graph(s, release)
        engaged = set(s.execute(
            select(RolloutDevice.device_id).where(
                RolloutDevice.rollout_id != rollout_id,
                RolloutDevice.state.not_in([s.value for s in TERMINAL_ENTRY_STATES]))).scalars())
        predicate = compile_filter(ro.target_filter) if ro.target_filter.strip() else None
        cands, installed_of = [], {}
        for dev in s.execute(select(Device).order_by(Device.id)).scalars():
            rec: dict[str, Any] = {c.key: getattr(dev, c.key) for c in Device.__table__.columns}
            if ro.target_groups and not set(ro.target_groups) & set(dev.groups):
                continue
            if predicate is not None and not predicate(rec):
                continue
            version = dev.installed.get(release.component, 0)
            if version >= release.sequence_number or dev.id in engaged:
                continue
            installed_of[dev.id] = dev.installed
            cands.append(waves.Candidate(dev.id, version, dev.criticality, dev.created_at))
        out = []
        for position, (cand, wave) in enumerate(waves.assign_waves(cands, ro.waves, ro.order)):
            step = paths.next_step(installed_of[cand.device_id],
                                   planning.release_node(release), graph)
            out.append((cand.device_id, wave, position, "blocked" if step.blocked else "pending",
                        step.release.id if step.release else None))
        return out


def _planned(world: World, rollout_id: int) -> list[tuple[str, int, int, str, int | None]]:
    with world.session() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(RolloutDevice.device_id, RolloutDevice.wave, RolloutDevice.position,
                   RolloutDevice.state, RolloutDevice.step_release_id)
            .where(RolloutDevice.rollout_id == rollout_id).order_by(RolloutDevice.position))]


FILTERS = [
    'criticality <= 3 and not tags has "night"',
    'ward in ["ward-1", "ward-3"] or groups has "icu"',
    "installed.app < 3 and busy == false",
    'board == "pico" and location != "bed 2"',
    'id >= "m-0100" and criticality == "critical"',
    'ward == "criticality" or installed.loader >= 2',  # a field's name inside a string
    "last_seen > 0 and not (criticality < 2 or criticality > 3)",
    "",  # last: this rollout is left running
]


@pytest.mark.parametrize("where", ["sql", "python"])
@pytest.mark.parametrize("order", waves.ORDERS)
def test_set_based_plan_equals_device_by_device_plan(world: World, order: str, where: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Planned in the database (``INSERT ... SELECT``) or, past ``MAX_SQL_COMBINATIONS``, over
    the rows in Python: the same plan either way."""
    ran: list[str] = []

    def noted(name: str) -> Any:
        original = getattr(planning, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            ran.append(name)
            return original(*args, **kwargs)
        return run

    for name in ("_insert_planned", "_plan_in_python"):
        monkeypatch.setattr(planning, name, noted(name))
    if where == "python":
        monkeypatch.setattr(planning, "MAX_SQL_COMBINATIONS", 0)
    _fleet(world)
    world.release(3, must_pass_through=True)
    world.release(2, component="loader")
    target = world.release(5, requires=[("loader", 3)])  # no loader 3: the v3 step's devices
    # go on; devices already on v3/v4 are blocked on loader 3.
    for text in FILTERS:
        groups = ["site-0", "site-2"] if "ward" in text else ["site-0", "site-1", "site-2"]
        ro = world.rollout(target.id, target_filter=text, target_groups=groups,
                           waves=["3", "20%", "100%"], order=order)
        planned = _planned(world, ro.id)
        assert planned == _expected(world, ro.id), text
        assert {state for *_, state, _ in planned} <= {"pending", "blocked"}
        if text:
            rollouts.abort_rollout(world.session(), rollout_id=ro.id, revert=False,
                                   actor=world.alice, now=world.clock.now())
    # The unfiltered rollout still runs: a later one over the same devices gets none of them.
    with pytest.raises(InvalidInputError, match="in another rollout"):
        world.rollout(target.id, target_groups=["site-0", "site-1", "site-2"])
    assert set(ran) == {"_insert_planned" if where == "sql" else "_plan_in_python"}


def test_filter_is_evaluated_once_per_distinct_combination(world: World,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    _fleet(world, 600)
    rel = world.release(9)
    calls = []

    def counting(text: str) -> Predicate:
        inner = compile_filter(text)

        def predicate(rec: Any) -> bool:
            calls.append(dict(rec))
            return inner(rec)
        return predicate

    monkeypatch.setattr(planning, "compile_filter", counting)
    ro = world.rollout(rel.id, target_filter='criticality >= 2 and tags has "pilot"',
                       target_groups=["site-0", "site-1", "site-2"])
    # 4 criticalities x 3 tag sets, whatever the fleet's size; only those fields are read.
    assert len(calls) == 12
    assert all(rec.keys() == {"criticality", "tags"} for rec in calls)
    assert ro.target_count == sum(1 for i in range(600) if i % 4 >= 1 and i % 3 != 1)


def test_filter_fields_are_the_names_outside_strings() -> None:
    assert planning.filter_fields('ward == "criticality and busy"') == ("ward",)
    assert planning.filter_fields("installed.app < 3 or tags has 'x\\' id'") == (
        "installed", "tags")
    assert planning.filter_fields('not (busy == true) and last_seen > 5') == (
        "busy", "last_seen")
