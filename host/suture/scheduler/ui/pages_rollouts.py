"""Rollouts: the list, the form with its plan previewed before saving, the live view with
start, pause, resume and abort (each confirmed), and the approvals: an approver approves or
denies with a reason, confirmed first."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from suture.scheduler.errors import InvalidInputError, NotFoundError, SchedulerError
from suture.scheduler.models import Rollout
from suture.scheduler.policies import approval
from suture.scheduler.schemas import MAX_REASON
from suture.scheduler.services import releases, rollouts
from suture.scheduler.ui import error_explain, plan_preview, readmodel, rollout_form
from suture.scheduler.ui.context import CheckedForm, Ui, UiContext
from suture.scheduler.ui.mount import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)

#: Each operator action: the API operation it mirrors, what the confirmation says.
ACTIONS: Final = {
    "start": ("POST", "/api/v1/rollouts/{rollout_id}/start",
              "Devices of the first wave start to download and install in their windows."),
    "pause": ("POST", "/api/v1/rollouts/{rollout_id}/pause",
              "No device starts a new step; devices already installing finish it."),
    "resume": ("POST", "/api/v1/rollouts/{rollout_id}/resume",
               "The approvals are counted again; the waves go on."),
    "abort": ("POST", "/api/v1/rollouts/{rollout_id}/abort",
              "The rollout stops for good; devices drop what they staged. With revert, "
              "devices in trial go back (refused if any device confirmed the release)."),
}

#: An approver's decisions: the API operation each mirrors, what the confirmation says.
DECISIONS: Final = {
    "approve": ("POST", "/api/v1/rollouts/{rollout_id}/approve",
                "Your approval counts for the rollout as it is now; a change of its targets "
                "or policy resets it."),
    "deny": ("POST", "/api/v1/rollouts/{rollout_id}/deny",
             "The rollout is neither approved further nor started until it is changed "
             "(which clears the denial) or aborted."),
}


@router.get("/rollouts")
def rollout_list(ui: Ui) -> HTMLResponse:
    ui.require("GET", "/api/v1/rollouts")
    with ui.session() as session:
        rows = rollouts.list_rollouts(session)
    return ui.page("rollouts.html", rollouts=list(reversed(rows)))


def _form_page(ui: UiContext, form: dict[str, str], *, error: str = "",
               status_code: int = 200) -> HTMLResponse:
    with ui.session() as session:
        choices = [r for r in releases.list_releases(session) if not r.recalled]
        groups = sorted({g for d in readmodel.fleet(session, "").devices for g in d.groups})
    return ui.page("rollout_new.html", form=form, releases=choices, groups=groups, error=error,
                   status_code=status_code)


@router.get("/rollouts/new")
def rollout_new(ui: Ui, release: int | None = None) -> HTMLResponse:
    ui.require("POST", "/api/v1/rollouts")
    form = {"waves": "25%, 100%", "order": "oldest-first", "success_threshold": "0.9",
            "error_threshold": "0.2", "error_min_sample": "5", "on_error": "pause",
            "window_tz": ui.state.settings.time_zone, "window_duration_min": "60",
            "release_id": str(release or "")}
    return _form_page(ui, form)


@router.post("/rollouts/preview")
def rollout_preview(ui: Ui, form: CheckedForm) -> HTMLResponse:
    """The plan the form would make, with the button that makes it."""
    ui.require("POST", "/api/v1/rollouts")
    try:
        spec = rollout_form.to_spec(form, ui.state.settings.time_zone)
        plan = plan_preview.preview(ui.state.sessions, spec=spec, actor=ui.principal,
                                    now=ui.now)
    except SchedulerError as exc:
        return _form_page(ui, rollout_form.carried(form), error=str(exc),
                          status_code=exc.status_code)
    return ui.page("rollout_preview.html", spec=spec, plan=plan,
                   carried=rollout_form.carried(form),
                   two_person=plan.status.rollout.required_approvals >= 2,
                   two_person_criticality=approval.TWO_PERSON_CRITICALITY)


@router.post("/rollouts")
def rollout_create(ui: Ui, form: CheckedForm) -> Response:
    ui.require("POST", "/api/v1/rollouts")
    try:
        spec = rollout_form.to_spec(form, ui.state.settings.time_zone)
        with ui.session() as session:
            rollout = rollouts.create_rollout(session, spec=spec, actor=ui.principal, now=ui.now)
    except InvalidInputError as exc:
        return _form_page(ui, rollout_form.carried(form), error=str(exc),
                          status_code=exc.status_code)
    return RedirectResponse(f"/rollouts/{rollout.id}", status_code=303)


def _live_context(ui: UiContext, session: Session, rollout_id: int) -> dict[str, Any]:
    status = rollouts.rollout_status(session, rollout_id=rollout_id)
    entries = readmodel.rollout_entries(session, rollout_id)
    with session.begin():
        row = session.get(Rollout, rollout_id)
        if row is None:
            raise NotFoundError(f"no rollout {rollout_id}")
        tally, max_crit = rollouts.tally_approvals(session, row)
    labels = readmodel.release_paths(
        session, sorted({status.rollout.release_id,
                         *(e.step_release_id for e in entries if e.step_release_id)}))
    windows = readmodel.next_windows(status.rollout.window_cron, status.rollout.window_duration_s,
                                     status.rollout.window_tz, ui.now)
    errors = [(e, error_explain.in_text(e.detail)) for e in entries
              if e.state in ("failed", "reverted") and e.detail]
    return {"status": status, "r": status.rollout, "entries": entries, "tally": tally,
            "max_crit": max_crit, "labels": labels, "windows": windows, "errors": errors,
            "reasons": {a.operator: a.reason for a in status.rollout.approval_reasons},
            "finished": status.rollout.state in ("completed", "aborted")}


def _may_decide(ui: UiContext, r: Any, counted: list[str]) -> bool:
    """Whether the page offers this operator the approve/deny form for rollout ``r``."""
    return (r.state in ("awaiting_approval", "approved", "paused") and not r.denied
            and ui.may(*DECISIONS["approve"][:2]) and ui.principal.name not in counted
            and ui.principal.name not in set(r.authors or ()) | {r.created_by})


@router.get("/rollouts/{rollout_id}")
def rollout_page(rollout_id: int, ui: Ui) -> HTMLResponse:
    ui.require("GET", "/api/v1/rollouts/{rollout_id}")
    with ui.session() as session:
        context = _live_context(ui, session, rollout_id)
    return ui.page("rollout.html", decide=_may_decide(ui, context["r"], context["tally"].counted),
                   max_reason=MAX_REASON, **context)


@router.get("/rollouts/{rollout_id}/live")
def rollout_live(rollout_id: int, ui: Ui) -> HTMLResponse:
    """The live part of the rollout's page, which the page fetches every few seconds."""
    ui.require("GET", "/api/v1/rollouts/{rollout_id}")
    with ui.session() as session:
        context = _live_context(ui, session, rollout_id)
    return ui.page("rollout_live.html", **context)


