# A signed update given over the REPL, and the trial's outcome: the same loader API as the
# network path, so the envelope is verified before anything is written.
import micropython

from loader import api


def stage(envelope_stream, payload_stream, install):
    """Verify the envelope and stage the payload; with `install` the next boot installs it."""
    micropython.kbd_intr(-1)
    try:
        plan = api.stage(envelope_stream.read_all(), payload_stream, install)
    finally:
        micropython.kbd_intr(3)
    return {"staged_version": plan.seq}


def confirm():
    api.confirm()
    return {"state": api.status().name()}


def request_revert():
    api.request_revert()
    return {"state": api.status().name()}
