"""A chunked request driven straight into an ASGI app, counting the body bytes it pulls (the
request-bounds tests of the scheduler and of the vendor services)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

CHUNK = 64 * 1024


def stream_request(app: Any, method: str, path: str, headers: Mapping[str, str],
                   total: int, chunk: bytes = b"[" * CHUNK) -> tuple[int, Any, int]:
    """Send a body of ``total`` bytes without a Content-Length (one ``chunk`` per ``receive``);
    returns the status, the answer (JSON when it is) and the body bytes the app pulled."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= total:
            return {"type": "http.disconnect"}
        piece = chunk[: total - pulled]
        pulled += len(piece)
        return {"type": "http.request", "body": piece, "more_body": pulled < total}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in {**headers, "transfer-encoding": "chunked"}.items()],
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body) if body.startswith(b"{") else body, pulled
