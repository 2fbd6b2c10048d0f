"""The baseline for bench/scheduler.py: the same framework and server, an endpoint that does
nothing but return a few hundred bytes."""

from __future__ import annotations

from fastapi import FastAPI, Response

app = FastAPI()
_BODY = b"\xd2" + b"\x00" * 250


@app.get("/bare/{device_id}")
def bare(device_id: str) -> Response:
    return Response(_BODY, media_type="application/octet-stream")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
