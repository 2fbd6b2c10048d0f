# The agent's loop: report what the journal says, poll the schedule when it is due, act on it.
#
#   boot ──> sync reports ──> poll (If-None-Match) ──> verify ──> act ──> sleep until next poll
#
# Acting, by journal state and schedule action:
#   TRIAL                     health check (application hook + this boot's successful poll of
#                             the scheduler) -> confirm; unhealthy or action revert -> request
#                             the revert and reset (the loader restores the backup)
#   download / install        fetch the envelope, stage the payload (resumable), report staged;
#                             install: only inside the window and when the application is not
#                             busy -> request install, reset into the loader
#   abort                     discard a download or a staged update
# Every state change is the loader's journal record; the agent derives its reports from it,
# so a report is queued (in NVM) once per state whatever resets happen in between.
import json

from loader import journal as J
from micropython import const

from agent import schedule as S
from agent.errors import HttpError, ScheduleError, TransportError
from agent.store import Store

_BUF = const(1024)
_RETRY_S = const(10)
TRIAL_TIMEOUT_S = const(600)  # a trial that cannot reach the scheduler this long reverts

# journal state -> report state (docs/formats/device-api.md)
_REPORT_STATE = {
    J.IDLE: "idle", J.DOWNLOADING: "downloading", J.STAGED: "staged", J.BACKUP: "installing",
    J.INSTALLING: "installing", J.TRIAL: "trial", J.CONFIRMED: "confirmed",
    J.REVERTING: "installing", J.REVERTED: "reverted", J.FAILED: "failed",
}
_EVENTS = (J.REVERTED, J.FAILED, J.CONFIRMED)  # each record is an event of its own


def emit(kind, **fields):
    """One line on the console for humans and the simulator's live view."""
    fields["ev"] = kind
    print("SUTURE-AGENT " + json.dumps(fields))