@router.get("/rollouts/{rollout_id}/confirm/{action}")
def rollout_confirm(rollout_id: int, action: str, ui: Ui, revert: bool = False
                    ) -> HTMLResponse:
    if action not in ACTIONS:
        raise NotFoundError(f"no action {action!r} (actions: {', '.join(ACTIONS)})")
    method, path, effect = ACTIONS[action]
    ui.require(method, path)
    with ui.session() as session:
        status = rollouts.rollout_status(session, rollout_id=rollout_id)
    lines = [f"rollout {rollout_id} ({status.rollout.name}) is "
             f"{status.rollout.state.replace('_', ' ')}", effect]
    if action == "abort":
        lines.append("devices now: " + ", ".join(
            f"{n} {s}" for s, n in sorted(status.totals.items())))
    return ui.page("confirm.html", title=f"{action.capitalize()} rollout {rollout_id}?",
                   lines=lines, action=f"/rollouts/{rollout_id}/{action}",
                   fields={}, revert_choice=action == "abort", revert=revert,
                   button=f"{action.capitalize()} the rollout", back=f"/rollouts/{rollout_id}")


def _back(form: dict[str, str], rollout_id: int) -> str:
    return "/approvals" if form.get("back") == "/approvals" else f"/rollouts/{rollout_id}"


