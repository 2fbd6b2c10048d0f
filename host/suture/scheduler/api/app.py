"""``create_app(settings)``: the scheduler's ASGI app. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError
from starlette.concurrency import run_in_threadpool

from suture import __version__
from suture.bounded_body import BodyLimitMiddleware
from suture.keys import KeyFileError, load_private_key
from suture.scheduler import vendor_watch
from suture.scheduler.api.bodylimit import body_limit, refusal
from suture.scheduler.api.deps import AppState
from suture.scheduler.api.error_body import error_body
from suture.scheduler.api.routes import (
    device,
    device_deltas,
    device_hospital,
    operator_accounts,
    operator_audit,
    operator_deltas,
    operator_devices,
    operator_releases,
    operator_rollouts,
    operator_scheduler,
    operator_trust,
    suit_reports,
)
from suture.scheduler.api.serial import SerialWorker
from suture.scheduler.clock import Clock, SystemClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.ddi import routes as ddi_routes
from suture.scheduler.errors import ConfigurationError, SchedulerError
from suture.scheduler.live_config import LiveConfig
from suture.scheduler.services import audit, rollouts
from suture.scheduler.services.audit import AuditKey, load_audit_key
from suture.scheduler.services.schedules import ScheduleContext
from suture.scheduler.ui import mount_ui

log = logging.getLogger("suture.scheduler")


#: Seconds between housekeeping passes: settings file changes, audit checkpoints.
HOUSEKEEPING_INTERVAL_S = 5.0


def create_app(settings: Settings, *, clock: Clock | None = None,
               engine: Engine | None = None, config_path: Path | None = None,
               audit_key: AuditKey | None = None,
               vendors: vendor_watch.VendorAuthorities | None = None) -> FastAPI:
    """Build the app: engine, session factory (with the audit key), signing key, routes, error
    handlers. ``config_path`` is the settings file the service was started from: trust anchor
    changes in it apply while the service runs (``live_config.py``). ``vendors``: the vendors
    the service asks about its grants every ``vendor_check_interval_s`` and asks for the grant
    of a rollout (``POST /api/v1/rollouts/{id}/vendor-grant``) (default: those of
    ``vendors_path``; none without it)."""
    try:
        key = load_private_key(settings.signing_key_path)
    except KeyFileError as exc:
        raise ConfigurationError(
            f"scheduler signing key: {exc} (run `suture scheduler init`)") from None
    audit_key = audit_key or load_audit_key(settings.audit_key_path)
    engine = engine or make_engine(settings.database_url)
    state = AppState(
        settings=settings,
        sessions=make_session_factory(engine, audit_key=audit_key),
        clock=clock or SystemClock(),
        schedule_ctx=ScheduleContext(
            key=key, public_url=settings.public_url, poll_interval_s=settings.poll_interval_s,
            poll_jitter_s=settings.poll_jitter_s, forced_window_s=settings.forced_window_s),
        audit_key=audit_key,
        live=LiveConfig(settings, config_path),
        poll_worker=SerialWorker("suture-polls"),  # group commit on both databases
        vendors=vendors or (vendor_watch.from_vendors_file(settings.vendors_path)
                            if settings.vendors_path is not None else None),
    )
    checkpoints = _Checkpointer(state)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_housekeeping_forever(state, checkpoints))]
        if settings.advance_interval_s > 0:
            tasks.append(asyncio.create_task(_advance_forever(state,
                                                              settings.advance_interval_s)))
        watched = state.vendors
        if watched is not None and settings.vendor_check_interval_s > 0:
            tasks.append(asyncio.create_task(_check_vendors_forever(
                state, watched, settings.vendor_check_interval_s)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(SchedulerError, SQLAlchemyError, OSError):
                await run_in_threadpool(checkpoints.write, force=True)
            await run_in_threadpool(state.poll_worker.stop)

    app = FastAPI(
        title="suture scheduler",
        version=__version__,
        description=(
            "The hospital's firmware-update scheduler. Device routes authenticate with the "
            "per-device HMAC scheme of docs/formats/device-api.md; operator routes with "
            "`Authorization: Bearer <operator token>`."
        ),
        lifespan=lifespan,
        # /docs is Swagger UI with assets served locally (suture.scheduler.ui.api_docs)
        docs_url=None, redoc_url=None,
    )
    app.state.scheduler = state
    app.state.poll_gate = device.PollGate(limit=settings.max_polls_in_flight)
    app.add_middleware(BodyLimitMiddleware, refusal=refusal,
                       limit_for=lambda scope: ddi_routes.body_limit(
                           state.settings, scope["path"]) or body_limit(
                           state.settings, scope["method"], scope["path"]))
    # The devices' routes first (matched in order, and sent most often): suture's poll and
    # report, then DDI's (no other path has "controller/v1" for its second and third parts);
    # operator_releases and operator_deltas before the device's downloads: their
    # /releases/{id}/sbom and /releases/{id}/deltas must not be taken for the device's
    # /releases/{id}/{envelope|payload}
    app.include_router(device.router)
    app.include_router(ddi_routes.router)
    for router in (operator_releases.router, operator_deltas.router, device.downloads_router,
                   device_deltas.router, device_hospital.router, operator_accounts.router,
                   operator_devices.router, operator_rollouts.router, operator_audit.router,
                   operator_scheduler.router, operator_trust.router):
        app.include_router(router)
    app.include_router(operator_accounts.login_router)
    app.include_router(suit_reports.device_router)
    app.include_router(suit_reports.router)
    mount_ui(app)  # the operator's web UI at / (suture.scheduler.ui)
    app.include_router(ddi_routes.tokens_router)

    @app.get("/healthz", tags=["health"],
             responses={503: {"description": "the database is unreachable or its schema is "
                                             "not this version's"}})
    def healthz() -> JSONResponse:
        """The process and its database: a query, and the schema revision against this
        version's; also settings changed in the file that wait for a restart."""
        body = health(state)
        return JSONResponse(body, status_code=200 if body["status"] != "unavailable" else 503)

    @app.exception_handler(SchedulerError)
    async def _scheduler_error(_request: Request, exc: SchedulerError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Suture-Device, Bearer"} if exc.status_code == 401 else {}
        headers.update(exc.headers)
        return JSONResponse(error_body(exc.code, str(exc), exc.status_code),
                            status_code=exc.status_code, headers=headers)

    @app.exception_handler(StaleDataError)
    async def _stale(_request: Request, exc: StaleDataError) -> JSONResponse:
        return JSONResponse(error_body("conflict", "changed concurrently; retry", 409),
                            status_code=409)

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse(error_body("conflict", "conflicts with existing data", 409),
                            status_code=409)

    return app


def health(state: AppState) -> dict[str, Any]:
    """The answer of ``/healthz``."""
    from alembic.runtime.migration import MigrationContext

    from suture.scheduler.migrate import head_revision

    database: dict[str, Any] = {"ok": False}
    try:
        with state.sessions() as session, session.begin():
            conn = session.connection()
            database["dialect"] = conn.dialect.name
            conn.execute(text("SELECT 1"))
            revision = MigrationContext.configure(conn).get_current_revision()
            expected = head_revision()
            database.update(schema=revision, expected_schema=expected)
            if revision != expected:
                database["error"] = (f"schema {revision}, this version needs {expected} "
                                     "(`suture scheduler init` upgrades it)")
            else:
                database["ok"] = True
    except SQLAlchemyError as exc:
        database["error"] = str(exc).splitlines()[0][:200]
    with contextlib.suppress(SchedulerError, SQLAlchemyError):
        state.live.refresh_and_audit(state.sessions, state.clock.now())
    status = "ok" if database["ok"] else "unavailable"
    if status == "ok" and (state.live.restart_required or state.live.file_error):
        status = "degraded"
    return {"status": status, "database": database,
            "restart_required": state.live.restart_required,
            "settings_file_error": state.live.file_error}


class _Checkpointer:
    """Appends a signed checkpoint of the audit log's end to ``audit_checkpoint_path`` when the
    log grew, at most every ``audit_checkpoint_interval_s``."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.last_seq: int | None = None
        self.last_at = 0.0

    def write(self, *, force: bool = False) -> None:
        path = self.state.settings.audit_checkpoint_path
        if path is None:
            return
        due = time.monotonic() - self.last_at >= self.state.settings.audit_checkpoint_interval_s
        if not (due or force):
            return
        with self.state.sessions() as session:
            seq, digest = audit.head(session)
        if seq == self.last_seq or seq == 0:
            return
        cp = audit.sign_checkpoint(self.state.audit_key, seq=seq, digest=digest,
                                   at=self.state.clock.now())
        audit.append_checkpoint_file(path, cp)
        self.last_seq, self.last_at = seq, time.monotonic()


async def _housekeeping_forever(state: AppState, checkpoints: _Checkpointer) -> None:
    while True:
        await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)
        try:
            await run_in_threadpool(state.live.refresh_and_audit, state.sessions,
                                    state.clock.now())
            await run_in_threadpool(checkpoints.write)
        except Exception:  # one failed pass must not stop the next ones
            log.exception("housekeeping pass failed")


async def _advance_forever(state: AppState, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(_advance_once, state)
        except Exception:  # one failed pass must not stop the next ones
            log.exception("rollout advancement pass failed")


async def _check_vendors_forever(state: AppState, vendors: vendor_watch.VendorAuthorities,
                                 interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(vendor_watch.check_once, state.sessions, vendors,
                                    state.clock.now())
        except Exception:  # one failed pass must not stop the next ones
            log.exception("vendor grant check failed")


def _advance_once(state: AppState) -> None:
    session = state.sessions()
    try:
        rollouts.advance(session, now=state.clock.now(),
                         deployment_timeout_s=state.settings.deployment_timeout_s)
    finally:
        session.close()
