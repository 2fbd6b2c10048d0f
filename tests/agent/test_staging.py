"""The agent against a fake scheduler on the unix port: a payload whose digest does not match
is never installed, nothing is installed outside the window, and a download resumes where it
stopped after a dropped connection or a reset."""

from __future__ import annotations

import time
from pathlib import Path

from agent_env import DEVICE_DIR, FakeScheduler, cut_power_while_stalled, reschedule, serve_release
from suture.formats import error_codes
from suture.keys import PrivateKey
from suture.sim.journal import State
from suture.sim.testing import Provisioned, example_app

CODES = error_codes.load()


def run_agent(dev: Provisioned, seconds: float) -> int:
    r = dev.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), str(seconds)])
    return r.exit_code


def states(dev: Provisioned) -> list[State]:
    return [r.state for r in dev.board.read_journal()]


def test_digest_mismatch_is_never_installed(agent_device: Provisioned,
                                            fake_scheduler: FakeScheduler,
                                            vendor_key: PrivateKey,
                                            scheduler_key: PrivateKey) -> None:
    good = example_app(2, filler=3000)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x40
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=2, payload=good,
                  served=bytes(bad))
    code = run_agent(agent_device, 3)
    assert code == 0  # no reset: nothing to install
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.FAILED
    assert cur.progress == CODES.code("loader", "DigestError")
    seen = states(agent_device)
    assert State.INSTALLING not in seen
    assert State.TRIAL not in seen
    assert agent_device.device.run(["report"]).report()["installed_version"] == 1
    failed = [r for r in fake_scheduler.reports if r["state"] == "failed"]
    assert failed
    assert failed[0]["rollout_id"] == 9
    assert failed[0]["release_id"] == 5


def test_no_install_outside_the_window(agent_device: Provisioned,
                                       fake_scheduler: FakeScheduler, vendor_key: PrivateKey,
                                       scheduler_key: PrivateKey) -> None:
    now = int(time.time())
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=2,
                  payload=example_app(2), window=(now + 3600, now + 7200))
    assert run_agent(agent_device, 3) == 0
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.STAGED
    assert cur.version == 2
    assert not cur.flags & 0x02  # INSTALL_REQUESTED
    assert [r["state"] for r in fake_scheduler.reports].count("staged") >= 1


def test_install_in_the_window_then_confirm(agent_device: Provisioned,
                                            fake_scheduler: FakeScheduler,
                                            vendor_key: PrivateKey,
                                            scheduler_key: PrivateKey) -> None:
    now = int(time.time())
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=2,
                  payload=example_app(2), window=(now - 60, now + 3600))
    assert run_agent(agent_device, 5) == 98  # reset into the loader to install
    assert run_agent(agent_device, 3) == 0  # trial boot: health check, confirm
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.CONFIRMED
    assert cur.version == 2
    sent = [r["state"] for r in fake_scheduler.reports]
    assert sent[0] == "confirmed"  # the state at the first boot: #1, confirmed at provisioning
    last = len(sent) - 1 - sent[::-1].index("confirmed")
    assert sent.index("staged") < sent.index("installing") < sent.index("trial") < last
    assert fake_scheduler.reports[last]["installed"] == {"app": 2}
    assert fake_scheduler.reports[last]["rollout_id"] == 9


def test_download_resumes_after_a_dropped_connection(agent_device: Provisioned,
                                                     fake_scheduler: FakeScheduler,
                                                     vendor_key: PrivateKey,
                                                     scheduler_key: PrivateKey) -> None:
    payload = example_app(2, filler=60_000)
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=1, payload=payload)
    fake_scheduler.stall_after = 20_000
    fake_scheduler.drop = True
    assert run_agent(agent_device, 4) == 0
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.STAGED
    ranges = [h.get("Range") for m, p, h in fake_scheduler.requests if p.endswith("/payload")]
    assert ranges[0] is None
    assert ranges[1] is not None
    assert ranges[1].startswith("bytes=")
    assert ranges[1] != "bytes=0-"
    assert int(ranges[1][6:-1]) >= 20_000 - 1024  # from where the stream stopped


