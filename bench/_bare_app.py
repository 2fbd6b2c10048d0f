"""The baseline for bench/scheduler.py: the same framework, server and process settings (the
collector's, ``settle_heap``), an endpoint that does nothing but return a few hundred bytes."""

from __future__ import annotations

from fastapi import FastAPI, Response
from suture.scheduler.api.asgi import settle_heap

app = FastAPI()
_BODY = b"\xd2" + b"\x00" * 250


@app.get("/bare/{device_id}")
def bare(device_id: str) -> Response:
    return Response(_BODY, media_type="application/octet-stream")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


settle_heap()  # as the scheduler's serving process does once its app is made
