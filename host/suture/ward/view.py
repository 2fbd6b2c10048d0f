"""The ward's live view and summary (rich)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from suture.ward.run import WardResult, WardSnapshot

_STATE_STYLE = {
    "confirmed": "green", "trial": "cyan", "installing": "magenta", "staged": "blue",
    "downloading": "yellow", "failed": "red", "reverted": "red", "crashed": "bold red",
    "idle": "white", "provisioned": "dim",
}


def render(snap: WardSnapshot, target: int = 2) -> RenderableType:
    """One frame: the rollout's waves, then one row per device."""
    head = Text()
    head.append(f"{snap.phase}", style="bold")
    if snap.rollout_state:
        head.append(f"  rollout {snap.rollout_state}", style="bold cyan")
        head.append(f"  wave {snap.current_wave + 1}/{snap.wave_count}")
        if snap.wave_sizes:
            head.append(f"  (sizes {' / '.join(str(s) for s in snap.wave_sizes)})")
    head.append(f"  {snap.elapsed_s:5.1f} s")
    if snap.rollout_reason:
        head.append(f"\n{snap.rollout_reason}", style="italic")
    if snap.ui:
        head.append(f"\n{snap.ui}", style="green")
    if snap.proxy is not None:
        p = snap.proxy
        head.append(f"\nnetwork faults: {p.dropped} dropped, {p.slowed} slowed "
                    f"of {p.connections} connections", style="yellow")
    table = Table(expand=True, box=None, pad_edge=False)
    for col, kw in (("device", {}), ("wave", {"justify": "right"}), ("entry", {}),
                    ("state", {}), ("app", {"justify": "right"}), ("download", {"ratio": 1}),
                    ("events", {"ratio": 2})):
        table.add_column(col, **kw)
    for view in snap.devices:
        wave, entry = snap.entries.get(view.device_id, (None, ""))
        done, size = view.progress
        bar: RenderableType = ProgressBar(total=max(size, 1), completed=done, width=20) \
            if size else Text("")
        notes = []
        if view.busy:
            notes.append("in clinical use")
        if view.power_cuts:
            notes.append(f"{view.power_cuts} power cut(s)")
        if view.errors:
            notes.append(view.errors[-1])
        elif view.last_event:
            notes.append(view.last_event)
        table.add_row(
            view.device_id, "" if wave is None else str(wave + 1), entry,
            Text(view.state, style=_STATE_STYLE.get(view.state, "")),
            Text(f"#{view.version}", style="green" if view.version == target else ""),
            bar, Text("; ".join(notes), overflow="ellipsis", no_wrap=True))
    return Panel(Group(head, table), title="suture ward simulator", border_style="cyan")


def summary(result: WardResult) -> RenderableType:
    """The final table: outcome per device, versions from the flash images and as reported."""
    data: dict[str, Any] = result.to_json()
    # No vertical rules: the nine columns fit an 80-column terminal (and a log) untruncated.
    table = Table(title=f"ward: rollout {data['rollout_state']} in {data['duration_s']} s "
                        f"(#{data['base_version']} -> #{data['target_version']})",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("device", "wave", "outcome", "flash", "reported", "journal", "resets",
                "cuts", "bricked"):
        table.add_column(col, no_wrap=True)
    for d in data["per_device"]:
        ok = d["flash_version"] == d["reported_version"]
        table.add_row(
            d["id"], "" if d["wave"] is None else str(d["wave"] + 1),
            Text(d["outcome"], style="green" if d["outcome"] == "updated" else "yellow"),
            f"#{d['flash_version']}",
            Text(f"#{d['reported_version']}", style="" if ok else "bold red"),
            str(d["journal_state"]), str(d["resets"]), str(d["power_cuts"]),
            Text("BRICKED", style="bold red") if d["bricked"] else Text("no", style="green"))
    totals = Text(
        f"{data['devices']} devices: {data['updated']} updated, {data['reverted']} reverted, "
        f"{data['failed']} failed, {data['not_updated']} not updated, "
        f"{data['bricked']} bricked. {data['rollout_reason']}")
    return Group(table, totals)
