# Polling the schedule: GET it with If-None-Match when the poll is due, verify a new document
# (schedule.verify, in the order of docs/formats/schedule.md), keep the highest number accepted
# in NVM (a kept record: a revert does not reopen a replay window), and work out when to poll
# next (the schedule's next-poll, its interval with a little jitter after a 304, soon after a
# refusal, after a 503's Retry-After with jitter).
from micropython import const

from agent import schedule as S
from agent.errors import ScheduleError
from agent.events import emit
from agent.store import SCHEDULE_KEY

RETRY_S = const(10)  # after a refused schedule or a failed cycle
MAX_RETRY_AFTER_S = const(3600)  # a longer Retry-After is taken as this


class Poller:
    def __init__(self, agent):
        self.agent = agent
        self.last_number = agent.store.get_int(SCHEDULE_KEY, -1)  # highest number accepted
        self.schedule = None  # the last schedule verified in this boot
        self.etag = None
        self.next_poll = 0
        self.reachable = False  # this boot fetched a schedule from the scheduler
        self.refused = 0  # documents refused in this boot

    def due(self, now):
        return now >= self.next_poll

    def soon(self):
        """Poll at the next cycle (a report's answer says the schedule changed)."""
        self.next_poll = 0

    def retry(self, now, error=None):
        """After a failed cycle: in RETRY_S, or, when the scheduler asked for it (a 503 with
        Retry-After: too many devices at once), after that many seconds plus up to as many
        again at random, so that a fleet refused together comes back spread out."""
        after = min(getattr(error, "retry_after", 0), MAX_RETRY_AFTER_S)
        if after > 0:
            from agent.platform import random_below

            self.next_poll = now + after + random_below(after + 1)
        else:
            self.next_poll = now + RETRY_S

    def poll(self):
        """Fetch the schedule; returns the one to act on (the last verified one when the new
        document is refused or unchanged)."""
        a = self.agent
        a.phase = "polling"
        status, doc, etag = a.client.get_schedule(self.etag)
        now = a.clock.now()  # after the request: a resync may have set the clock
        self.reachable = True
        if status == 304 and self.schedule is not None:
            from agent.platform import random_below

            iv = self.schedule.poll_interval
            self.next_poll = now + iv + random_below(iv // 20 + 1)
            return self.schedule
        try:
            s = S.verify(doc, a.keys, a.device_id, self.last_number, now)
        except ScheduleError as e:
            self.refused += 1
            emit("refused", code=e.code, message=str(e))
            self.etag = None
            self.retry(now)
            return self.schedule
        if s.number > self.last_number:
            self.last_number = s.number
            a.store.put_int(SCHEDULE_KEY, s.number, keep=True)
        self.schedule = s
        self.etag = etag
        self.next_poll = s.next_poll if s.next_poll > now else now + max(1, s.poll_interval)
        emit("schedule", number=s.number, action=s.action_name())
        return s
