"""`suture vendor policy` and `suture vendor recall`: what the vendor grants each hospital's
rollouts of a release, and the withdrawal of a release."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suture.cli.errors import CliError, SutureTyper
from suture.cli.options import DryRunOpt, JsonOpt, YesOpt, confirm, emit_json
from suture.cli.vendor_cmd import DEFAULT_DATA, DataOption, _duration
from suture.errors import EXIT_USAGE

_out = Console(soft_wrap=True)

policy_app = SutureTyper(
    help="The vendor's rollout policy per hospital and release (checked on every grant).",
    no_args_is_help=True,
)


def read_metadata(path: Path) -> dict[str, Any]:
    """The release metadata file of `suture vendor publish --metadata`, validated."""
    from suture.vendor_services.repository.release_meta import validate_metadata

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CliError(f"{path}: not a JSON file: {e}", EXIT_USAGE) from None
    return validate_metadata(data)


def _when(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r}: use an ISO 8601 time, e.g. 2026-12-01T22:00:00+00:00",
                       EXIT_USAGE) from None
    if moment.tzinfo is None:
        raise CliError(f"{text!r}: give a timezone (e.g. +00:00)", EXIT_USAGE)
    return int(moment.timestamp())


def _policy_json(policy: Any) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(policy)


@policy_app.command("set")
def policy_set(
    client: Annotated[str, typer.Argument(help="The hospital's instance id, or * for all.")],
    release: Annotated[str, typer.Argument(help="Release id or shell pattern, e.g. 'pump-*'.")],
    max_devices: Annotated[int | None, typer.Option(help="Most devices in one rollout.")] = None,
    max_first_wave: Annotated[
        int | None, typer.Option(help="Most devices in the rollout's first wave.")] = None,
    device_classes: Annotated[
        list[str] | None,
        typer.Option("--class", help="A device class (board) it may target (repeat)."),
    ] = None,
    not_before: Annotated[
        str | None, typer.Option(help="No installation before (ISO 8601).")] = None,
    not_after: Annotated[
        str | None, typer.Option(help="No installation after (ISO 8601).")] = None,
    max_window: Annotated[
        str | None, typer.Option(help="Longest rollout window, e.g. 7d.")] = None,
    refuse: Annotated[
        str, typer.Option(help="Refuse every rollout, with this reason for the hospital.")
    ] = "",
    data: DataOption = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Set the policy for CLIENT's rollouts of RELEASE (replaces the same pair's).

    The authorization server judges every grant request, change and poll
    against it: a rollout beyond it is refused (request_denied) with the
    reason, which the hospital's operators see in their plan.
    """
    from suture.vendor_services.gnap.policies import PolicyStore, RolloutPolicy
    from suture.vendor_services.settings import VendorSettings

    store = PolicyStore.load(VendorSettings(data_dir=data).policies_path)
    policy = RolloutPolicy(
        client=client, release=release, max_devices=max_devices,
        max_first_wave=max_first_wave, classes=list(device_classes or ()),
        not_before=_when(not_before), not_after=_when(not_after),
        max_window_seconds=int(_duration(max_window).total_seconds()) if max_window else None,
        refuse=refuse,
    )
    store.put(policy)
    if as_json:
        emit_json(_policy_json(policy))
        return
    _out.print(f"policy for {client} / {release} set", highlight=False)


@policy_app.command("list")
def policy_list(data: DataOption = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """List the rollout policies."""
    from suture.vendor_services.gnap.policies import PolicyStore
    from suture.vendor_services.settings import VendorSettings

    store = PolicyStore.load(VendorSettings(data_dir=data).policies_path)
    if as_json:
        emit_json([_policy_json(p) for p in store.policies])
        return
    table = Table("client", "release", "max devices", "first wave", "classes", "window",
                  "refuse")
    for p in store.policies:
        window = f"{p.not_before or '-'}..{p.not_after or '-'}"
        table.add_row(p.client, p.release, str(p.max_devices or "-"),
                      str(p.max_first_wave or "-"), " ".join(p.classes) or "any", window,
                      p.refuse or "")
    _out.print(table)


@policy_app.command("remove")
def policy_remove(
    client: Annotated[str, typer.Argument(help="The policy's client (or *).")],
    release: Annotated[str, typer.Argument(help="The policy's release pattern.")],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Remove one policy (the client's registered bounds still apply)."""
    from suture.vendor_services.gnap.policies import PolicyStore
    from suture.vendor_services.settings import VendorSettings

    PolicyStore.load(VendorSettings(data_dir=data).policies_path).remove(client, release)
    _out.print(f"policy for {client} / {release} removed", highlight=False)


def recall(
    release: Annotated[str, typer.Argument(help="The published release to withdraw.")],
    reason: Annotated[str, typer.Option(help="Why, for the hospitals' operators.")],
    data: DataOption = DEFAULT_DATA,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Recall a release: no grant is given for it from now on.

    Its listing carries the recall; a hospital scheduler that checks its
    grants (`suture scheduler vendor check`) pauses its rollouts of the
    release, and records why in its audit log. A recall is final.
    """
    from suture.vendor_services.repository.store import ReleaseError, ReleaseStore
    from suture.vendor_services.settings import VendorSettings

    store = ReleaseStore(VendorSettings(data_dir=data).releases_dir)
    if not store.exists(release):
        raise ReleaseError(f"no release {release!r}")
    if dry_run:
        _out.print(f"would recall {release}: {reason}", highlight=False)
        return
    confirm(f"Recall {release} for every hospital?", yes=yes)
    done = store.recall(release, reason=reason, at=int(time.time()))
    if as_json:
        emit_json({"release": release, **done})
        return
    _out.print(f"recalled {release}: {reason}", highlight=False)


def register_into(vendor_app: typer.Typer) -> None:
    """Attach `policy` and `recall` under `suture vendor`."""
    vendor_app.add_typer(policy_app, name="policy")
    vendor_app.command("recall")(recall)