def test_download_resumes_after_a_reset(agent_device: Provisioned,
                                        fake_scheduler: FakeScheduler, vendor_key: PrivateKey,
                                        scheduler_key: PrivateKey, loader_lib: Path) -> None:
    payload = example_app(2, filler=80_000)
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=1, payload=payload)
    fake_scheduler.stall_after = 45_000
    cut_power_while_stalled(agent_device, fake_scheduler, loader_lib)
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.DOWNLOADING
    assert cur.progress == 32768
    fake_scheduler.release.set()
    assert run_agent(agent_device, 4) == 0
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.STAGED
    assert cur.size == len(payload)
    ranges = [h.get("Range") for m, p, h in fake_scheduler.requests if p.endswith("/payload")]
    assert ranges == [None, "bytes=32768-"]


def test_abort_discards_the_staged_update(agent_device: Provisioned,
                                          fake_scheduler: FakeScheduler,
                                          vendor_key: PrivateKey,
                                          scheduler_key: PrivateKey) -> None:
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=1, payload=example_app(2))
    assert run_agent(agent_device, 3) == 0
    staged = agent_device.board.current_record()
    assert staged is not None
    assert staged.state == State.STAGED
    reschedule(fake_scheduler, scheduler_key, 4, 5)  # abort
    assert run_agent(agent_device, 3) == 0
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.FAILED
    assert cur.progress == CODES.code("loader", "ABORTED")  # at the scheduler's request
    assert fake_scheduler.reports[-1]["state"] == "idle"
    assert agent_device.device.run(["report"]).report()["installed_version"] == 1


def test_revert_command_during_the_trial(agent_device: Provisioned,
                                         fake_scheduler: FakeScheduler,
                                         vendor_key: PrivateKey,
                                         scheduler_key: PrivateKey) -> None:
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=2, payload=example_app(2))
    assert run_agent(agent_device, 5) == 98  # installs
    reschedule(fake_scheduler, scheduler_key, 4, 3)  # revert
    assert run_agent(agent_device, 5) == 98  # trial boot: asks for the revert, resets
    assert run_agent(agent_device, 3) == 0  # the loader restored #1; the agent reports it
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.REVERTED
    assert cur.version == 1
    reverted = [r for r in fake_scheduler.reports if r["state"] == "reverted"]
    assert reverted
    assert reverted[-1]["installed"] == {"app": 1}
    assert reverted[-1]["rollout_id"] == 9


def test_revert_does_not_reopen_a_replay_window(agent_device: Provisioned,
                                               fake_scheduler: FakeScheduler,
                                               vendor_key: PrivateKey,
                                               scheduler_key: PrivateKey) -> None:
    """Schedule 4 is accepted during the trial, in the trial's NVM bank, which the revert it
    asks for discards. The number is a kept record: after the revert, a replay of schedule 3
    (the install) as the very first answer is still refused."""
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=2, payload=example_app(2))
    assert run_agent(agent_device, 5) == 98  # installs #2 under schedule 3
    reschedule(fake_scheduler, scheduler_key, 4, 3)  # revert
    assert run_agent(agent_device, 5) == 98  # trial boot: accepts 4, asks for the revert
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=2, payload=example_app(2))
    r = agent_device.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), "3"])
    assert r.exit_code == 0, r.stdout + r.stderr  # no second install
    assert r.result["refused"] >= 1
    assert r.result["last_number"] == 4
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.REVERTED
    assert cur.version == 1


def test_replayed_schedule_is_not_acted_on(agent_device: Provisioned,
                                           fake_scheduler: FakeScheduler,
                                           vendor_key: PrivateKey,
                                           scheduler_key: PrivateKey) -> None:
    """After schedule 4 (none), an older signed schedule 3 (install) is refused, across a
    reset: the highest number accepted is kept in NVM."""
    reschedule(fake_scheduler, scheduler_key, 4, 0)
    assert run_agent(agent_device, 2) == 0
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=2, payload=example_app(2))
    r = agent_device.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), "2"])
    assert r.exit_code == 0
    assert r.result["refused"] >= 1
    assert r.result["last_number"] == 4
    assert not any(p.endswith("/envelope") for _, p, _ in fake_scheduler.requests)
    cur = agent_device.board.current_record()
    assert cur is not None
    assert cur.state == State.CONFIRMED
    assert cur.version == 1