class Agent:
    def __init__(self, app=None, transport=None, clock=None):
        from loader import api

        from agent.client import SchedulerClient
        from agent.platform import Clock

        self.api = api
        self.ld = api.loader()
        self.app = app
        self.clock = clock or Clock()
        self.store = Store(api.nvm())
        dev, secret, url, keys = self.store.identity()
        self.device_id = dev
        self.keys = keys
        if transport is None:
            from agent.transport import default

            transport = default(api.nvm())
        self.client = SchedulerClient(transport, url, dev, secret, self.clock)
        self.last_number = self.store.get_int("agent.sched", -1)
        self.schedule = None
        self.etag = None
        self.next_poll = 0
        self.reachable = False
        self.busy_reported = None
        self.buf = bytearray(_BUF)
        self.refused = 0
        self.failed_cycles = 0
        self._last_progress = 0
        self.booted = self.clock.mono()
        self.phase = "starting"
        self.status = None

    # ---- state reports -------------------------------------------------------------------
    def ctx(self):
        return self.store.get_json("agent.ctx") or {}

    def installed(self):
        """What this device runs, per SUIT component: the application, and the loader once a
        loader release was confirmed (absent: the factory loader, version 0)."""
        out = {"app": self.ld.installed().version}
        seq = self.ld.loader_seq()
        if seq:
            out["loader"] = seq
        return out

    def has(self, art):
        """The version of the schedule's component (key 17) that this device runs."""
        if art.component == "loader":
            return self.ld.loader_seq()
        return self.ld.installed().version

    def report_for(self, r):
        from loader.staging import ABORTED

        state = _REPORT_STATE.get(r.state, "idle")
        if r.state == J.STAGED and r.flags & J.FLAG_INSTALL_REQUESTED:
            state = "installing"
        rep = {"state": state, "installed": self.installed()}
        if r.state == J.FAILED and r.progress == ABORTED:
            rep["state"] = "idle"
        elif r.state == J.FAILED:
            rep["error"] = {"code": r.progress, "message": "update failed (loader code %d)"
                            % r.progress}
        elif r.state == J.REVERTED and r.progress:  # because of a loader error (its code)
            rep["error"] = {"code": r.progress, "message": "reverted after loader error %d"
                            % r.progress}
        c = self.ctx()
        ended = r.state in (J.REVERTED, J.FAILED)
        if r.state != J.IDLE and (c.get("v") == r.version or ended):
            if c.get("r"):
                rep["rollout_id"] = c["r"]
            if c.get("rel"):
                rep["release_id"] = c["rel"]
        if self.last_number >= 0:
            rep["schedule_number"] = self.last_number
        return rep

    def sync_state(self):
        """Queue a report when the journal's state changed since the last one queued."""
        r = self.ld.journal.current
        last = self.store.get_json("agent.js") or [0, 0, 0]
        state = _REPORT_STATE.get(r.state, "idle")
        if r.state == J.STAGED and r.flags & J.FLAG_INSTALL_REQUESTED:
            state = "installing"
        if [state, r.version] == last[:2] and not (r.state in _EVENTS and r.seq != last[2]):
            return False
        rep = self.report_for(r)
        self.store.enqueue(rep)
        self.store.put_json("agent.js", [state, r.version, r.seq])
        emit("state", state=rep["state"], version=r.version,
             installed=self.ld.installed().version)
        return True

    def flush(self):
        """Send queued reports in order; stop at the first that cannot be delivered."""
        for _, key in self.store.queued():
            rep = self.store.peek(key)
            if rep is None:
                self.store.ack(key)
                continue
            try:
                ack = self.client.report(rep)
            except HttpError as e:
                if 400 <= e.status < 500 and e.status not in (401, 408, 429):
                    emit("error", where="report", message=str(e))
                    self.store.ack(key)  # the scheduler will never accept it: drop it
                    continue
                return False
            except TransportError:
                return False
            self.store.ack(key)
            if ack.get("schedule_changed"):
                self.next_poll = 0
        return True

    def live(self, rep):
        """A report that is worth sending now but not worth keeping (progress, busy)."""
        try:
            ack = self.client.report(rep)
            if ack.get("schedule_changed"):
                self.next_poll = 0
        except TransportError:
            pass

    # ---- schedule ------------------------------------------------------------------------
    def poll(self):
        self.phase = "polling"
        status, doc, etag = self.client.get_schedule(self.etag)
        now = self.clock.now()  # after the request: a resync may have set the clock
        self.reachable = True
        if status == 304 and self.schedule is not None:
            from agent.platform import random_below

            iv = self.schedule.poll_interval
            self.next_poll = now + iv + random_below(iv // 20 + 1)
            return self.schedule
        try:
            s = S.verify(doc, self.keys, self.device_id, self.last_number, now)
        except ScheduleError as e:
            self.refused += 1
            emit("refused", code=e.code, message=str(e))
            self.etag = None
            self.next_poll = now + _RETRY_S
            return self.schedule
        if s.number > self.last_number:
            self.last_number = s.number
            self.store.put_int("agent.sched", s.number, keep=True)
        self.schedule = s
        self.etag = etag
        self.next_poll = s.next_poll if s.next_poll > now else now + max(1, s.poll_interval)
        emit("schedule", number=s.number, action=s.action_name())
        return s

    # ---- actions -------------------------------------------------------------------------
    def act(self, s):
        r = self.ld.journal.current
        if r.component == J.COMPONENT_APP and r.state == J.TRIAL:
            self.trial(s)
            return
        if s is None:
            return
        a = s.action
        if a in (S.DOWNLOAD, S.INSTALL):
            art = s.artifact
            if self.has(art) >= art.sequence_number:
                return
            comp = J.COMPONENT_LOADER if art.component == "loader" else J.COMPONENT_APP
            staged = (r.component == comp and r.state == J.STAGED
                      and r.version == art.sequence_number and r.digest == art.payload_digest)
            if not staged:
                self.remember(s)
                if not self.download(s):
                    return
            busy = self.check_busy()
            if a == S.INSTALL and not busy:
                self.install(s)
        elif a == S.ABORT:
            if r.component == J.COMPONENT_APP and (
                    r.state == J.DOWNLOADING
                    or (r.state == J.STAGED and not r.flags & J.FLAG_INSTALL_REQUESTED)):
                from loader.staging import abandon

                abandon(self.ld)
                emit("aborted", version=r.version)
                self.sync_state()
        elif a == S.REVERT:
            if self.refused_revert != s.number:
                self.refused_revert = s.number
                rep = self.report_for(r)
                rep["error"] = {"code": 150, "message": "no trial to revert: the installed "
                                "version was confirmed (its backup is gone)"}
                self.store.enqueue(rep)

    refused_revert = -1

    def remember(self, s):
        art = s.artifact
        self.store.put_json("agent.ctx", {"r": s.rollout_id, "rel": art.release_id,
                                          "c": art.component, "v": art.sequence_number,
                                          "n": s.number})

    def download(self, s):
        from loader.errors import LoaderError
        from loader.staging import Stager, abandon

        from agent.download import fetch_envelope, stream_payload
        from agent.errors import DownloadError

        art = s.artifact
        env = fetch_envelope(self.client, art, self.clock)
        st = Stager(self.ld)
        try:
            st.begin(env)
        except LoaderError as e:
            self.fail_now(e, "envelope refused")
            return False
        comp = J.COMPONENT_LOADER if art.component == "loader" else J.COMPONENT_APP
        if st.digest != art.payload_digest or st.size != art.payload_size \
                or st.version != art.sequence_number or st.rec.component != comp:
            abandon(self.ld, DownloadError.code)
            self.sync_state()
            emit("error", where="download", message="manifest and schedule disagree")
            return False
        self.phase = "downloading"
        emit("download", offset=st.offset, size=st.size, version=st.version)
        self.sync_state()
        self.flush()
        self._last_progress = st.offset
        stream_payload(self.client, st, art, self.buf, self.clock, self.progress)
        try:
            st.finish(install=False)
        except LoaderError as e:
            emit("error", where="staging", code=e.code, message=str(e))
            self.sync_state()
            self.flush()
            return False
        self.phase = "staged"
        emit("staged", version=st.version, size=st.size)
        self.sync_state()
        self.flush()
        return True

    def progress(self, done, size):
        emit_every = size // 4 or 1
        if done - self._last_progress >= emit_every or done == size:
            self._last_progress = done
            emit("progress", done=done, size=size)
            c = self.ctx()
            self.live({"state": "downloading", "progress": done, "rollout_id": c.get("r"),
                       "release_id": c.get("rel"), "schedule_number": self.last_number})

    def fail_now(self, err, what):
        """A refusal before anything was written: report `failed` with the loader's code."""
        emit("error", where=what, code=err.code, message=str(err))
        c = self.ctx()
        rep = {"state": "failed", "installed": self.installed(),
               "error": {"code": err.code, "message": ("%s: %s" % (what, err))[:200]}}
        if c.get("r"):
            rep["rollout_id"] = c["r"]
            rep["release_id"] = c["rel"]
        self.store.enqueue(rep)
        self.flush()

    def check_busy(self):
        """Ask the application; tell the scheduler when the answer changes. A hook that raises
        counts as busy: nothing is installed on an application that cannot answer."""
        busy = False
        if self.app is not None and hasattr(self.app, "busy"):
            try:
                busy = bool(self.app.busy())
            except Exception as e:
                emit("error", where="busy", message="application busy hook raised %r" % e)
                busy = True
        if busy != self.busy_reported:
            c = self.ctx()
            rep = {"state": "staged", "busy": busy}
            if c.get("r"):
                rep["rollout_id"] = c["r"]
                rep["release_id"] = c["rel"]
            try:
                ack = self.client.report(rep)
                self.busy_reported = busy
                if ack.get("schedule_changed"):
                    self.next_poll = 0
            except TransportError:
                pass
            if busy:
                emit("wait", reason="application busy")
        if busy:
            self.phase = "busy"
        return busy

    def install(self, s):
        now = self.clock.now()
        if not s.in_window(now):
            emit("wait", reason="outside the install window")
            return
        self.phase = "installing"
        self.api.request_install()
        self.sync_state()
        self.flush()
        emit("reset", reason="install")
        self.ld.board.reset()

    def trial(self, s):
        if s is not None and s.action == S.REVERT:
            healthy, why = False, "the scheduler asked for a revert"
        else:
            healthy, why = self.health()
        r = self.ld.journal.current
        if healthy:
            self.api.confirm()
            self.store = Store(self.api.nvm())  # the trial's NVM bank is now the confirmed one
            emit("confirmed", version=r.version)
            self.sync_state()
            self.flush()
            return
        emit("unhealthy", reason=why)
        rep = self.report_for(r)
        rep["error"] = {"code": 151, "message": why[:200]}
        self.live(rep)
        if not r.flags & J.FLAG_REVERT_REQUESTED:
            self.api.request_revert()
        emit("reset", reason="revert")
        self.ld.board.reset()

    def health(self):
        """Application hook and agent self-test (it reached the scheduler and verified a
        schedule in this boot)."""
        if not self.reachable or self.schedule is None:
            return False, "agent self-test: scheduler not reached"
        if self.app is not None and hasattr(self.app, "health"):
            try:
                ok = self.app.health()
            except Exception as e:  # the application's own failure is a failed health check
                return False, "application health hook raised %r" % e
            if not ok:
                return False, "application health check failed"
        return True, ""

    # ---- loop ----------------------------------------------------------------------------
    def cycle(self):
        r = self.ld.journal.current
        if r.state == J.TRIAL and not self.reachable and \
                self.clock.mono() - self.booted >= TRIAL_TIMEOUT_S:
            self.trial(None)
        resyncs = self.client.resyncs
        try:
            self.sync_state()
            self.flush()
            s = self.schedule
            if self.clock.now() >= self.next_poll:
                s = self.poll()
            self.act(s)
        finally:
            if self.client.resyncs != resyncs:
                emit("resync", offset=int(self.clock.offset), now=self.clock.now())

    def run(self, max_s=None):
        """Loop until stopped (the simulator's `stop` file) or, with max_s, for that long on
        the agent's clock. Errors are reported and retried at the next cycle: whatever a peer
        sends, one cycle fails and the loop goes on (a reset or a power cut, BaseExceptions,
        still end it)."""
        from agent.platform import stop_requested

        start = self.booted = self.clock.mono()
        emit("boot", device=self.device_id, installed=self.ld.installed().version,
             journal=self.ld.journal.current.name())
        while not stop_requested():
            if max_s is not None and self.clock.mono() - start >= max_s:
                break
            try:
                self.cycle()
            except Exception as e:  # AgentError, LoaderError, OSError, or a bad response
                self.failed_cycles += 1
                emit("error", where="cycle", code=getattr(e, "code", 0),
                     message="%s: %s" % (type(e).__name__, e))
                self.next_poll = self.clock.now() + _RETRY_S
            self.wait()
        emit("stop")

    def wait(self):
        """Until the next poll; answers status requests on the console meanwhile."""
        from agent.platform import stop_requested

        self.phase = "idle" if self.phase in ("starting", "polling") else self.phase
        if self.status is None:
            from agent.status import StatusServer

            self.status = StatusServer(self)
        while not stop_requested():
            left_ms = self.next_poll * 1000 - self.clock.now_ms()
            if left_ms <= 0:
                return
            step = left_ms / 1000 if left_ms < 1000 else 1
            if self.status.enabled:
                self.status.serve(int(step * 1000 / self.clock.scale))
            else:
                self.clock.sleep(step)
