"""Test helpers for the scheduler: a world with a database, a clock, keys, and simulated
devices that poll and report through the real services (or the real HTTP API)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from suture import suit
from suture.keys import PrivateKey
from suture.scheduler import credentials, migrate
from suture.scheduler.api.serial import SerialWorker
from suture.scheduler.authz import Principal, Role
from suture.scheduler.clock import ManualClock
from suture.scheduler.db import make_engine
from suture.scheduler.models import Base, Release, Rollout
from suture.scheduler.policies.decide import Action
from suture.scheduler.schedule_doc import (
    K_ACTION,
    K_RELEASE_ID,
    K_ROLLOUT_ID,
    K_SCHEDULE_NUMBER,
    K_SEQUENCE_NUMBER,
    verify_schedule,
)
from suture.scheduler.schemas import DeviceCreate, ReportIn, Requirement, RolloutCreate
from suture.scheduler.services import devices, operators, releases, reports, rollouts, schedules
from suture.scheduler.services.audit import AuditKey
from suture.suit.sbom_build import build_sbom

VENDOR_ID = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
CLASS_ID = "1492af14-2569-5e48-bf42-9b2d51f2ab45"
ROOT_SECRET = bytes(range(32))
#: The tests' audit key (HMAC key, checkpoint signing key).
AUDIT_KEY = AuditKey(bytes(range(32, 64)),
                     ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96))))
#: The administrator the accounts are made by.
ADMIN = "root"
#: The operators of the tests, and their roles: alice runs the fleet (and audits it), bob and
#: carol approve, dave plans rollouts and approves others', vera only looks.
ACCOUNTS: dict[str, tuple[Role, ...]] = {
    "alice": (Role.DEVICE_MANAGER, Role.RELEASE_MANAGER, Role.ROLLOUT_OPERATOR, Role.AUDITOR),
    "bob": (Role.APPROVER,),
    "carol": (Role.APPROVER,),
    "dave": (Role.ROLLOUT_OPERATOR, Role.APPROVER),
    "vera": (Role.VIEWER,),
}


def make_accounts(sessions: sessionmaker[Session], now: int
                  ) -> tuple[dict[str, Principal], dict[str, str]]:
    """The administrator, then ``ACCOUNTS``, each with a token: (principals, tokens) by name."""
    boot = operators.bootstrap_administrator(sessions(), name=ADMIN, password=None, now=now)
    assert boot is not None
    admin = operators.authenticate_token(sessions(), token=boot.token, now=now)
    principals, tokens = {ADMIN: admin}, {ADMIN: boot.token}
    for name, roles in ACCOUNTS.items():
        operators.add_operator(sessions(), name=name, roles=[r.value for r in roles],
                               password=None, actor=admin, now=now)
        issued = operators.issue_token(sessions(), operator=name, name="tests",
                                       ttl_s=operators.MAX_TOKEN_TTL_S, actor=admin, now=now)
        tokens[name] = issued.token
        principals[name] = operators.authenticate_token(sessions(), token=issued.token, now=now)
    return principals, tokens


def make_envelope(key: PrivateKey, base: Path, seq: int, component: str = "app",
                  payload: bytes | None = None, *, with_sbom: bool = True
                  ) -> tuple[bytes, bytes]:
    """A signed envelope for ``component`` #``seq`` and its payload, written to
    ``base/COMPONENT-SEQ.bin``; the manifest binds the CycloneDX SBOM written beside it
    (:func:`sbom_path`), which an import requires, unless ``with_sbom`` is false."""
    data = payload if payload is not None else f"{component} firmware #{seq}\n".encode() * 50
    name = f"{component}-{seq}.bin"
    (base / name).write_bytes(data)
    desc: dict[str, Any] = {"sequence-number": seq, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
                            "components": [{"id": [component], "file": name,
                                            "uri": f"https://vendor.example/{name}"}]}
    if with_sbom:
        sbom_path(base, seq, component).write_bytes(build_sbom(component, str(seq), {name: data}))
        desc["sbom"] = sbom_path(base, seq, component).name
    return suit.create_envelope(desc, key, base_dir=base), data


def sbom_path(base: Path, seq: int, component: str = "app") -> Path:
    """Where :func:`make_envelope` writes the SBOM its envelope binds."""
    return base / f"{component}-{seq}.cdx.json"


def make_release(key: PrivateKey, base: Path, seq: int, component: str = "app",
                 payload: bytes | None = None) -> tuple[bytes, bytes, bytes]:
    """Envelope, payload and the SBOM the envelope binds: what an import takes."""
    envelope, data = make_envelope(key, base, seq, component, payload)
    return envelope, data, sbom_path(base, seq, component).read_bytes()


def release_upload(envelope: bytes, payload: bytes, sbom: bytes | None) -> dict[str, str]:
    """The JSON body of ``POST /api/v1/releases`` for these files."""
    import base64

    body = {"envelope_b64": base64.b64encode(envelope).decode(),
            "payload_b64": base64.b64encode(payload).decode()}
    if sbom is not None:
        body["sbom_b64"] = base64.b64encode(sbom).decode()
    return body


class SimDevice:
    """A device driven through the services: it polls, verifies its schedule, reports."""

    def __init__(self, world: World, device_id: str, installed: Mapping[str, int]) -> None:
        self.world = world
        self.id = device_id
        self.installed = dict(installed)
        self.counter = 0
        self.last_number = 0
        self.state = "idle"
        self.staged: int | None = None  # release id in the staging slot

    def next_counter(self) -> int:
        self.counter += 1
        return self.counter

    def poll(self) -> dict[int, Any]:
        result = schedules.poll_schedule(self.world.session(), device_id=self.id,
                                         counter=self.next_counter(), now=self.world.clock.now(),
                                         ctx=self.world.ctx)
        doc = dict(verify_schedule(result.document, self.world.scheduler_key.public_key()))
        assert doc[K_SCHEDULE_NUMBER] >= self.last_number, "schedule number went back"
        self.last_number = doc[K_SCHEDULE_NUMBER]
        return doc

    def action(self) -> Action:
        return Action(self.poll()[K_ACTION])

    def report(self, state: str, **fields: Any) -> reports.ReportOutcome:
        self.state = state
        body = ReportIn(state=state, installed=dict(self.installed), **fields)  # type: ignore[arg-type]
        return reports.record_report(self.world.session(), device_id=self.id,
                                     counter=self.next_counter(), report=body,
                                     now=self.world.clock.now(), ctx=self.world.ctx)

    def follow(self, *, fail_install: bool = False) -> Action:
        """Do what the schedule says, one step; return the action that was acted on."""
        doc = self.poll()
        action = Action(doc[K_ACTION])
        rid, rel = doc.get(K_ROLLOUT_ID), doc.get(K_RELEASE_ID)
        if action == Action.DOWNLOAD and self.staged != rel:
            self.report("downloading", rollout_id=rid, release_id=rel, progress=0)
            self.staged = rel
            self.report("staged", rollout_id=rid, release_id=rel)
        elif action == Action.INSTALL:
            self.staged = None
            self.report("installing", rollout_id=rid, release_id=rel)
            if fail_install:
                self.report("failed", rollout_id=rid, release_id=rel,
                            error={"code": 7, "message": "health check failed"})
            else:
                self.installed[self.world.release_component[rel]] = doc[K_SEQUENCE_NUMBER]
                self.report("trial", rollout_id=rid, release_id=rel)
        elif action == Action.CONFIRM_WAIT:
            self.report("confirmed", rollout_id=rid, release_id=rel)
        elif action == Action.REVERT and self.state == "trial":
            self.installed[self.world.release_component[rel]] = self.world.previous_of(rel)
            self.report("reverted", rollout_id=rid, release_id=rel)
        elif action == Action.REVERT:  # as the agent does: a confirmed version has no backup
            self.report(self.state, rollout_id=rid, release_id=rel,
                        error={"code": 150, "message": "no trial to revert: the installed "
                               "version was confirmed (its backup is gone)"})
        elif action == Action.ABORT:
            self.staged = None
            self.report("idle", rollout_id=rid, release_id=rel)
        return action

    def update_fully(self, max_steps: int = 12, **kw: Any) -> list[Action]:
        seen = []
        for _ in range(max_steps):
            action = self.follow(**kw)
            seen.append(action)
            if action == Action.NONE:
                break
        return seen


class World:
    def __init__(self, sessions: sessionmaker[Session], clock: ManualClock,
                 ctx: schedules.ScheduleContext, scheduler_key: PrivateKey,
                 vendor_key: PrivateKey, tmp: Path) -> None:
        self.sessions = sessions
        self.clock = clock
        self.ctx = ctx
        self.scheduler_key = scheduler_key
        self.vendor_key = vendor_key
        self.tmp = tmp
        self.release_component: dict[int, str] = {}
        self.release_seq: dict[int, int] = {}
        self.start_versions: dict[str, int] = {}
        self.ops, self.tokens = make_accounts(sessions, clock.now())

    def op(self, name: str) -> Principal:
        """The signed-in operator ``name`` (``ACCOUNTS``)."""
        return self.ops[name]

    @property
    def alice(self) -> Principal:
        return self.ops["alice"]

    def session(self) -> Session:
        return self.sessions()

    def device(self, device_id: str, *, installed: Mapping[str, int] | None = None,
               criticality: int = 2, groups: Sequence[str] = ("ward-3",),
               **extra: Any) -> SimDevice:
        inst = dict(installed if installed is not None else {"app": 1})
        create = DeviceCreate(id=device_id, board="sim", vendor_id=VENDOR_ID, class_id=CLASS_ID,
                              criticality=criticality, groups=list(groups), installed=inst,
                              **extra)
        devices.add_device(self.session(), create=create, root_secret=ROOT_SECRET,
                           actor=self.alice, now=self.clock.now())
        self.start_versions[device_id] = inst.get("app", 0)
        return SimDevice(self, device_id, inst)

    def release(self, seq: int, *, component: str = "app", must_pass_through: bool = False,
                requires: Sequence[tuple[str, int]] = ()) -> Release:
        envelope, payload, sbom = make_release(self.vendor_key, self.tmp, seq, component)
        rel = releases.import_release(
            self.session(), envelope=envelope, payload=payload, sbom=sbom, notes=None,
            trust_anchors=[self.vendor_key.public_key()], actor=self.alice,
            must_pass_through=must_pass_through,
            requires=[Requirement(component=c, min_version=v) for c, v in requires],
            now=self.clock.now())
        self.release_component[rel.id] = component
        self.release_seq[rel.id] = seq
        return rel

    def previous_of(self, release_id: int) -> int:
        comp = self.release_component[release_id]
        seqs = sorted(s for r, s in self.release_seq.items() if self.release_component[r] == comp)
        mine = self.release_seq[release_id]
        lower = [s for s in seqs if s < mine]
        return lower[-1] if lower else 1

    def rollout(self, release_id: int, **spec: Any) -> Rollout:
        spec.setdefault("name", f"rollout of {release_id}")
        spec.setdefault("target_groups", ["ward-3"])
        return rollouts.create_rollout(self.session(),
                                       spec=RolloutCreate(release_id=release_id, **spec),
                                       actor=self.alice, now=self.clock.now())

    def start(self, rollout_id: int, approvers: Sequence[str] = ("bob",)) -> Rollout:
        for who in approvers:
            rollouts.approve_rollout(self.session(), rollout_id=rollout_id, actor=self.op(who),
                                     now=self.clock.now())
        return rollouts.start_rollout(self.session(), rollout_id=rollout_id, actor=self.alice,
                                      now=self.clock.now())

    def advance(self) -> list[str]:
        return [c.change for c in rollouts.advance(self.session(), now=self.clock.now())]

    def status(self, rollout_id: int) -> Any:
        return rollouts.rollout_status(self.session(), rollout_id=rollout_id)

    def device_secret(self, device_id: str, generation: int = 1) -> bytes:
        return credentials.derive_secret(ROOT_SECRET, device_id, generation)


def report_json(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


#: Every table a test may write, emptied before the next test on PostgreSQL (the audit head is
#: reset instead): all the models' tables, so a table added later is emptied too.
TABLES = tuple(sorted(set(Base.metadata.tables) - {"audit_head"}))


def postgres_url() -> str:
    url = os.environ.get("SUTURE_TEST_POSTGRES_URL")
    if not url:
        pytest.fail("SUTURE_TEST_POSTGRES_URL is not set: the tests marked postgres need a live "
                    "PostgreSQL (tools/run-tests.sh starts one; locally: "
                    "export SUTURE_TEST_POSTGRES_URL=$(tools/postgres-test-server.sh start DIR))")
    return url


def fresh_postgres(url: str) -> Engine:
    engine = make_engine(url, pool_size=5)
    with engine.begin() as conn:
        # a fresh log for the next test: past the append-only triggers, this transaction only
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        conn.execute(text("UPDATE audit_head SET seq = 0, hash = :h, mac = NULL"),
                     {"h": "0" * 64})
    return engine


def migrated_sqlite(path: Path) -> Path:
    """A SQLite database at ``path`` migrated to the head (a template each test copies)."""
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@contextmanager
def blank_postgres_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own, empty (no revision applied), dropped at the end."""
    admin = create_engine(postgres_url(), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def own_postgres_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of this test process's own, migrated once; dropped at the end
    (the body of a session fixture: ``yield from own_postgres_database("suture_x")``)."""
    with blank_postgres_database(prefix) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


class Api:
    """The HTTP app under test, with operator tokens (alice's by default) and device request
    signing."""

    def __init__(self, client: TestClient, tokens: dict[str, str], clock: ManualClock) -> None:
        self.client = client
        self.tokens = tokens
        self.token = tokens["alice"]
        self.clock = clock
        self.counters: dict[str, int] = {}

    @property
    def op(self) -> dict[str, str]:
        return self.as_("alice")

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def device_headers(self, device_id: str, method: str, path: str, body: bytes = b"",
                       *, secret: bytes | None = None, counter: int | None = None,
                       time: int | None = None) -> dict[str, str]:
        if counter is None:
            counter = self.counters.get(device_id, 0) + 1
        self.counters[device_id] = max(counter, self.counters.get(device_id, 0))
        key = secret if secret is not None else credentials.derive_secret(ROOT_SECRET, device_id,
                                                                          1)
        return credentials.sign_request(key, method=method, path=path, device_id=device_id,
                                        time=self.clock.now() if time is None else time,
                                        counter=counter, body=body)

    def device_get(self, device_id: str, path: str, **kw: object) -> httpx.Response:
        extra = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        headers = {**self.device_headers(device_id, "GET", path, **kw), **extra}  # type: ignore[arg-type]
        return self.client.get(path, headers=headers)

    def device_post(self, device_id: str, path: str, body: bytes, **kw: object
                    ) -> httpx.Response:
        headers = self.device_headers(device_id, "POST", path, body, **kw)  # type: ignore[arg-type]
        headers["Content-Type"] = "application/json"
        return self.client.post(path, content=body, headers=headers)


#: The administrator's password in the CLI tests.
ADMIN_PASSWORD = "correct horse battery staple"


def cli_accounts(cli: Any, app: Any) -> dict[str, str]:
    """Through the CLI, in a folder where ``suture scheduler init`` ran: init makes the
    administrator, who signs in with its password and makes ``ACCOUNTS`` (tokens only); each
    account's token by name (for ``SUTURE_TOKEN``)."""
    def run(args: list[str], token: str | None = None, stdin: str | None = None) -> str:
        env = {"SUTURE_TOKEN": token} if token else {"SUTURE_TOKEN": ""}
        result = cli.invoke(app, ["scheduler", *args], input=stdin, env=env)
        assert result.exit_code == 0, result.output
        return str(result.stdout)

    run(["init", "--admin", ADMIN, "--password-stdin"], stdin=ADMIN_PASSWORD + "\n")
    tokens = {ADMIN: run(["login", ADMIN, "--password-stdin", "--print"],
                         stdin=ADMIN_PASSWORD + "\n").strip()}
    for name, roles in ACCOUNTS.items():
        run(["operator", "add", name, "--no-password",
             *(a for r in roles for a in ("--role", r.value))], token=tokens[ADMIN])
        issued = json.loads(run(["token", "create", "--for", name, "--json"],
                                token=tokens[ADMIN]))
        tokens[name] = issued["token"]
    return tokens


@asynccontextmanager
async def poll_thread_held(worker: SerialWorker) -> AsyncIterator[None]:
    """The poll thread kept busy (in a wait) from entry to exit: what is queued meanwhile waits
    and is found together when the thread is let go. Entered only once the thread runs the wait,
    so nothing queued after entry can be taken out along with it."""
    started, gate = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        gate.wait(30)

    held = asyncio.ensure_future(worker.run(hold))
    while not started.is_set():
        await asyncio.sleep(0.005)
    try:
        yield
    finally:
        gate.set()
        await held
