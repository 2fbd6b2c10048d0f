"""Power-cut sweeps: every path is cut after each flash operation, clean and torn, then the
device restarts. After any cut it must boot an application whose digest matches a signed
manifest (old or new), keep a consistent journal and its confirmed NVM data, and the update must
then complete or revert cleanly.

Every sweep also runs the hard kinds of cut (suture.sim.sweep: an erase that leaves the
sector's head un-erased, weak bytes that read back as either value); CI gives each operation
one of them in turn, ``--full-sweep`` all four. The sweeps with DOUBLE also cut the recovery
boot: in CI 8 first cuts spread over the path, each followed by 12 cuts spread over its
recovery boot (the kinds in turn); ``--full-sweep`` (or ``python -m bench powercut``) every
first cut and every operation of its recovery."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from suture.sim.device import PowerCut, SimBoard, SimDevice
from suture.sim.sweep import SweepReport, full_sweeps, sweep
from suture.sim.testing import Provisioned, example_app, sign_payload

pytestmark = [pytest.mark.powercut, pytest.mark.slow]

TORN = 32  # bytes of the cut operation that reach the flash: tears records and pages
DOUBLE = (8, 12)  # CI sample of double cuts: first cuts x cuts of each recovery boot
RESTING = {"TRIAL", "CONFIRMED", "REVERTED", "FAILED", "STAGED", "DOWNLOADING", "IDLE"}
MIGRATION = (
    "def migrate(key, schema, value):\n"
    "    if key == b'gone':\n        return None\n"
    "    return 2, value + b'\\x99'\n"
)
NVM_V1 = {"cal": [1, "0102"], "gone": [1, "ff"]}
NVM_V2 = {"cal": [2, "010299"]}


class Expect:
    """What may be installed after a cut: version -> (bundle digest, NVM contents)."""

    def __init__(self, apps: dict[int, tuple[bytes, dict[str, list[object]]]]) -> None:
        self.apps = {v: (hashlib.sha256(b).hexdigest(), nvm) for v, (b, nvm) in apps.items()}

    def boot(self, board: SimBoard, dev: SimDevice, cut: PowerCut) -> dict[str, object]:
        r = dev.run(["boot"], ["app"], ["report"])
        assert r.ok, f"{cut}: recovery failed\n{r.stdout}\n{r.stderr}"
        rep = r.report()
        version = rep["installed_version"]
        assert isinstance(version, int)
        assert version in self.apps, f"{cut}: unexpected version {version}"
        digest, nvm = self.apps[version]
        assert rep["installed_digest"] == digest, f"{cut}: installed digest not a signed one"
        assert rep["app_digest"] == digest, f"{cut}: installed files differ from the digest"
        assert f"APP {version}\n" in r.stdout, f"{cut}: the application did not run"
        assert rep["state"] in RESTING, f"{cut}: left in {rep['state']}"
        assert rep["nvm"] == nvm, f"{cut}: NVM {rep['nvm']} != {nvm}"
        records = board.read_journal()
        seqs = [rec.seq for rec in records]
        assert len(set(seqs)) == len(seqs), f"{cut}: duplicate journal seq"
        assert records[-1].state.name == rep["state"]
        return rep


def _stage(p: Provisioned, version: int, payload: bytes, *extra: str) -> list[str]:
    env = p.board.put_file(f"v{version}.suit", sign_payload(payload, version, p.key))
    pay = p.board.put_file(f"v{version}.bundle", payload)
    return ["stage", env, pay, *extra]


def _report(name: str, rep: SweepReport, figures: Callable[[str, object], None]) -> None:
    figures(f"{name} cut points (clean + torn)", rep.cut_points + rep.torn_points)
    figures(f"{name} hard cuts (torn-tail, weak)", rep.hard_points)
    if rep.double_firsts:
        figures(f"{name} double cuts", f"{rep.double_cuts} after {rep.double_firsts} first cuts")
    figures(f"{name} kinds", dict(rep.kinds))
    figures(f"{name} outcomes", dict(rep.outcomes))
    assert rep.cut_points == rep.total_ops
    assert rep.hard_points == rep.total_ops * (4 if full_sweeps() else 1)
    assert rep.total_ops > 0


@pytest.fixture
def v1_with_nvm(make_device: Callable[..., Provisioned]) -> Provisioned:
    p = make_device(app=V1)
    assert p.device.run(["nvm-put", "cal", "0102", "1"], ["nvm-put", "gone", "ff", "1"]).ok
    return p


V1 = example_app(1, filler=5000)
V2 = example_app(2, filler=8000, migrations=MIGRATION)
V3 = example_app(3, filler=5000)
V2_SMALL = example_app(2, filler=300, migrations=MIGRATION)


def test_powercut_install(v1_with_nvm: Provisioned, figures: Callable[[str, object], None]) -> None:
    p = v1_with_nvm
    assert p.device.run(_stage(p, 2, V2)).ok
    exp = Expect({1: (V1, NVM_V1), 2: (V2, NVM_V2)})

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        if rep["state"] == "TRIAL":
            r = dev.run(["confirm"], ["report"])
            assert r.ok, r.stdout
            assert r.report()["state"] == "CONFIRMED"
        return f"{rep['state']} v{rep['installed_version']}"

    rep = sweep(p.device, [["boot"]], check, torn_bytes=TORN, hard=True, double=DOUBLE, seed=1)
    _report("install with NVM migration", rep, figures)
    assert rep.outcomes["TRIAL v2"] == rep.runs
    assert rep.double_cuts >= 60


FILL_JOURNAL = b"""
j = loader.journal
while j._next < j.slots:
    j.append(j.current.copy())
