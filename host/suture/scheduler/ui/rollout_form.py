"""The rollout form's fields to a ``RolloutCreate`` and back (the preview page carries the
fields on to the create button)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from suture.scheduler.errors import InvalidInputError
from suture.scheduler.schemas import RolloutCreate, WindowSpec

FIELDS: Final = ("name", "release_id", "target_groups", "target_filter", "waves", "order",
                 "success_threshold", "error_threshold", "error_min_sample", "on_error",
                 "window_cron", "window_duration_min", "window_tz", "deadline", "download_only")


def _list(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def _number(form: dict[str, str], name: str, kind: type, default: Any) -> Any:
    raw = form.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise InvalidInputError(f"{name.replace('_', ' ')}: {raw!r} is not a number") from None


def _deadline(raw: str, zone: str) -> int | None:
    if not raw.strip():
        return None
    try:
        local = datetime.strptime(raw.strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise InvalidInputError(f"deadline: {raw!r} is not a date and time "
                                "(YYYY-MM-DDTHH:MM)") from None
    return int(local.replace(tzinfo=ZoneInfo(zone)).timestamp())


def to_spec(form: dict[str, str], hospital_zone: str) -> RolloutCreate:
    """The form as the API's rollout; a field the API would refuse is refused here, named."""
    window = None
    if form.get("window_cron", "").strip():
        window = {"cron": form["window_cron"].strip(),
                  "duration_s": 60 * _number(form, "window_duration_min", int, 60),
                  "tz": form.get("window_tz", "").strip() or hospital_zone}
    try:
        return RolloutCreate(
            name=form.get("name", "").strip(),
            release_id=_number(form, "release_id", int, 0),
            target_groups=_list(form.get("target_groups", "")),
            target_filter=form.get("target_filter", "").strip(),
            waves=_list(form.get("waves", "")) or ["100%"],
            order=form.get("order", "oldest-first"),  # type: ignore[arg-type]
            success_threshold=_number(form, "success_threshold", float, 0.9),
            error_threshold=_number(form, "error_threshold", float, 0.2),
            error_min_sample=_number(form, "error_min_sample", int, 5),
            on_error=form.get("on_error", "pause"),  # type: ignore[arg-type]
            window=WindowSpec(**window) if window else None,
            deadline=_deadline(form.get("deadline", ""), hospital_zone),
            download_only=form.get("download_only") == "true",
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors())
        raise InvalidInputError(problems) from None


def carried(form: dict[str, str]) -> dict[str, str]:
    """The fields the preview hands on to the create button, as typed."""
    return {name: form.get(name, "") for name in FIELDS}
