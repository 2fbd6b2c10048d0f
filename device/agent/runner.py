# The agent's loop: report what the journal says, poll the schedule when it is due, act on it,
# wait (answering status requests on the console) until the next poll.
#
#   boot ──> sync reports ──> poll (If-None-Match) ──> verify ──> act ──> wait for the next poll
#
# Each step is a module of its own: reports.py (journal state -> queued reports), poller.py
# (the schedule), actions.py (what the schedule asks, by journal state), download.py (staging
# a release), trial.py (confirm or revert a new release), hooks.py (the application's busy and
# health), status.py (the console's status requests). The loader is reached through loader.api
# only.
import gc

from loader import api
from micropython import const

from agent.events import emit
from agent.store import Store

_BUF = const(1024)  # the download's receive buffer


class Agent:
    def __init__(self, app=None, transport=None, clock=None):
        from agent.actions import Actions
        from agent.client import SchedulerClient
        from agent.platform import Clock
        from agent.poller import Poller
        from agent.reports import Reports
        from agent.status import StatusServer

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
        self.buf = bytearray(_BUF)
        self.booted = self.clock.mono()
        self.phase = "starting"
        self.failed_cycles = 0
        # built now, while the heap is whole: a download (above all an encrypted one) leaves it
        # fragmented, and a module loaded then may find no block large enough
        self.status = StatusServer(self)
        self.poller = Poller(self)
        self.reports = Reports(self)
        self.actions = Actions(self)

    def reopen_store(self):
        """After a confirm: the trial's NVM bank is now the confirmed one."""
        self.store = Store(api.nvm())

    def cycle(self):
        if api.current().state == api.TRIAL:
            from agent import trial  # loaded only in a trial's boot

            if trial.timed_out(self):
                trial.settle(self, None)
        resyncs = self.client.resyncs
        try:
            self.reports.sync()
            self.reports.flush()
            p = self.poller
            s = p.poll() if p.due(self.clock.now()) else p.schedule
            self.actions.act(s)
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
        emit("boot", device=self.device_id, installed=api.installed().version,
             journal=api.current().name())
        while not stop_requested():
            if max_s is not None and self.clock.mono() - start >= max_s:
                break
            try:
                self.cycle()
            except Exception as e:  # AgentError, LoaderError, OSError, or a bad response
                self.failed_cycles += 1
                emit("error", where="cycle", code=getattr(e, "code", 0),
                     message="%s: %s" % (type(e).__name__, e))
                self.poller.retry(self.clock.now(), e)
            self.wait()
        emit("stop")

    def wait(self):
        """Until the next poll; answers status requests on the console meanwhile."""
        from agent.platform import stop_requested

        self.phase = "idle" if self.phase in ("starting", "polling") else self.phase
        gc.collect()  # a cycle's garbage (a download's buffers) goes before the long wait
        while not stop_requested():
            left_ms = self.poller.next_poll * 1000 - self.clock.now_ms()
            if left_ms <= 0:
                return
            step = left_ms / 1000 if left_ms < 1000 else 1
            if self.status.enabled:
                self.status.serve(int(step * 1000 / self.clock.scale))
            else:
                self.clock.sleep(step)
