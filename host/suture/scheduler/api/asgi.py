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


#: Allocations of container objects between two collections of the youngest generation, in
#: the serving process (Python's default: 700). A request makes a few hundred such objects,
#: nearly all freed by reference counting when it ends, so the default ran a collection every
#: request or two, and an older generation's every few dozen requests; at this threshold a
#: young collection runs every few dozen requests and holds at most this many objects (a few
#: megabytes) before it does. The older generations keep their defaults (10, 10).
YOUNG_GENERATION_THRESHOLD = 20_000


def settle_heap() -> None:
    """What the serving process built to start (modules, the app, its tables and caches: over a
    hundred thousand objects, all alive until it exits) moved out of the cycle collector's way
    (``gc.freeze``): a full collection then walks only what requests made since, and its pause,
    which every request in flight waits out, stays short. Then the collector runs less often
    (``YOUNG_GENERATION_THRESHOLD``): polls and reports spent a fifth of their time in it
    (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
