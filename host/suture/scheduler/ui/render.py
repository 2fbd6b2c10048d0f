"""Templates (Jinja2, autoescaped) and the filters every page uses: times in the hospital's
zone with the zone named, states as words and symbols (never colour alone)."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

#: Each state: (symbol, kind). The kind selects a style; the symbol and the word carry the
#: meaning on their own (a screen reader reads the word, a colour-blind reader sees both).
STATE_STYLE: Final[dict[str, tuple[str, str]]] = {
    "succeeded": ("✔", "ok"), "confirmed": ("✔", "ok"), "completed": ("✔", "ok"),
    "approved": ("✔", "ok"), "idle": ("○", "neutral"), "pending": ("…", "neutral"),
    "awaiting_approval": ("◷", "wait"), "paused": ("‖", "wait"), "blocked": ("⊘", "wait"),
    "running": ("▶", "active"), "downloading": ("↓", "active"), "staged": ("▣", "active"),
    "installing": ("⚙", "active"), "trial": ("◐", "active"), "reverting": ("↺", "active"),
    "failed": ("✖", "bad"), "reverted": ("↺", "bad"), "aborted": ("■", "bad"),
    "cancelled": ("■", "neutral"), "recalled": ("✖", "bad"), "decommissioned": ("■", "neutral"),
}
CRITICALITY: Final[dict[int, str]] = {1: "low", 2: "medium", 3: "high", 4: "critical"}


@functools.cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("suture.scheduler.ui", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["state"] = state_badge
    env.filters["criticality"] = lambda n: f"{n} ({CRITICALITY.get(int(n), '?')})"
    env.filters["pretty_json"] = lambda v: json.dumps(v, indent=2, sort_keys=True)
    env.filters["short"] = lambda s, n=12: (s or "")[:n]
    env.filters["component_id"] = component_id
    return env


def component_id(elements: list[str]) -> str:
    """A SUIT component identifier (its elements in hex) as text: an element of printable
    ASCII as itself in quotes, any other in hex (``['app']``, ``['loader', h'00']``)."""
    parts = []
    for element in elements:
        try:
            raw = bytes.fromhex(element)
        except ValueError:
            raw = b""
        text = raw.decode("ascii") if raw.isascii() else ""
        parts.append(f"'{text}'" if raw and text.isprintable() else f"h'{element}'")
    return "[" + ", ".join(parts) + "]"


def state_badge(state: str | None) -> Markup:
    name = state or "unknown"
    symbol, kind = STATE_STYLE.get(name, ("•", "neutral"))
    return Markup('<span class="state state-{}"><span aria-hidden="true">{}</span> {}</span>'
                  ).format(kind, symbol, name.replace("_", " "))


class LocalTime:
    """Unix seconds as the hospital's local time, with the zone's abbreviation, inside a
    ``<time>`` element carrying the UTC instant."""

    def __init__(self, zone: str) -> None:
        self.zone_name = zone
        self.zone = ZoneInfo(zone)

    def __call__(self, ts: int | None, *, seconds: bool = False) -> Markup:
        if ts is None:
            return Markup('<span class="muted">never</span>')
        when = datetime.fromtimestamp(int(ts), UTC)
        local = when.astimezone(self.zone)
        fmt = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
        return Markup('<time datetime="{}">{}</time>').format(
            when.strftime("%Y-%m-%dT%H:%M:%SZ"), local.strftime(fmt))


def render(request: Request, template: str, status_code: int = 200, **context: Any
           ) -> HTMLResponse:
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code,
                        headers={"Cache-Control": "no-store",
                                 "Content-Security-Policy": CSP,
                                 "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "same-origin",
                                 "X-Frame-Options": "DENY"})


#: Scripts, styles and images from the scheduler only; no inline script; no framing.
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
              "base-uri 'none'; object-src 'none'")


def text_block(value: str) -> Markup:
    return Markup("<pre>{}</pre>").format(escape(value))
