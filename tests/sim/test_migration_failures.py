"""An application's NVM migration is code the loader did not write: whatever it does (raise when
called or imported, return the wrong thing, recurse without end, reset the board, never finish),
the install goes to REVERTING with MigrationError's code, the confirmed version comes back with
its NVM data, and no boot crash-loops."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from suture.formats import error_codes
from suture.sim.device import SimError
from suture.sim.journal import State
from suture.sim.testing import Provisioned, example_app, sign_payload

MIGRATION_ERROR = error_codes.load().code("loader", "MigrationError")

BAD_MIGRATIONS = {
    "raise-at-call": "def migrate(key, schema, value):\n    raise ValueError('bad record')\n",
    "raise-at-import": "1 // 0\n\ndef migrate(key, schema, value):\n    return schema, value\n",
    "syntax-error": "def migrate(key, schema, value)\n    return schema, value\n",
    "import-missing-module": (
        "import no_such_module\n\ndef migrate(key, schema, value):\n    return schema, value\n"
    ),
    "wrong-return-int": "def migrate(key, schema, value):\n    return 5\n",
    "wrong-return-str": "def migrate(key, schema, value):\n    return 'xy'\n",
    "wrong-return-triple": "def migrate(key, schema, value):\n    return 2, value, 3\n",
    "wrong-value-type": "def migrate(key, schema, value):\n    return 2, 'text'\n",
    "schema-out-of-range": "def migrate(key, schema, value):\n    return 70000, value\n",
    "value-too-long": "def migrate(key, schema, value):\n    return 2, bytes(600)\n",
    "not-callable": "migrate = 5\n",
    "infinite-recursion": (
        "def migrate(key, schema, value):\n    return migrate(key, schema, value)\n"
    ),
}


def _boot(p: Provisioned) -> dict[str, object]:
    r = p.device.run(["boot"], ["app"], ["report"])
    assert r.ok, r.stdout + r.stderr
    rep = r.report()
    assert rep["app_digest"] == rep["installed_digest"]
    assert f"APP {rep['installed_version']}" in r.stdout
    return rep


def _stage(p: Provisioned, migrations: str) -> None:
    v2 = example_app(2, migrations=migrations)
    env = p.board.put_file("v2.suit", sign_payload(v2, 2, p.key))
    r = p.device.run(["stage", env, p.board.put_file("v2.bundle", v2)])
    assert r.ok, r.stdout + r.stderr


def _check_reverted(p: Provisioned, rep: dict[str, object], v1_digest: object) -> None:
    assert (rep["state"], rep["installed_version"]) == ("REVERTED", 1)
    assert rep["installed_digest"] == v1_digest
    assert rep["nvm"] == {"cal": [1, "0102"]}
    records = p.board.read_journal()
    states = [rec.state for rec in records]
    assert states[-2:] == [State.REVERTING, State.REVERTED]
    assert records[-2].progress == MIGRATION_ERROR
    assert records[-1].progress == MIGRATION_ERROR  # the revert says why it happened


@pytest.mark.parametrize("case", sorted(BAD_MIGRATIONS))
def test_failing_migration_reverts(make_device: Callable[..., Provisioned], case: str) -> None:
    p = make_device()
    assert p.device.run(["nvm-put", "cal", "0102", "1"]).ok
    v1_digest = _boot(p)["installed_digest"]
    _stage(p, BAD_MIGRATIONS[case])
    rep = _boot(p)  # one boot: install, migration fails, revert, v1 runs
    _check_reverted(p, rep, v1_digest)
    rep = _boot(p)  # and the next boot is an ordinary one
    assert (rep["state"], rep["installed_version"]) == ("REVERTED", 1)
    assert rep["nvm"] == {"cal": [1, "0102"]}


@pytest.mark.parametrize(
    "body",
    [
        "    from loader.errors import Reset\n    raise Reset()\n",  # the board resets
        "    import sys\n    sys.exit(3)\n",  # the process ends (a crash, a watchdog reset)
    ],
    ids=["reset", "exit"],
)
def test_migration_that_never_finishes_is_given_up(
    make_device: Callable[..., Provisioned], body: str
) -> None:
    """A migration that ends the boot each time it runs is tried max_trial_boots times (the
    INSTALLING record counts the attempts), then the update is reverted."""
    p = make_device()
    assert p.device.run(["nvm-put", "cal", "0102", "1"]).ok
    v1_digest = _boot(p)["installed_digest"]
    _stage(p, "def migrate(key, schema, value):\n" + body)
    for _ in range(3):
        try:
            r = p.device.run(["boot"], ["app"], ["report"])
            assert not r.ok
        except SimError:  # the process died: the harness calls it a crash
            pass
        rec = p.board.current_record()
        assert rec is not None
        assert rec.state == State.INSTALLING
    rep = _boot(p)
    _check_reverted(p, rep, v1_digest)
    attempts = [rec.boot_count for rec in p.board.read_journal() if rec.state == State.INSTALLING]
    assert attempts[-3:] == [1, 2, 3]


def test_working_migration_counts_one_attempt(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    assert p.device.run(["nvm-put", "cal", "0102", "1"]).ok
    _stage(p, "def migrate(key, schema, value):\n    return 2, value + b'\\x99'\n")
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"]) == ("TRIAL", 2)
    assert rep["nvm"] == {"cal": [2, "010299"]}