@router.post("/rollouts/{rollout_id}/decide")
def rollout_decide(rollout_id: int, ui: Ui, form: CheckedForm) -> HTMLResponse:
    """The confirmation of an approval or a denial, with its reason: nothing changes yet. A
    denial without a reason, or a reason too long, is refused here already."""
    decision = form.get("decision", "")
    if decision not in DECISIONS:
        raise InvalidInputError(f"no decision {decision!r} (decisions: {', '.join(DECISIONS)})")
    method, path, effect = DECISIONS[decision]
    ui.require(method, path)
    reason = rollouts.check_reason(form.get("reason", ""), required=decision == "deny")
    with ui.session() as session:
        status = rollouts.rollout_status(session, rollout_id=rollout_id)
    r = status.rollout
    lines = [f"rollout {rollout_id} ({r.name}) is {r.state.replace('_', ' ')}: "
             f"{r.target_count} device(s) in {r.wave_count} wave(s), release {r.release_id}",
             f"approvals so far: {', '.join(r.approvals) or 'none'} "
             f"({r.required_approvals} needed)",
             f"your reason: {reason}" if reason else "no reason given", effect]
    verb = decision.capitalize()
    return ui.page("confirm.html", title=f"{verb} rollout {rollout_id}?", lines=lines,
                   action=f"/rollouts/{rollout_id}/{decision}",
                   fields={"reason": reason, "back": _back(form, rollout_id)},
                   button=f"{verb} rollout {rollout_id}", back=_back(form, rollout_id),
                   danger=decision == "deny")


@router.post("/rollouts/{rollout_id}/approve")
def rollout_approve(rollout_id: int, ui: Ui, form: CheckedForm) -> Response:
    ui.require(*DECISIONS["approve"][:2])
    with ui.session() as session:
        rollouts.approve_rollout(session, rollout_id=rollout_id, actor=ui.principal, now=ui.now,
                                 reason=form.get("reason", ""))
    return RedirectResponse(_back(form, rollout_id), status_code=303)


@router.post("/rollouts/{rollout_id}/deny")
def rollout_deny(rollout_id: int, ui: Ui, form: CheckedForm) -> Response:
    ui.require(*DECISIONS["deny"][:2])
    with ui.session() as session:
        rollouts.deny_rollout(session, rollout_id=rollout_id, actor=ui.principal, now=ui.now,
                              reason=form.get("reason", ""))
    return RedirectResponse(_back(form, rollout_id), status_code=303)


@router.post("/rollouts/{rollout_id}/{action}")
def rollout_act(rollout_id: int, action: str, ui: Ui, form: CheckedForm) -> Response:
    if action not in ACTIONS:
        raise NotFoundError(f"no action {action!r} (actions: {', '.join(ACTIONS)})")
    method, path, _ = ACTIONS[action]
    ui.require(method, path)
    with ui.session() as session:
        if action == "abort":
            rollouts.abort_rollout(session, rollout_id=rollout_id,
                                   revert=form.get("revert") == "true", actor=ui.principal,
                                   now=ui.now)
        else:
            act = {"start": rollouts.start_rollout, "pause": rollouts.pause_rollout,
                   "resume": rollouts.resume_rollout}[action]
            act(session, rollout_id=rollout_id, actor=ui.principal, now=ui.now)
    return RedirectResponse(f"/rollouts/{rollout_id}", status_code=303)


@router.get("/approvals")
def approvals(ui: Ui) -> HTMLResponse:
    """The rollouts that wait for an approval: what each needs, who counts, who does not and
    why, and whether this operator may approve it."""
    ui.require("GET", "/api/v1/rollouts")
    waiting = []
    with ui.session() as session:
        for row in readmodel.rollouts_waiting(session):
            with session.begin():
                tally, max_crit = rollouts.tally_approvals(session, row)
            release = releases.get_release(session, release_id=row.release_id)
            public = rollouts.rollout_status(session, rollout_id=row.id).rollout
            mine = ui.principal.name in set(row.authors or ()) | {row.created_by}
            windows = readmodel.next_windows(public.window_cron, public.window_duration_s,
                                             public.window_tz, ui.now)
            waiting.append({"r": row, "tally": tally, "max_crit": max_crit,
                            "release": release, "author": mine, "public": public,
                            "windows": windows,
                            "reasons": {a.operator: a.reason for a in public.approval_reasons}})
    return ui.page("approvals.html", waiting=waiting,
                   can_approve=ui.may(*DECISIONS["approve"][:2]), max_reason=MAX_REASON,
                   two_person_criticality=approval.TWO_PERSON_CRITICALITY)
