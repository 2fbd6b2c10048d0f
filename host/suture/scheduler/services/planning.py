"""Rollout planning: choose the targeted devices, order them into waves, and give each its
first step on the path to the release (must-pass-through releases first)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    case,
    func,
    insert,
    literal,
    select,
    tuple_,
)
from sqlalchemy import cast as cast_
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from suture.scheduler.filterexpr import Predicate, compile_filter
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

    Set-based, in the database (``_plan_in_sql``): the target filter, the groups and the path
    planner are evaluated in Python once per distinct combination of the values they read (a
    fleet has few: wards, criticalities, tag sets, installed versions), and one
    ``INSERT ... SELECT`` writes the entries, ordered and cut into waves by the database. A
    filter whose values are nearly per device (``id``, ``last_seen``) or a value SQL cannot
    compare (NULL) plans the same way over the devices' rows in Python instead
    (``_plan_in_python``). No ORM object is made per device either way."""
    text = rollout.target_filter.strip()
    predicate = compile_filter(text) if text else None
    fields = filter_fields(text) if text else ()
    _fleet_work_mem(session)
    scope = (Device.vendor_id == release.vendor_id, Device.class_id == release.class_id,
             Device.decommissioned_at.is_(None), tenants.device_scope(rollout.tenant))
    planned = _plan_in_sql(session, rollout=rollout, release=release, now=now,
                           predicate=predicate, fields=fields, scope=scope)
    if planned is not None:
        return planned
    return _plan_in_python(session, rollout=rollout, release=release, now=now,
                           predicate=predicate, fields=fields, scope=scope)


#: PostgreSQL's memory per sort and hash while a plan is made (``SET LOCAL``: this transaction
#: only): the fleet's grouping, the rollout order and the write order of 100,000 devices each fit
#: in it, instead of spilling to temporary files at the default 4 MB.
PLAN_WORK_MEM = "64MB"


def _fleet_work_mem(session: Session) -> None:
    if session.connection().dialect.name == "postgresql":
        session.execute(sql_text(f"SET LOCAL work_mem = '{PLAN_WORK_MEM}'"))


def _device_order(session: Session) -> ColumnElement[Any]:
    """The device id as the plan orders it: by code point, as Python (``_plan_in_python``,
    ``waves.order_candidates``) and SQLite do, whatever the PostgreSQL database's collation;
    a byte comparison is also the cheapest a sort of 100,000 ids can make."""
    if session.connection().dialect.name == "postgresql":
        return Device.id.collate("C")
    return Device.id.expression


class _Admission:
    """Whether a device's groups and the values the target filter reads admit it into a plan;
    each distinct value is decided once (a fleet has few)."""

    def __init__(self, groups: set[str], predicate: Predicate | None, fields: tuple[str, ...],
                 json_of: dict[str | None, Any]) -> None:
        self.groups, self.predicate, self.fields, self.json_of = groups, predicate, fields, json_of
        self.busy_at = fields.index("busy") if "busy" in fields else None
        self.member_of: dict[str | None, bool] = {}
        self.passing: dict[tuple[Any, ...], bool] = {}

    def member(self, groups_text: str | None) -> bool:
        """Whether a device with these groups (JSON text) is in one of the rollout's."""
        member = self.member_of.get(groups_text)
        if member is None:
            member = self.member_of[groups_text] = bool(
                self.groups.intersection(_decoded(self.json_of, groups_text) or ()))
        return member

    def passes(self, key: tuple[Any, ...]) -> bool:
        """Whether the filter passes a device whose filter fields hold ``key``."""
        assert self.predicate is not None
        ok = self.passing.get(key)
        if ok is None:
            rec = {f: (_decoded(self.json_of, v) if f in _JSON_FIELDS else v)
                   for f, v in zip(self.fields, key, strict=True)}
            if self.busy_at is not None:  # the driver's 0/1 on SQLite
                rec["busy"] = bool(key[self.busy_at])
            ok = self.passing[key] = self.predicate(rec)
        return ok


