# Reports to the scheduler (docs/formats/device-api.md). Every state change is the loader's
# journal record; a report is derived from it and queued in NVM once per state (sync), whatever
# resets happen in between, then sent in order (flush). Progress and busy reports are sent at
# once and not kept (live). A report that ends an update (failed, confirmed, reverted) is
# preceded by its SUIT report (docs/formats/suit-report.md), built from the SUIT processor's
# trace of the update's manifest (kept in NVM: agent.suit) and signed with the device key.
from binascii import hexlify, unhexlify

from loader import api
from micropython import const

from agent.errors import HttpError, TransportError
from agent.events import emit
from agent.store import STATE_KEY, SUIT_KEY, UPDATE_KEY

# journal state -> report state
_REPORT_STATE = {
    api.IDLE: "idle", api.DOWNLOADING: "downloading", api.STAGED: "staged",
    api.BACKUP: "installing", api.INSTALLING: "installing", api.TRIAL: "trial",
    api.CONFIRMED: "confirmed", api.REVERTING: "installing", api.REVERTED: "reverted",
    api.FAILED: "failed",
}
_EVENTS = (api.REVERTED, api.FAILED, api.CONFIRMED)  # each record is an event of its own
_ENDED = (api.REVERTED, api.FAILED)
_MESSAGE = const(200)  # characters of a message kept in a report
_SUIT_STATES = ("failed", "confirmed", "reverted")  # the reports that carry a SUIT report
_DIGEST_MISMATCH = const(31)  # the loader's DigestError (error-codes.md): image-match failed
_MAX_URI = const(160)


def installed():
    """What this device runs, per SUIT component: the application, and the loader once a
    loader release was confirmed (absent: the factory loader, version 0)."""
    out = {"app": api.installed().version}
    seq = api.loader_seq()
    if seq:
        out["loader"] = seq
    return out


def trust():
    """The trust-store version the device holds per role (docs/formats/trust-store.md), so the
    scheduler knows which anchors it has and which rotation it still needs."""
    return {"vendor": api.trust_version("vendor"), "scheduler": api.trust_version("scheduler")}


def state_of(r):
    """The report state of journal record r."""
    if r.state == api.STAGED and r.flags & api.FLAG_INSTALL_REQUESTED:
        return "installing"
    return _REPORT_STATE.get(r.state, "idle")