out["slots"] = j.slots
"""


def test_powercut_journal_sector_switch(
    v1_with_nvm: Provisioned, figures: Callable[[str, object], None]
) -> None:
    """The active journal sector is full: the install's first record erases the other one."""
    p = v1_with_nvm
    assert p.device.run(_stage(p, 2, V2_SMALL)).ok
    assert p.device.run(["exec", p.board.put_file("fill.py", FILL_JOURNAL)]).ok
    before = p.board.read_journal()
    assert {rec.sector for rec in before} == {0}
    exp = Expect({1: (V1, NVM_V1), 2: (V2_SMALL, NVM_V2)})

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        assert rep["state"] == "TRIAL"
        return f"TRIAL v{rep['installed_version']}"

    rep = sweep(p.device, [["boot"]], check, torn_bytes=TORN, hard=True, double=DOUBLE, seed=2)
    _report("journal sector switch", rep, figures)
    assert {rec.sector for rec in p.board.read_journal()} == {0, 1}


def test_powercut_stage(v1_with_nvm: Provisioned, figures: Callable[[str, object], None]) -> None:
    p = v1_with_nvm
    exp = Expect({1: (V1, NVM_V1), 2: (V2, NVM_V2)})

    stage = _stage(p, 2, V2)

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        outcome = f"{rep['state']} v{rep['installed_version']}"
        if rep["state"] != "STAGED":  # the agent stages again; the update then completes
            assert dev.run(stage).ok, f"{cut}: staging again failed"
        done = exp.boot(board, dev, cut)
        assert (done["state"], done["installed_version"]) == ("TRIAL", 2), cut
        return outcome

    rep = sweep(p.device, [stage], check, torn_bytes=TORN, hard=True, seed=3)
    _report("stage", rep, figures)


def test_powercut_confirm(v1_with_nvm: Provisioned, figures: Callable[[str, object], None]) -> None:
    p = v1_with_nvm
    assert p.device.run(_stage(p, 2, V2)).ok
    assert p.device.run(["boot"]).ok
    exp = Expect({2: (V2, NVM_V2)})

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        assert rep["state"] in ("TRIAL", "CONFIRMED")
        if rep["state"] == "TRIAL":
            assert dev.run(["confirm"]).ok
        r = dev.run(["boot"], ["app"], ["report"])
        assert r.report()["state"] == "CONFIRMED"
        return str(rep["state"])

    rep = sweep(p.device, [["boot"], ["confirm"]], check, torn_bytes=TORN, hard=True, seed=4)
    _report("confirm", rep, figures)


def test_powercut_revert(v1_with_nvm: Provisioned, figures: Callable[[str, object], None]) -> None:
    p = v1_with_nvm
    assert p.device.run(_stage(p, 2, V2)).ok
    assert p.device.run(["boot"], ["nvm-put", "cal", "55", "2"], ["revert"]).ok
    exp = Expect({1: (V1, NVM_V1)})

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        assert rep["state"] == "REVERTED"
        return "REVERTED v1"

    rep = sweep(p.device, [["boot"]], check, torn_bytes=TORN, hard=True, double=DOUBLE, seed=5)
    _report("revert", rep, figures)


def test_powercut_revert_carries_kept_records(
    v1_with_nvm: Provisioned, figures: Callable[[str, object], None]
) -> None:
    p = v1_with_nvm
    assert p.device.run(["nvm-keep", "seq", "05", "1"]).ok
    assert p.device.run(_stage(p, 2, V2)).ok
    assert p.device.run(["boot"], ["nvm-keep", "seq", "06", "1"], ["revert"]).ok
    exp = Expect({1: (V1, {**NVM_V1, "seq": [1, "06"]})})

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        assert rep["state"] == "REVERTED"
        return "REVERTED v1, kept record carried"

    rep = sweep(p.device, [["boot"]], check, torn_bytes=TORN, hard=True, seed=6)
    _report("revert carrying a kept record", rep, figures)


