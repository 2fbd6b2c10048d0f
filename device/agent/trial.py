# The trial of a new release: after the reboot into it, the agent confirms it when the
# application's health hook and the agent's self-test (this boot reached the scheduler and
# verified a schedule) both pass; otherwise, or when the scheduler asks for a revert, it
# requests the revert and resets (the loader restores the backup at the next boot). A trial
# that cannot reach the scheduler for TRIAL_TIMEOUT_S is unhealthy.
from loader import api
from micropython import const

from agent import hooks
from agent import schedule as S
from agent.errors import UNHEALTHY
from agent.events import emit

TRIAL_TIMEOUT_S = const(600)  # a trial that cannot reach the scheduler this long reverts


def timed_out(agent):
    """A trial that has not reached the scheduler since the boot, for too long."""
    return (not agent.poller.reachable
            and agent.clock.mono() - agent.booted >= TRIAL_TIMEOUT_S)


def health(agent):
    """(healthy, why not): the agent's self-test, then the application's hook."""
    p = agent.poller
    if not p.reachable or p.schedule is None:
        return False, "agent self-test: scheduler not reached"
    return hooks.health(agent.app)


def settle(agent, s):
    """Confirm the trial, or request its revert and reset (the scheduler's revert action, or
    an unhealthy release)."""
    if s is not None and s.action == S.REVERT:
        healthy, why = False, "the scheduler asked for a revert"
    else:
        healthy, why = health(agent)
    r = api.current()
    if healthy:
        api.confirm()
        agent.reopen_store()  # the trial's NVM bank is now the confirmed one
        emit("confirmed", version=r.version)
        agent.reports.sync()
        agent.reports.flush()
        return
    emit("unhealthy", reason=why)
    agent.reports.error(r, UNHEALTHY, why, keep=False)
    if not r.flags & api.FLAG_REVERT_REQUESTED:
        api.request_revert()
    emit("reset", reason="revert")
    api.reset()