def _engaged(component: str) -> Select[Any]:
    """The devices with an unfinished entry in an unfinished rollout of ``component``."""
    return (select(RolloutDevice.device_id)
            .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
            .join(Release, Release.id == Rollout.release_id)
            .where(Rollout.state.not_in(FINISHED_ROLLOUTS),
                   Release.component == component,
                   RolloutDevice.state.not_in([s.value for s in TERMINAL_ENTRY_STATES])))


#: Most distinct combinations planned in the database; past it the IN lists would cost more
#: than planning over the rows in Python.
MAX_SQL_COMBINATIONS = 2000


def _plan_in_sql(session: Session, *, rollout: Rollout, release: Release, now: int,
                 predicate: Predicate | None, fields: tuple[str, ...],
                 scope: tuple[ColumnElement[bool], ...]) -> PlanResult | None:
    """The plan by one grouped read and one ``INSERT ... SELECT``; ``None`` (nothing written)
    when the combinations are too many or one holds a NULL the SQL could not match.

    The read groups the fleet by what planning looks at (groups, installed versions,
    criticality, whether another rollout holds the device, the filter's fields) with a count:
    each group is decided once, and three sets come out of it, each a function of its own
    columns: the group lists that are members, the filter values that pass, the installed
    versions that need the release (with their first step). A device is a target when it is
    in all three and free; the write selects exactly those, numbers them in rollout order
    (``row_number()``), cuts the numbers into waves, and maps each installed text to its step
    (``CASE``)."""
    groups = set(rollout.target_groups or ())
    component, sequence = release.component, release.sequence_number
    engaged = _engaged(component)
    groups_col, installed_col = _FILTER_COLUMNS["groups"], _FILTER_COLUMNS["installed"]
    held = case((Device.id.in_(engaged), 1), else_=0)
    keys = [_FILTER_COLUMNS[f] for f in fields]
    rows = driver_rows(session, (
        select(groups_col, installed_col, Device.criticality, held, func.count(), *keys)
        .where(*scope).group_by(groups_col, installed_col, Device.criticality, held, *keys)))
    if len(rows) > MAX_SQL_COMBINATIONS:
        return None
    graph = load_graph(session, release)
    target = release_node(release)
    json_of: dict[str | None, Any] = {None: None}
    admit = _Admission(groups, predicate, fields, json_of)
    members: set[str] = set()
    passing: set[tuple[Any, ...]] = set()
    #: installed text -> (installed version, entry state, step release, detail)
    needing: dict[str, tuple[int, str, int | None, str]] = {}
    already = busy_elsewhere = max_crit = targets = blocked = 0
    for row in rows:
        groups_text, inst_text, criticality, is_held, count = row[:5]
        key = tuple(row[5:])
        if groups:
            if not admit.member(groups_text):
                continue
            if groups_text is None:
                return None
            members.add(groups_text)
        if predicate is not None:
            if not admit.passes(key):
                continue
            if any(v is None for v in key):
                return None
            passing.add(key)
        installed = _decoded(json_of, inst_text) or {}
        version = int(installed.get(component, 0))
        if version >= sequence:
            already += count
            continue
        if is_held:
            busy_elsewhere += count
            continue
        if inst_text is None:
            return None
        step = needing.get(inst_text)
        if step is None:
            state, step_id, _, _, detail = _first_step(dict(installed), target, graph, now)
            step = needing[inst_text] = (version, state, step_id, detail)
        targets += count
        max_crit = max(max_crit, criticality)
        blocked += count if step[1] == _BLOCKED else 0
    sizes = waves.wave_sizes(rollout.waves, targets) if targets else []
    if targets:
        _insert_planned(session, rollout, now, sizes, scope, engaged,
                        members if groups else None,
                        (keys, passing) if predicate is not None else None, needing)
    return PlanResult(targets, sizes, already, busy_elsewhere, max_crit, blocked)


