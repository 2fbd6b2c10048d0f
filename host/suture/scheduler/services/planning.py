"""Rollout planning: choose the targeted devices, order them into waves, and give each its
first step on the path to the release (must-pass-through releases first)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Select, Table, Text, select
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session

from suture.scheduler.filterexpr import compile_filter
from suture.scheduler.models import (
    TERMINAL_ENTRY_STATES,
    Device,
    EntryState,
    Release,
    Rollout,
    RolloutDevice,
    RolloutState,
)
from suture.scheduler.policies import paths, waves
from suture.scheduler.services import tenants

FINISHED_ROLLOUTS = (RolloutState.COMPLETED.value, RolloutState.ABORTED.value)


def release_node(r: Release) -> paths.ReleaseNode:
    return paths.ReleaseNode(
        id=r.id, component=r.component, sequence_number=r.sequence_number,
        must_pass_through=r.must_pass_through, recalled=r.recalled,
        requires=tuple((str(q["component"]), int(q["min_version"])) for q in r.requires or ()),
    )


def load_graph(session: Session, release: Release) -> list[paths.ReleaseNode]:
    """Every release of the same vendor and class (all components): the version graph."""
    rows = session.execute(
        select(Release).where(Release.vendor_id == release.vendor_id,
                              Release.class_id == release.class_id)
    ).scalars()
    return [release_node(r) for r in rows]


@dataclass(frozen=True)
class PlanResult:
    targets: int
    waves: list[int]
    already_current: int
    busy_elsewhere: int
    max_criticality: int
    #: Targets held (``blocked``) because a requirement cannot be met yet.
    blocked: int = 0


#: The device fields a target filter may read (``filterexpr``), as planning reads them: the
#: JSON columns as their text, decoded once per distinct value.
_FILTER_COLUMNS: dict[str, Any] = {
    "board": Device.board, "vendor_id": Device.vendor_id, "class_id": Device.class_id,
    "ward": Device.ward, "location": Device.location, "criticality": Device.criticality,
    "tags": cast_(Device.tags, Text), "groups": cast_(Device.groups, Text),
    "installed": cast_(Device.installed, Text), "state": Device.state, "busy": Device.busy,
    "last_seen": Device.last_seen, "id": Device.id,
}
_BY_DEVICE = itemgetter(1)
_BLOCKED = EntryState.BLOCKED.value
_ENTRIES = cast(Table, RolloutDevice.__table__)
_JSON_FIELDS = frozenset({"tags", "groups", "installed"})
_STRING_LITERAL = re.compile(r"""\"(?:[^"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'""")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENTRY_COLUMNS = ("rollout_id", "device_id", "wave", "position", "state", "step_release_id",
                  "busy_skips", "updated_at", "detail")


def filter_fields(text: str) -> tuple[str, ...]:
    """The device fields a (valid) target filter may read: the names outside its string
    literals that are fields. A name too many only makes planning evaluate the filter more
    often; none is ever missed, since every field reference is such a name."""
    names = set(_NAME.findall(_STRING_LITERAL.sub(" ", text)))
    return tuple(sorted(names & _FILTER_COLUMNS.keys()))


def plan_targets(session: Session, *, rollout: Rollout, release: Release, now: int) -> PlanResult:
    """Inside the caller's transaction: write one ``rollout_devices`` row per targeted device.

    Set-based: one read of the candidate devices' columns (JSON as text), the target filter
    and the path planner evaluated once per distinct combination of the values they read (a
    fleet has few: wards, criticalities, tag sets, installed versions), one sort of plain
    tuples, one bulk write (``COPY`` on PostgreSQL, ``executemany`` on SQLite). No ORM object
    is made per device."""
    text = rollout.target_filter.strip()
    predicate = compile_filter(text) if text else None
    fields = filter_fields(text) if text else ()
    groups = set(rollout.target_groups or ())
    component, sequence = release.component, release.sequence_number
    engaged = set(session.execute(
        select(RolloutDevice.device_id)
        .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
        .join(Release, Release.id == Rollout.release_id)
        .where(Rollout.state.not_in(FINISHED_ROLLOUTS),
               Release.component == component,
               RolloutDevice.state.not_in([s.value for s in TERMINAL_ENTRY_STATES]))
    ).scalars())
    rows = driver_rows(session, (
        select(Device.id, Device.criticality, Device.created_at,
               _FILTER_COLUMNS["groups"], _FILTER_COLUMNS["installed"],
               *(_FILTER_COLUMNS[f] for f in fields))
        .where(Device.vendor_id == release.vendor_id, Device.class_id == release.class_id,
               Device.decommissioned_at.is_(None), tenants.device_scope(rollout.tenant))))
    busy_at = 5 + fields.index("busy") if "busy" in fields else None
    json_of: dict[str | None, Any] = {None: None}
    in_groups: dict[str | None, bool] = {}
    passes: dict[tuple[Any, ...], bool] = {}
    cands: list[waves.Candidate] = []
    installed_text: dict[str, str | None] = {}
    already = busy_elsewhere = max_crit = 0
    for row in rows:
        device_id, criticality, created_at, groups_text, inst_text = row[:5]
        if groups:
            member = in_groups.get(groups_text)
            if member is None:
                member = in_groups[groups_text] = bool(
                    groups.intersection(_decoded(json_of, groups_text) or ()))
            if not member:
                continue
        if predicate is not None:
            key = row[5:]
            ok = passes.get(key)
            if ok is None:
                rec = {f: (_decoded(json_of, v) if f in _JSON_FIELDS else v)
                       for f, v in zip(fields, key, strict=True)}
                if busy_at is not None:  # the driver's 0/1 on SQLite
                    rec["busy"] = bool(row[busy_at])
                ok = passes[key] = predicate(rec)
            if not ok:
                continue
        installed = _decoded(json_of, inst_text) or {}
        version = int(installed.get(component, 0))
        if version >= sequence:
            already += 1
            continue
        if device_id in engaged:
            busy_elsewhere += 1
            continue
        installed_text[device_id] = inst_text
        max_crit = max(max_crit, criticality)
        cands.append(waves.Candidate(device_id, version, criticality, created_at))
    ordered = waves.order_candidates(cands, rollout.order)
    sizes = waves.wave_sizes(rollout.waves, len(ordered)) if ordered else []
    graph = load_graph(session, release)
    target = release_node(release)
    #: installed text -> the rest of the entry (few distinct values: one path computed each)
    planned: dict[str | None, tuple[str, int | None, int, int, str]] = {}
    entries: list[tuple[Any, ...]] = []
    rollout_id = rollout.id
    position = 0
    for wave, size in enumerate(sizes):
        for cand in ordered[position : position + size]:
            device_id = cand.device_id
            inst_text = installed_text[device_id]
            step = planned.get(inst_text)
            if step is None:
                step = planned[inst_text] = _first_step(
                    dict(_decoded(json_of, inst_text) or {}), target, graph, now)
            entries.append((rollout_id, device_id, wave, position, *step))
            position += 1
    blocked = sum(1 for entry in entries if entry[4] == _BLOCKED)
    entries.sort(key=_BY_DEVICE)  # index order: each index is appended to, not split
    bulk_insert(session, _ENTRIES, _ENTRY_COLUMNS, entries)
    return PlanResult(len(cands), sizes, already, busy_elsewhere, max_crit, blocked)


