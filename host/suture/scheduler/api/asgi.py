"""An app factory for ``uvicorn --factory`` (several workers, or several nodes):

    SUTURE_SCHEDULER_CONFIG=scheduler.env uvicorn --factory suture.scheduler.api.asgi:from_env
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

from fastapi import FastAPI

from suture.scheduler.api.app import create_app
from suture.scheduler.config import load_settings


def from_env() -> FastAPI:
    """``create_app`` with the settings file named by ``SUTURE_SCHEDULER_CONFIG`` (if any) and
    the ``SUTURE_SCHEDULER_*`` environment variables."""
    config = os.environ.get("SUTURE_SCHEDULER_CONFIG")
    path = Path(config) if config else None
    app = create_app(load_settings(path), config_path=path)
    settle_heap()
    return app


def settle_heap() -> None:
    """What the serving process built to start (modules, the app, its tables and caches: over a
    hundred thousand objects, all alive until it exits) moved out of the cycle collector's way
    (``gc.freeze``): a full collection then walks only what requests made since, and its pause,
    which every request in flight waits out, stays short (docs/performance.md)."""
    gc.collect()
    gc.freeze()
