"""The JSON shape of every refusal the scheduler's API answers (one published schema)."""

from __future__ import annotations


def error_body(code: str, message: str, status: int) -> dict[str, object]:
    """``{"error": code, "message": text, "detail": ...}``; for 422 ``detail`` has FastAPI's
    validation-error shape, so every 422 the API returns matches one published schema."""
    if status == 422:
        return {"error": code, "message": message,
                "detail": [{"loc": ["body"], "msg": message, "type": code}]}
    return {"error": code, "message": message, "detail": message}