def driver_rows(session: Session, statement: Select[Any]) -> Sequence[tuple[Any, ...]]:
    """Inside the caller's transaction: ``statement``'s rows as the driver's plain tuples,
    with none of SQLAlchemy's per-row work (a row object, result processors), for reads of a
    whole fleet. The values are the driver's: SQLite gives booleans as 0 and 1."""
    conn = session.connection()
    compiled = statement.compile(dialect=conn.dialect,
                                 compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args: Any = (tuple(params[name] for name in compiled.positiontup or ())
                 if compiled.positional else params)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(str(compiled), args)
        return cursor.fetchall()  # tuples, from both drivers
    finally:
        cursor.close()


def _decoded(cache: dict[str | None, Any], text: str | None) -> Any:
    """``text`` (a JSON column's text) decoded, once per distinct value."""
    try:
        return cache[text]
    except KeyError:
        value = cache[text] = json.loads(text) if text is not None else None
        return value


def _first_step(installed: dict[str, int], target: paths.ReleaseNode,
                graph: list[paths.ReleaseNode], now: int) -> tuple[str, int | None, int, int, str]:
    """The rest of a new entry for a device with ``installed``: state, step release,
    busy skips, updated at, detail."""
    step = paths.next_step(installed, target, graph)
    step_id = step.release.id if step.release else None
    if step.blocked:
        return _BLOCKED, step_id, 0, now, paths.blocked_reason(step, installed, graph)
    return EntryState.PENDING.value, step_id, 0, now, ""


#: Rows per ``executemany`` on SQLite (one statement, many parameter sets).
_INSERT_BATCH = 20_000


def bulk_insert(session: Session, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> None:
    """Inside the caller's transaction: append ``rows`` (values in the order of ``columns``,
    columns of the model's ``table``) at the driver's speed: ``COPY ... FROM STDIN`` on
    PostgreSQL, ``executemany`` of one prepared ``INSERT`` on SQLite."""
    if not rows:
        return
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
    conn = session.connection()
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    names = ", ".join(columns)  # the model's names, checked above: never input
    cursor = dbapi.cursor()
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 (model)
            for start in range(0, len(rows), _INSERT_BATCH):
                cursor.executemany(sql, rows[start : start + _INSERT_BATCH])
    finally:
        cursor.close()


def replan_entry(session: Session, entry: RolloutDevice, installed: Mapping[str, int],
                 target: Release, now: int) -> paths.Step:
    """Recompute one device's next step (after it installed a step, or a recall)."""
    graph = load_graph(session, target)
    step = paths.next_step(installed, release_node(target), graph)
    entry.updated_at = now
    if step.done:
        entry.state = EntryState.SUCCEEDED.value
        entry.detail = ""
    elif step.blocked:
        entry.state = EntryState.BLOCKED.value
        entry.step_release_id = step.release.id if step.release else None
        entry.detail = paths.blocked_reason(step, installed, graph)
    else:
        entry.state = EntryState.PENDING.value
        entry.step_release_id = step.release.id if step.release else None
        entry.detail = ""
    return step


#: Entry states in which the device has not asked to install its step yet: the step may still
#: change.
BEFORE_INSTALL = frozenset({EntryState.PENDING, EntryState.DOWNLOADING, EntryState.STAGED})


def step_is_stale(step: Release, installed: Mapping[str, int], entry_state: str) -> bool:
    """The step planned for a device no longer fits what the device last reported: a
    requirement of the step is not met (the device reports an older component than planned,
    e.g. a loader that stage0 restored, or an operator changed the release's requirements), or
    the device already runs the step (it got there another way) while still pending."""
    if paths.unmet(release_node(step).requires, installed):
        return True
    return entry_state == EntryState.PENDING and \
        installed.get(step.component, 0) >= step.sequence_number