class Reports:
    def __init__(self, agent):
        self.agent = agent

    def update(self):
        """The update in flight, as remembered when it was scheduled (store.UPDATE_KEY)."""
        return self.agent.store.get_json(UPDATE_KEY) or {}

    def _tag(self, rep, c=None):
        """Name the rollout and release the report is about."""
        c = self.update() if c is None else c
        if c.get("r"):
            rep["rollout_id"] = c["r"]
        if c.get("rel"):
            rep["release_id"] = c["rel"]
        return rep

    def for_record(self, r):
        """The report of journal record r: its state, what is installed, and the error code
        of a failure or a revert caused by an error (the code's table says which layer wrote
        it: docs/formats/error-codes.md)."""
        rep = {"state": state_of(r), "installed": installed(), "trust": trust()}
        if r.state == api.FAILED and r.progress == api.ABORTED:
            rep["state"] = "idle"
        elif r.state == api.FAILED:
            rep["error"] = {"code": r.progress, "message": "update failed (error %d)"
                            % r.progress}
        elif r.state == api.REVERTED and r.progress:
            rep["error"] = {"code": r.progress, "message": "reverted after error %d"
                            % r.progress}
        c = self.update()
        if r.state != api.IDLE and (c.get("v") == r.version or r.state in _ENDED):
            self._tag(rep, c)
        n = self.agent.poller.last_number
        if n >= 0:
            rep["schedule_number"] = n
        return rep

    def capture(self):
        """Keep the SUIT processor's trace of the envelope it last processed (agent.suit), for
        the SUIT report that ends this update. True when there was one."""
        t = api.suit_trace()
        if t is None:
            return False
        if t.digest is None:  # refused before the manifest was read: nothing to refer to
            self.agent.store.delete(SUIT_KEY)
            return False
        uri = t.uri if t.uri is not None and len(t.uri) <= _MAX_URI else None
        self.agent.store.put_json(SUIT_KEY, {"m": hexlify(t.digest).decode(), "u": uri,
                                             "r": t.records, "x": t.failed})
        return True

    def suit(self, rep):
        """The SUIT report of the report rep (a state that ends an update), from the trace
        kept: sent before rep itself. False when it could not be delivered now (rep waits)."""
        ctx = self.agent.store.get_json(SUIT_KEY)
        if not ctx:
            return True
        err = rep.get("error")
        failed_at = ctx.get("x")
        records = []
        for r in ctx.get("r") or ():
            if r[4] is None and err:  # image-match left to the digest check, which failed
                if failed_at is None and err.get("code") == _DIGEST_MISMATCH:
                    failed_at = r[:4]
                continue
            records.append(r[:4])
        n = rep.get("schedule_number")
        nonce = n.to_bytes(8, "big") if isinstance(n, int) and n >= 0 else None
        client = self.agent.client
        try:
            key = client.device_key()
            data = api.suit_report(unhexlify(ctx["m"]), rep, records,
                                   failed_at if err else None, ctx.get("u"), nonce,
                                   api.installed().digest, key,
                                   None if key else client.report_mac_key())
        except (KeyError, TypeError, ValueError, IndexError) as e:
            emit("error", where="suit report", message=str(e))
            return True
        try:
            client.suit_report(data)
        except HttpError as e:
            if 400 <= e.status < 500 and e.status not in (401, 408, 429):
                emit("error", where="suit report", message=str(e))
                return True  # the scheduler will never take it: the report goes on alone
            return False
        except TransportError:
            return False
        return True

    def sync(self):
        """Queue a report when the journal's state or the trust store changed since the last
        one queued (a trust-store update the schedule carried: the scheduler stops sending it
        once it hears the new version)."""
        self.capture()
        store = self.agent.store
        r = api.current()
        last = store.get_json(STATE_KEY) or [0, 0, 0]
        state = state_of(r)
        tv = trust()
        held = [tv["vendor"], tv["scheduler"]]
        if [state, r.version] == last[:2] and not (r.state in _EVENTS and r.seq != last[2]) \
                and last[3:] == held:
            return False
        rep = self.for_record(r)
        store.enqueue(rep)
        held.insert(0, r.seq)
        held.insert(0, r.version)
        held.insert(0, state)
        store.put_json(STATE_KEY, held)
        emit("state", state=rep["state"], version=r.version,
             installed=rep["installed"]["app"])
        return True

    def queue(self, rep):
        self.agent.store.enqueue(rep)

    def flush(self):
        """Send queued reports in order; stop at the first that cannot be delivered."""
        store = self.agent.store
        for _, key in store.queued():
            rep = store.peek(key)
            if rep is None:
                store.ack(key)
                continue
            if rep.get("state") in _SUIT_STATES and not self.suit(rep):
                return False
            try:
                ack = self.agent.client.report(rep)
            except HttpError as e:
                if 400 <= e.status < 500 and e.status not in (401, 408, 429):
                    emit("error", where="report", message=str(e))
                    store.ack(key)  # the scheduler will never accept it: drop it
                    continue
                return False
            except TransportError:
                return False
            store.ack(key)
            self._answered(ack)
        return True

    def live(self, rep):
        """Send a report that is worth sending now but not worth keeping (progress, busy).
        Returns True when the scheduler took it."""
        try:
            self._answered(self.agent.client.report(rep))
            return True
        except TransportError:
            return False

    def _answered(self, ack):
        if ack.get("schedule_changed"):
            self.agent.poller.soon()

    def failed(self, err, what):
        """A refusal before anything was written (the envelope): report `failed` with the
        error's code, queued and sent."""
        emit("error", where=what, code=err.code, message=str(err))
        if not self.capture():
            self.agent.store.delete(SUIT_KEY)  # not about the last manifest processed
        msg = "%s: %s" % (what, err)
        rep = {"state": "failed", "installed": installed(), "trust": trust(),
               "error": {"code": err.code, "message": msg[:_MESSAGE]}}
        self.queue(self._tag(rep))
        self.flush()

    def error(self, r, code, message, keep=True):
        """The report of the current record r with an error of the agent's (code, message):
        queued (keep) or sent once."""
        rep = self.for_record(r)
        rep["error"] = {"code": code, "message": message[:_MESSAGE]}
        if keep:
            self.queue(rep)
        else:
            self.live(rep)

    def progress(self, done):
        """A download's progress, sent at once."""
        c = self.update()
        self.live({"state": "downloading", "progress": done, "rollout_id": c.get("r"),
                   "release_id": c.get("rel"), "schedule_number": self.agent.poller.last_number})

    def busy(self, busy):
        """Tell the scheduler whether the application is busy; True when it took it."""
        return self.live(self._tag({"state": "staged", "busy": busy}))