def test_powercut_nvm_write(
    v1_with_nvm: Provisioned, figures: Callable[[str, object], None]
) -> None:
    p = v1_with_nvm
    new = {"cal": [1, "0a0b0c"], "gone": [1, "ff"]}

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        r = dev.run(["report"])
        assert r.ok, r.stdout
        nvm = r.report()["nvm"]
        assert nvm in (NVM_V1, new), f"{cut}: half-written NVM {nvm}"
        return "new" if nvm == new else "old"

    rep = sweep(p.device, [["nvm-put", "cal", "0a0b0c", "1"]], check, torn_bytes=TORN,
                hard=True, seed=7)
    _report("nvm write", rep, figures)


def test_powercut_nvm_compaction(
    v1_with_nvm: Provisioned, figures: Callable[[str, object], None]
) -> None:
    """Enough writes to fill a bank: the store compacts into the other bank on the way."""
    p = v1_with_nvm
    values = [bytes([i]) * 300 for i in range(1, 40)]
    action = [["nvm-fill", "log", str(v[0]), str(len(v)), "1"] for v in values]
    allowed = [None, *(v.hex() for v in values)]

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        r = dev.run(["report"])
        assert r.ok, r.stdout
        nvm = dict(r.report()["nvm"])  # type: ignore[call-overload]
        log = nvm.pop("log", None)
        assert nvm == NVM_V1, f"{cut}: confirmed records lost: {nvm}"
        assert log is None or log[1] in allowed, f"{cut}: half-written record"
        return "written" if log else "none"

    # double cuts: the write after the cut (the first value again) is itself cut
    rep = sweep(p.device, action, check, torn_bytes=TORN, hard=True, double=DOUBLE,
                recovery=[action[0]], seed=8)
    _report("nvm compaction", rep, figures)
    erases = p.board.erase_counters()
    nvm = p.board.board.regions["nvm"]
    sector = p.board.board.external.sector
    assert sum(erases[nvm.offset // sector : (nvm.offset + nvm.size) // sector]) > 2


def test_powercut_second_update_on_trial(
    v1_with_nvm: Provisioned, figures: Callable[[str, object], None]
) -> None:
    p = v1_with_nvm
    assert p.device.run(_stage(p, 2, V2)).ok
    assert p.device.run(["boot"]).ok
    assert p.device.run(_stage(p, 3, V3)).ok
    # Version 3 brings no migration: its NVM is a copy of the confirmed (version 1) data.
    exp = Expect({2: (V2, NVM_V2), 3: (V3, NVM_V1)})

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        assert rep["state"] == "TRIAL"
        # The backup still holds the confirmed version 1: a revert brings it back.
        assert rep["backup_version"] == 1
        assert dev.run(["revert"]).ok
        back = Expect({1: (V1, NVM_V1)}).boot(board, dev, cut)
        assert back["state"] == "REVERTED"
        return f"TRIAL v{rep['installed_version']}"

    rep = sweep(p.device, [["boot"]], check, torn_bytes=TORN, hard=True, seed=9)
    _report("second update on trial", rep, figures)


V2_BAD_MIGRATION = example_app(
    2, filler=8000, migrations="def migrate(key, schema, value):\n    raise ValueError('bad')\n"
)


def test_powercut_failing_migration(
    v1_with_nvm: Provisioned, figures: Callable[[str, object], None]
) -> None:
    """The new application's migration raises: install, attempt record, revert, cut anywhere,
    always end on a whole version 1 with its NVM data."""
    p = v1_with_nvm
    assert p.device.run(_stage(p, 2, V2_BAD_MIGRATION)).ok
    exp = Expect({1: (V1, NVM_V1)})

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        assert rep["state"] == "REVERTED", cut
        return "REVERTED v1"

    rep = sweep(p.device, [["boot"]], check, torn_bytes=TORN, hard=True, double=DOUBLE, seed=10)
    _report("failing migration", rep, figures)


# /app no longer matches the installed record (a tree an older loader left mixed after running
# out of space): main.py replaced and a `~new` leftover; the backup slot holds version 1.
MIX = b"""
from loader import journal as J
from loader.errors import NoSpaceError
loader._do_backup(loader.journal.current)
loader.journal.append(loader.journal.current.copy(state=J.FAILED, flags=0,
                                                  progress=NoSpaceError.code))
app = board.mount_point + '/app/'
with open(app + 'main.py', 'w') as f:
    f.write("def main():\\n    print('MIXED')\\n")
with open(app + 'data/blob.bin~new', 'wb') as f:
    f.write(bytes(3000))
"""


def test_powercut_restore_of_a_changed_app(
    v1_with_nvm: Provisioned, figures: Callable[[str, object], None]
) -> None:
    p = v1_with_nvm
    assert p.device.run(_stage(p, 2, V2, "noinstall")).ok
    assert p.device.run(["exec", p.board.put_file("mix.py", MIX)]).ok
    exp = Expect({1: (V1, NVM_V1)})

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = exp.boot(board, dev, cut)
        assert rep["state"] == "FAILED", cut
        return "v1 restored"

    rep = sweep(p.device, [["boot"]], check, torn_bytes=TORN, hard=True, double=DOUBLE, seed=11)
    _report("restore of a changed /app", rep, figures)
