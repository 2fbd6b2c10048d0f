"""Install, trial, confirm and revert of application bundles on the simulated board."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from suture.sim.journal import Flag, State
from suture.sim.testing import Provisioned, example_app, sign_payload


def _stage(p: Provisioned, version: int, payload: bytes, *extra: str) -> None:
    env = p.board.put_file(f"v{version}.suit", sign_payload(payload, version, p.key))
    pay = p.board.put_file(f"v{version}.bundle", payload)
    r = p.device.run(["stage", env, pay, *extra])
    assert r.ok, r.stdout + r.stderr


def _boot(p: Provisioned) -> dict[str, object]:
    r = p.device.run(["boot"], ["app"], ["report"])
    assert r.ok, r.stdout + r.stderr
    rep = r.report()
    assert rep["app_digest"] == rep["installed_digest"]
    assert f"APP {rep['installed_version']}" in r.stdout
    return rep


def test_install_trial_confirm(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    v2 = example_app(2, filler=2000)
    _stage(p, 2, v2)
    assert p.board.current_record().state == State.STAGED  # type: ignore[union-attr]
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"], rep["boot_count"]) == ("TRIAL", 2, 1)
    assert rep["installed_digest"] == hashlib.sha256(v2).hexdigest()
    assert rep["backup_version"] == 1
    r = p.device.run(["confirm"], ["report"])
    assert r.ok
    assert r.report()["state"] == "CONFIRMED"
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"]) == ("CONFIRMED", 2)
    states = [rec.state for rec in p.board.read_journal()]
    assert states == [
        State.CONFIRMED, State.DOWNLOADING, State.STAGED, State.BACKUP, State.INSTALLING,
        State.TRIAL, State.TRIAL, State.CONFIRMED,
    ]


def test_unconfirmed_trial_reverts_after_max_boots(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    v1_digest = _boot(p)["installed_digest"]
    _stage(p, 2, example_app(2))
    seen = [_boot(p) for _ in range(4)]
    assert [(s["state"], s["installed_version"]) for s in seen] == [
        ("TRIAL", 2), ("TRIAL", 2), ("TRIAL", 2), ("REVERTED", 1),
    ]
    assert seen[-1]["installed_digest"] == v1_digest
    r = p.device.run(["confirm"])
    assert r.error is not None
    assert r.error[0] == "StateError"


def test_explicit_revert(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    _stage(p, 2, example_app(2))
    _boot(p)
    r = p.device.run(["revert"])
    assert r.ok
    assert Flag.REVERT_REQUESTED in p.board.current_record().flags  # type: ignore[union-attr]
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"]) == ("REVERTED", 1)


def test_second_update_on_top_of_trial_reverts_to_confirmed(
    make_device: Callable[..., Provisioned],
) -> None:
    p = make_device()
    _stage(p, 2, example_app(2))
    _boot(p)
    _stage(p, 3, example_app(3))
    assert Flag.KEEP_BACKUP in p.board.current_record().flags  # type: ignore[union-attr]
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"], rep["backup_version"]) == ("TRIAL", 3, 1)
    assert p.device.run(["revert"]).ok
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"]) == ("REVERTED", 1)


def test_staged_without_install_request_waits(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    _stage(p, 2, example_app(2), "noinstall")
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"]) == ("STAGED", 1)
    r = p.device.run(["boot"], ["app"])
    assert r.ok


def test_nvm_migrates_and_comes_back_on_revert(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    assert p.device.run(["nvm-put", "cal", "0102", "1"], ["nvm-put", "gone", "ff", "1"]).ok
    mig = (
        "def migrate(key, schema, value):\n"
        "    if key == b'gone':\n        return None\n"
        "    return 2, value + b'\\x99'\n"
    )
    _stage(p, 2, example_app(2, migrations=mig))
    rep = _boot(p)
    assert rep["installed_version"] == 2
    assert rep["nvm"] == {"cal": [2, "010299"]}
    assert p.device.run(["nvm-put", "cal", "77", "2"]).ok
    assert p.device.run(["revert"]).ok
    rep = _boot(p)
    assert rep["installed_version"] == 1
    assert rep["nvm"] == {"cal": [1, "0102"], "gone": [1, "ff"]}


def test_kept_record_written_in_a_trial_survives_its_revert(
    make_device: Callable[..., Provisioned],
) -> None:
    p = make_device()
    assert p.device.run(["nvm-put", "cal", "0102", "1"], ["nvm-keep", "seq", "07", "1"]).ok
    _stage(p, 2, example_app(2))
    _boot(p)
    r = p.device.run(["nvm-keep", "seq", "09", "1"], ["nvm-put", "cal", "77", "1"])
    assert r.ok, r.stdout + r.stderr
    assert p.device.run(["revert"]).ok
    rep = _boot(p)
    assert rep["installed_version"] == 1
    # The kept record carries the trial's value; the ordinary one comes back as it was.
    assert rep["nvm"] == {"cal": [1, "0102"], "seq": [1, "09"]}
    rep = _boot(p)  # a second boot after the revert changes nothing
    assert rep["nvm"] == {"cal": [1, "0102"], "seq": [1, "09"]}


def test_kept_record_survives_an_update_that_supersedes_the_trial(
    make_device: Callable[..., Provisioned],
) -> None:
    p = make_device()
    assert p.device.run(["nvm-keep", "seq", "07", "1"], ["nvm-put", "cal", "01", "1"]).ok
    _stage(p, 2, example_app(2))
    _boot(p)
    assert p.device.run(["nvm-keep", "seq", "0b", "1"], ["nvm-put", "cal", "02", "1"]).ok
    _stage(p, 3, example_app(3))  # staged on top of the unconfirmed trial of 2
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"]) == ("TRIAL", 3)
    assert rep["nvm"] == {"cal": [1, "01"], "seq": [1, "0b"]}
    assert p.device.run(["revert"]).ok
    rep = _boot(p)
    assert rep["installed_version"] == 1
    assert rep["nvm"] == {"cal": [1, "01"], "seq": [1, "0b"]}


def test_migrated_copy_of_a_kept_record_is_not_carried_back(
    make_device: Callable[..., Provisioned],
) -> None:
    """Only what the trial's application wrote is carried: a value a migration rewrote (here to
    schema 2) stays in the trial's bank, and the older version gets its own value back."""
    p = make_device()
    assert p.device.run(["nvm-keep", "seq", "07", "1"]).ok
    mig = "def migrate(key, schema, value):\n    return 2, value + b'\\x99'\n"
    _stage(p, 2, example_app(2, migrations=mig))
    rep = _boot(p)
    assert rep["nvm"] == {"seq": [2, "0799"]}
    assert p.device.run(["revert"]).ok
    rep = _boot(p)
    assert rep["installed_version"] == 1
    assert rep["nvm"] == {"seq": [1, "07"]}


def test_nvm_survives_confirmed_update(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    assert p.device.run(["nvm-put", "serial", "abcd", "1"]).ok
    _stage(p, 2, example_app(2))
    _boot(p)
    assert p.device.run(["confirm"]).ok
    assert p.device.run(["nvm-put", "count", "01", "1"]).ok
    rep = _boot(p)
    assert rep["nvm"] == {"serial": [1, "abcd"], "count": [1, "01"]}
    assert rep["nvm_bank_version"] == 2


def test_application_confirms_itself_through_the_api(
    make_device: Callable[..., Provisioned],
) -> None:
    from suture.bundle import build_bundle

    app = build_bundle(
        {
            "main.py": (
                b"from loader import api\n\n"
                b"def main():\n"
                b"    print('APP', 2)\n"
                b"    if api.status().name() == 'TRIAL':\n"
                b"        api.nvm().put('health', b'ok', 1)\n"
                b"        api.confirm()\n"
            )
        }
    )
    p = make_device()
    _stage(p, 2, app)
    rep = _boot(p)  # boot (first trial boot), run the application, then report
    assert (rep["state"], rep["installed_version"]) == ("CONFIRMED", 2)
    assert rep["nvm"] == {"health": [1, "6f6b"]}