def _insert_planned(session: Session, rollout: Rollout, now: int, sizes: list[int],
                    scope: tuple[ColumnElement[bool], ...], engaged: Select[Any],
                    members: set[str] | None,
                    passing: tuple[list[Any], set[tuple[Any, ...]]] | None,
                    needing: dict[str, tuple[int, str, int | None, str]]) -> None:
    """The ``INSERT ... SELECT`` of ``_plan_in_sql``: the targets, numbered in rollout order
    (the same keys as ``waves.order_candidates``), their waves, their first steps."""
    installed_col = _FILTER_COLUMNS["installed"]
    texts = sorted(needing)

    def by_installed(index: int) -> Any:
        return case({text: needing[text][index] for text in texts}, value=installed_col)

    where = [*scope, installed_col.in_(texts), Device.id.not_in(engaged)]
    if members is not None:
        where.append(_FILTER_COLUMNS["groups"].in_(sorted(members)))
    if passing is not None:
        keys, values = passing
        where.append(tuple_(*keys).in_(sorted(values, key=repr)) if len(keys) > 1
                     else keys[0].in_(sorted(v[0] for v in values)))
    version = by_installed(0)
    device = _device_order(session)
    order = ([Device.criticality] if rollout.order == "criticality" else []) + [
        version, Device.created_at, device]
    waves.order_candidates([], rollout.order)  # an unknown order is refused here too
    numbered = select(
        Device.id.label("device_id"), device.label("device_key"),
        (func.row_number().over(order_by=order) - 1).label("position"),
        by_installed(1).label("state"), by_installed(2).label("step_release_id"),
        by_installed(3).label("detail"),
    ).where(*where).subquery()
    bounds, wave_of = 0, []
    for index, size in enumerate(sizes[:-1]):
        bounds += size
        wave_of.append((numbered.c.position < bounds, index))
    wave: ColumnElement[Any] = (case(*wave_of, else_=len(sizes) - 1) if wave_of
                                else literal(0))
    columns: list[Any] = [literal(rollout.id), numbered.c.device_id, wave, numbered.c.position,
                          numbered.c.state, numbered.c.step_release_id, literal(0),
                          literal(now), numbered.c.detail]
    session.execute(insert(RolloutDevice).from_select(  # in index order, as _plan_in_python
        list(_ENTRY_COLUMNS), select(*columns).order_by(numbered.c.device_key)))


def _plan_in_python(session: Session, *, rollout: Rollout, release: Release, now: int,
                    predicate: Predicate | None, fields: tuple[str, ...],
                    scope: tuple[ColumnElement[bool], ...]) -> PlanResult:
    """The plan over the devices' rows in Python: one read of the candidate devices' columns
    (JSON as text), the target filter and the path planner evaluated once per distinct
    combination of the values they read, one sort of plain tuples, one bulk write (``COPY``
    on PostgreSQL, ``executemany`` on SQLite)."""
    groups = set(rollout.target_groups or ())
    component, sequence = release.component, release.sequence_number
    engaged = set(session.execute(_engaged(component)).scalars())
    rows = driver_rows(session, (
        select(Device.id, Device.criticality, Device.created_at,
               _FILTER_COLUMNS["groups"], _FILTER_COLUMNS["installed"],
               *(_FILTER_COLUMNS[f] for f in fields))
        .where(*scope)))
    json_of: dict[str | None, Any] = {None: None}
    admit = _Admission(groups, predicate, fields, json_of)
    cands: list[waves.Candidate] = []
    installed_text: dict[str, str | None] = {}
    already = busy_elsewhere = max_crit = 0
    for row in rows:
        device_id, criticality, created_at, groups_text, inst_text = row[:5]
        if groups and not admit.member(groups_text):
            continue
        if predicate is not None and not admit.passes(tuple(row[5:])):
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
