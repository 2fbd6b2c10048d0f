"""The agent after a 503 from the scheduler (too many devices polling at once): it polls again
after the answer's Retry-After plus up to as many seconds again at random, so that a fleet
refused together comes back spread out; without Retry-After, in its usual retry time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NOW = 1_000_000

RETRIES = """
import json
from agent.errors import HttpError, TransportError
from agent.poller import Poller, RETRY_S

class Store:
    def get_int(self, key, default):
        return default

class Agent:
    store = Store()

p = Poller(Agent())
out = {"retry_s": RETRY_S}
for name, err in (("busy", HttpError(503, "on the schedule", "30")),
                  ("spaced", HttpError(503, "on the schedule", " 7 ")),
                  ("huge", HttpError(503, "on the schedule", "99999999")),
                  ("date", HttpError(503, "on the schedule", "Wed, 21 Oct 2015 07:28:00 GMT")),
                  ("absent", HttpError(503, "on the schedule")),
                  ("negative", HttpError(503, "on the schedule", "-5")),
                  ("other", TransportError("reset"))):
    waits = []
    for _ in range(300):
        p.retry(NOW, err)
        waits.append(p.next_poll - NOW)
    out[name] = waits
print("RESULT " + json.dumps(out))
""".replace("NOW", str(NOW))


def test_retry_after_is_honoured_with_jitter(run_mpy: Callable[..., Any]) -> None:
    out = run_mpy(RETRIES)
    busy = out["busy"]
    assert all(30 <= wait <= 60 for wait in busy)
    assert len(set(busy)) > 10  # spread, not one instant for the whole fleet
    assert min(busy) < 36
    assert max(busy) > 54  # over the whole span
    assert all(7 <= wait <= 14 for wait in out["spaced"])
    assert all(3600 <= wait <= 7200 for wait in out["huge"])  # bounded
    for name in ("date", "absent", "negative", "other"):  # not a delay in seconds: usual retry
        assert set(out[name]) == {out["retry_s"]}, name
