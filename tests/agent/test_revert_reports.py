"""An update the loader reverts because its install failed (here: its NVM migration raises) is
reported `reverted` with the loader's error code (device-api.md: `reverted` with an `error`)."""

from __future__ import annotations

from agent_env import DEVICE_DIR, FakeScheduler
from suture.formats import error_codes
from suture.sim.testing import Provisioned, example_app, sign_payload

MIGRATION_ERROR = error_codes.load().code("loader", "MigrationError")


def test_reverted_install_reports_its_error(agent_device: Provisioned,
                                            fake_scheduler: FakeScheduler) -> None:
    p = agent_device
    v2 = example_app(2, migrations="def migrate(key, schema, value):\n    raise ValueError()\n")
    env = p.board.put_file("v2.suit", sign_payload(v2, 2, p.key))
    r = p.device.run(["stage", env, p.board.put_file("v2.bundle", v2)])
    assert r.ok, r.stdout + r.stderr
    r = p.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), "2"])
    assert r.exit_code == 0, r.stdout + r.stderr
    reverted = [rep for rep in fake_scheduler.reports if rep["state"] == "reverted"]
    assert reverted, fake_scheduler.reports
    assert reverted[-1]["installed"] == {"app": 1}
    assert reverted[-1]["error"]["code"] == MIGRATION_ERROR
