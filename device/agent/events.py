# The agent's console events: one line each, `SUTURE-AGENT {json}`, for people watching the
# console and for the simulator's live view (suture.ward.fleet reads them).
import json


def emit(kind, **fields):
    """Print one event line: {"ev": kind, ...fields}."""
    fields["ev"] = kind
    print("SUTURE-AGENT " + json.dumps(fields))
