"""``create_app(settings)``: the scheduler's ASGI app. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.concurrency import run_in_threadpool

from suture import __version__
from suture.keys import KeyFileError, load_private_key
from suture.scheduler.api.bodylimit import BodyLimitMiddleware, body_limit
from suture.scheduler.api.deps import AppState
from suture.scheduler.api.error_body import error_body
from suture.scheduler.api.routes import (
    device,
    operator_audit,
    operator_devices,
    operator_releases,
    operator_rollouts,
)
from suture.scheduler.clock import Clock, SystemClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.errors import ConfigurationError, SchedulerError
from suture.scheduler.services import rollouts
from suture.scheduler.services.schedules import ScheduleContext

log = logging.getLogger("suture.scheduler")


def create_app(settings: Settings, *, clock: Clock | None = None,
               engine: Engine | None = None) -> FastAPI:
    """Build the app: engine, session factory, signing key, routes, error handlers."""
    try:
        key = load_private_key(settings.signing_key_path)
    except KeyFileError as exc:
        raise ConfigurationError(
            f"scheduler signing key: {exc} (run `suture scheduler init`)") from None
    state = AppState(
        settings=settings,
        sessions=make_session_factory(engine or make_engine(settings.database_url)),
        clock=clock or SystemClock(),
        schedule_ctx=ScheduleContext(
            key=key, public_url=settings.public_url, poll_interval_s=settings.poll_interval_s,
            poll_jitter_s=settings.poll_jitter_s, forced_window_s=settings.forced_window_s),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = None
        if settings.advance_interval_s > 0:
            task = asyncio.create_task(_advance_forever(state, settings.advance_interval_s))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="suture scheduler",
        version=__version__,
        description=(
            "The hospital's firmware-update scheduler. Device routes authenticate with the "
            "per-device HMAC scheme of docs/formats/device-api.md; operator routes with "
            "`Authorization: Bearer <operator token>`."
        ),
        lifespan=lifespan,
    )
    app.state.scheduler = state
    app.add_middleware(BodyLimitMiddleware, limit_for=lambda scope: body_limit(
        state.settings, scope["method"], scope["path"]))
    for module in (device, operator_devices, operator_releases, operator_rollouts,
                   operator_audit):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

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


async def _advance_forever(state: AppState, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(_advance_once, state)
        except Exception:  # one failed pass must not stop the next ones
            log.exception("rollout advancement pass failed")


def _advance_once(state: AppState) -> None:
    session = state.sessions()
    try:
        rollouts.advance(session, now=state.clock.now(),
                         deployment_timeout_s=state.settings.deployment_timeout_s)
    finally:
        session.close()
