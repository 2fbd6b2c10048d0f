# The application's two hooks (docs/architecture.md, "The update agent"): busy() -> True while
# the device is in clinical use (no install then), health() -> True when the new release
# works. They are code the agent did not write: whatever they raise is an answer too (busy, and
# unhealthy), never a failed cycle.
from agent.events import emit


def busy(app):
    """The application's answer; one that raises counts as busy: nothing is installed on an
    application that cannot answer."""
    if app is None or not hasattr(app, "busy"):
        return False
    try:
        return bool(app.busy())
    except Exception as e:
        emit("error", where="busy", message="application busy hook raised %r" % e)
        return True


def health(app):
    """(healthy, why not): the application's own check (absent: healthy)."""
    if app is None or not hasattr(app, "health"):
        return True, ""
    try:
        ok = app.health()
    except Exception as e:  # the application's own failure is a failed health check
        return False, "application health hook raised %r" % e
    if not ok:
        return False, "application health check failed"
    return True, ""
