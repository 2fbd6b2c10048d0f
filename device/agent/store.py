# The agent's persistent state, in the loader's versioned NVM store (schema 1 for every key):
#   agent.sched      highest schedule number accepted (decimal text); kept across a revert
#                    (NVM keep flag), so a revert does not reopen a replay window
#   agent.ctx        the update in flight: JSON {"r": rollout id, "rel": release id,
#                    "c": component, "v": version, "n": schedule number}
#   agent.js         the last state queued for a report: JSON [report state, version,
#                    journal seq]
#   agent.q.<n>      queued reports (JSON), sent in order and deleted once acknowledged
#   agent.suit       the SUIT processor's trace of the update in flight, for its SUIT report:
#                    JSON {"m": manifest digest (hex), "u": reference-uri or null,
#                    "r": [[section, offset, component, command, held], ...], "x": failed
#                    [section, offset, component, command] or null}
# Identity, written at provisioning (suture.devicectl.device_ops): id.device, id.credential,
# id.scheduler; the trust anchors (trust.scheduler, trust.vendor) are the loader's
# (api.trust_keys, docs/formats/trust-store.md).
import json

from loader import api
from micropython import const

from agent.errors import ConfigError

SCHEMA = const(1)
MAX_QUEUE = const(16)
_Q = b"agent.q."
SCHEDULE_KEY = "agent.sched"
UPDATE_KEY = "agent.ctx"
STATE_KEY = "agent.js"
SUIT_KEY = "agent.suit"


class Store:
    def __init__(self, nvm):
        self.nvm = nvm

    def _get(self, key):
        r = self.nvm.get(key)
        return None if r is None else r[1]

    def get_int(self, key, default):
        v = self._get(key)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            return default

    def put_int(self, key, value, keep=False):
        if self.get_int(key, None) != value:
            self.nvm.put(key, str(value).encode(), SCHEMA, keep)

    def get_json(self, key):
        v = self._get(key)
        if v is None:
            return None
        try:
            return json.loads(v)
        except ValueError:
            return None

    def put_json(self, key, obj):
        data = json.dumps(obj).encode()
        if self._get(key) != data:
            self.nvm.put(key, data, SCHEMA)

    def delete(self, key):
        if self._get(key) is not None:
            self.nvm.delete(key)

    # ---- identity ------------------------------------------------------------------------
    def identity(self):
        """(device_id, secret, scheduler_url, scheduler_keys); ConfigError when incomplete."""
        dev = self._get("id.device")
        secret = self._get("id.credential")
        url = self._get("id.scheduler")
        keys = api.trust_keys("scheduler")  # trust.scheduler, as the loader reads it
        if not dev or not secret or not url or not keys:
            raise ConfigError("device identity incomplete: provision id.device, id.credential, "
                              "id.scheduler and trust.scheduler")
        return dev.decode(), secret, url.decode(), keys

    # ---- report queue --------------------------------------------------------------------
    def queued(self):
        """[(n, key)] of queued reports, oldest first."""
        out = []
        for k in self.nvm.keys():
            if k.startswith(_Q):
                try:
                    out.append((int(k[len(_Q) :]), k))
                except ValueError:
                    pass
        out.sort()
        return out

    def enqueue(self, report):
        q = self.queued()
        while len(q) >= MAX_QUEUE:  # bounded: the oldest state report goes first
            self.nvm.delete(q[0][1])
            q = q[1:]
        n = q[-1][0] + 1 if q else 1
        self.nvm.put(_Q + str(n).encode(), json.dumps(report).encode(), SCHEMA)

    def peek(self, key):
        return self.get_json(key)

    def ack(self, key):
        self.nvm.delete(key)
