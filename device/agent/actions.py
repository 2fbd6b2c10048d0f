# Acting on the schedule, by the journal's state and the schedule's action:
#   TRIAL                     the trial is settled (trial.py): confirm, or revert and reset
#   download / install        stage the release unless it is staged already (download.py);
#                             install: only inside the window and when the application is not
#                             busy -> request install, reset into the loader
#   abort                     discard a download or a staged update (FAILED, ABORTED)
#   revert, without a trial   nothing to revert: reported once (NO_TRIAL_TO_REVERT)
# A trust-store update the schedule carries (docs/formats/trust-store.md) is applied first,
# whatever the state and the action, so a release signed by a rotated-in key verifies.
from loader import api

from agent import schedule as S
from agent.download import download
from agent.errors import NO_TRIAL_TO_REVERT
from agent.events import emit


class Actions:
    def __init__(self, agent):
        self.agent = agent
        self.busy_reported = None  # the last busy answer the scheduler took
        self.refused_revert = -1  # the schedule whose revert was answered NO_TRIAL_TO_REVERT
        self.trusted = -1  # the schedule whose trust-store update was applied or refused

    def act(self, s):
        if s is not None and s.trust_update is not None and self.trusted != s.number:
            self.trust(s)
        r = api.current()
        if r.component == api.COMPONENT_APP and r.state == api.TRIAL:
            from agent import trial  # loaded only in a trial's boot

            trial.settle(self.agent, s)
            return
        if s is None:
            return
        a = s.action
        if a == S.DOWNLOAD or a == S.INSTALL:
            self.update(s, r)
        elif a == S.ABORT:
            self.abort(r)
        elif a == S.REVERT and self.refused_revert != s.number:
            self.refused_revert = s.number
            self.agent.reports.error(r, NO_TRIAL_TO_REVERT, "no trial to revert: the installed "
                                     "version was confirmed (its backup is gone)")

    def trust(self, s):
        """Apply the schedule's trust-store update (once per schedule in a boot; the update in
        place already changes nothing) before anything it carries is verified. A refusal is
        reported with the loader's code; the schedule's other action goes on."""
        self.trusted = s.number
        try:
            role, version = api.update_trust(s.trust_update)
        except api.LoaderError as e:
            emit("refused", code=e.code, message="trust-store update: %s" % e)
            self.agent.reports.error(api.current(), e.code,
                                     "trust-store update refused: %s" % e)
            return
        if role == "scheduler":
            self.agent.keys = api.trust_keys("scheduler")
        emit("trust", role=role, version=version)

    def update(self, s, r):
        art = s.artifact
        comp = api.component(art.component)
        runs = api.loader_seq() if comp == api.COMPONENT_LOADER else api.installed().version
        if runs >= art.sequence_number:
            return
        staged = (r.component == comp and r.state == api.STAGED
                  and r.version == art.sequence_number
                  and (r.digest == art.payload_digest or self.staging_of(art)))
        if not staged:
            self.remember(s)
            if not download(self.agent, s):
                return
        if not self.busy() and s.action == S.INSTALL:
            self.install(s)

    def staging_of(self, art):
        """The release remembered as the update in flight is art's: its STAGED record is art's
        even when the record's digest (the image's) is not the download's (an encrypted
        release's ciphertext, a delta's patch)."""
        from agent.store import UPDATE_KEY

        ctx = self.agent.store.get_json(UPDATE_KEY) or {}
        return ctx.get("rel") == art.release_id and ctx.get("v") == art.sequence_number

    def remember(self, s):
        """The update in flight, for the reports about it (store.UPDATE_KEY)."""
        from agent.store import UPDATE_KEY

        art = s.artifact
        self.agent.store.put_json(UPDATE_KEY, {"r": s.rollout_id, "rel": art.release_id,
                                               "c": art.component, "v": art.sequence_number,
                                               "n": s.number})

    def busy(self):
        """Ask the application; tell the scheduler when the answer changes."""
        from agent import hooks

        busy = hooks.busy(self.agent.app)
        if busy != self.busy_reported:
            if self.agent.reports.busy(busy):
                self.busy_reported = busy
            if busy:
                emit("wait", reason="application busy")
        if busy:
            self.agent.phase = "busy"
        return busy

    def install(self, s):
        a = self.agent
        if not s.in_window(a.clock.now()):
            emit("wait", reason="outside the install window")
            return
        a.phase = "installing"
        api.request_install()
        a.reports.sync()
        a.reports.flush()
        emit("reset", reason="install")
        api.reset()

    def abort(self, r):
        if r.component == api.COMPONENT_APP and (
                r.state == api.DOWNLOADING
                or (r.state == api.STAGED and not r.flags & api.FLAG_INSTALL_REQUESTED)):
            api.abandon()
            emit("aborted", version=r.version)
            self.agent.reports.sync()
