"""A seeded fault campaign against the loader on the simulated board.

Each case draws, from its own seed, a device (first application of random size, NVM records,
journal filled to a random slot so a sector switch lands anywhere), then a random sequence of
steps: signed updates of random bundles (some with an NVM migration, good or raising), bad
inputs (a tampered envelope, another key, a release for another component, a payload that is
not the manifest's, a rolled-back sequence number), boots, confirms, reverts, NVM writes.
Any step may be cut at a random flash operation (random timing) with a random kind of cut:
clean, torn at a random byte of the operation, from its head or its tail (a partial erase that
leaves the sector's tail or its head un-erased), with random bytes left weak that read back as
either value (each run draws a new SUTURE_SEED).

After the steps, the device boots cleanly twice; the invariants, checked after every boot:
the process ends normally (never a crash), the running application is the installed record's
bundle and its digest is one the campaign signed (never an unsigned or mixed tree), the
journal's state is one an application may run in, a state other than a trial reads the same
at the next boot (no record that flickers), and a new signed update still installs and
confirms (never bricked).

CI runs CASES cases from SEED (printed with the figures); ``SUTURE_CAMPAIGN_SEED`` and
``SUTURE_CAMPAIGN_CASES`` pick others, so any finding replays from its seed alone.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from suture import keys
from suture.bundle import build_bundle
from suture.keys import PrivateKey
from suture.sim.board import small_geometry
from suture.sim.device import PowerCut, RunResult, SimError
from suture.sim.testing import Provisioned, provision, sign_payload

pytestmark = [pytest.mark.powercut, pytest.mark.slow]

SEED = int(os.environ.get("SUTURE_CAMPAIGN_SEED", "20261123"))
CASES = int(os.environ.get("SUTURE_CAMPAIGN_CASES", "64"))
RESTING = {"TRIAL", "CONFIRMED", "REVERTED", "FAILED", "STAGED", "DOWNLOADING", "IDLE"}
GOOD_MIGRATION = "def migrate(key, schema, value):\n    return schema + 1, value\n"
BAD_MIGRATION = "def migrate(key, schema, value):\n    raise ValueError('bad')\n"
FILL_JOURNAL = """
j = loader.journal
n = int(args[0])
while n > 0 and j._next < j.slots:
    j.append(j.current.copy())
    n -= 1
"""


def random_app(rng: random.Random, version: int) -> bytes:
    """A bundle printing ``APP <version>``, with random data files and maybe a migration."""
    files = {"main.py": f"def main():\n    print('APP', {version})\n".encode()}
    for i in range(rng.randrange(0, 4)):
        size = rng.choice([0, 1, 100, 255, 256, 257, 1000, 3000, 6000])
        files[f"d{i % 2}/f{i}.bin"] = rng.randbytes(size)
    roll = rng.random()
    if roll < 0.15:
        files["nvm_migrations.py"] = GOOD_MIGRATION.encode()
    elif roll < 0.22:
        files["nvm_migrations.py"] = BAD_MIGRATION.encode()
    return build_bundle(files)


def random_cut(rng: random.Random, sector: int, ops: int) -> PowerCut:
    """A cut at a random one of a step's ``ops`` operations, of a random kind."""
    after = rng.randrange(max(ops, 1))
    kind = rng.randrange(6)
    torn = None if kind == 0 else rng.choice([1, 16, 63, 64, 200, 1024, sector // 2, sector - 1])
    weak = rng.choice([1, 4, 8, 64]) if kind >= 4 else 0
    return PowerCut(after, torn, from_tail=kind in (3, 5), weak_bytes=weak,
                    seed=rng.randrange(1, 2**31))


@dataclass
class Tally:
    """What the campaign ran and saw."""

    cases: int = 0
    runs: int = 0
    cuts: int = 0
    cut_kinds: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)
    end_states: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)


class Case:
    """One campaign case: a device, its signed bundles, and the steps run on it."""

    def __init__(self, seed: int, workdir: Path, lib: Path, key: PrivateKey, tally: Tally) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.tally = tally
        self.key = key
        v1 = random_app(self.rng, 1)
        self.p: Provisioned = provision(workdir, small_geometry(), key, app=v1, lib=lib)
        self.signed = {hashlib.sha256(v1).hexdigest()}
        self.version = 1
        self.sector = self.p.board.board.external.sector
        self.log: list[str] = []
        self.cutting = False  # the step being run is to be cut

    def run(self, name: str, *cmds: list[str]) -> RunResult:
        self.tally.runs += 1
        seed = self.rng.randrange(1, 2**31)
        cut: PowerCut | None = None
        if self.cutting:  # random timing: a random one of its operations
            snap = self.p.board.snapshot()
            ops = self.p.device.run(*cmds, seed=seed).ops_count
            self.p.board.restore(snap)
            if ops:
                cut = random_cut(self.rng, self.sector, ops)
        self.log.append(f"{name} cut={cut} seed={seed}")
        r = self.p.device.run(*cmds, power_cut=cut, seed=seed)
        self.cutting = False
        if r.power_cut_happened:
            self.tally.cuts += 1
            self.tally.cut_kinds[cut.kind() if cut else "?"] += 1
        elif r.exit_code not in (0, 2):
            raise AssertionError(f"{name}: exit {r.exit_code}\n{r.stdout}{r.stderr}")
        return r

    def sign(self, payload: bytes, seq: int, component: str = "app") -> str:
        env = sign_payload(payload, seq, self.key, component=component)
        return self.p.board.put_file(f"s{self.tally.runs}.suit", env)

    def step(self) -> None:
        rng = self.rng
        self.cutting = rng.random() < 0.6
        what = rng.choice(["update", "update", "update", "bad-input", "boot", "boot",
                           "confirm", "revert", "nvm", "journal"])
        self.tally.steps[what] += 1
        if what == "update":
            self.version += rng.choice([1, 1, 2])
            app = random_app(rng, self.version)
            self.signed.add(hashlib.sha256(app).hexdigest())
            env = self.sign(app, self.version)
            pay = self.p.board.put_file(f"p{self.tally.runs}.bundle", app)
            self.run("stage", ["stage", env, pay])
        elif what == "bad-input":
            app = random_app(rng, self.version + 1)
            bad = rng.randrange(5)
            pay = self.p.board.put_file(f"b{self.tally.runs}.bundle", app)
            if bad == 0:  # a flipped byte in the envelope
                raw = bytearray(sign_payload(app, self.version + 1, self.key))
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
                env = self.p.board.put_file(f"t{self.tally.runs}.suit", bytes(raw))
                self.signed.add(hashlib.sha256(app).hexdigest())  # it may still verify
            elif bad == 1:  # another vendor key
                other = keys.generate_private_key("ES256")
                env = self.p.board.put_file(
                    f"k{self.tally.runs}.suit", sign_payload(app, self.version + 1, other))
            elif bad == 2:
                env = self.sign(app, self.version + 1, component=rng.choice(["loader", "cfg"]))
            elif bad == 3:  # the payload is not the manifest's (another bundle, surely)
                other = build_bundle({"main.py": b"def main():\n    pass\n",
                                      "other.bin": rng.randbytes(64)})
                env = self.sign(other, self.version + 1)
            else:  # rolled back below the highest release seen; it may still be above the
                # installed one (after a revert): then it is a valid update
                env = self.sign(app, rng.randrange(0, self.version + 1))
                self.signed.add(hashlib.sha256(app).hexdigest())
            r = self.run("bad input", ["stage", env, pay])
            if r.exit_code == 0 and bad in (1, 2, 3):
                raise AssertionError(f"bad input {bad} accepted:\n{r.stdout}")
        elif what == "boot":
            self.run("boot", ["boot"], ["app"])
        elif what == "confirm":
            self.run("confirm", ["confirm"])
        elif what == "revert":
            self.run("revert", ["revert"])
        elif what == "nvm":
            name = f"k{rng.randrange(4)}"
            if rng.random() < 0.5:
                self.run("nvm", ["nvm-put", name, rng.randbytes(rng.randrange(1, 120)).hex(), "1"])
            else:
                count = str(rng.randrange(1, 500))
                self.run("nvm", ["nvm-fill", name, str(rng.randrange(256)), count, "1"])
        else:
            script = self.p.board.put_file("fill.py", FILL_JOURNAL.encode())
            self.run("journal", ["exec", script, str(rng.randrange(1, 70))])

    def check_boot(self) -> dict[str, object]:
        r = self.run("check boot", ["boot"], ["app"], ["report"])
        assert r.ok, f"clean boot failed (exit {r.exit_code}):\n{r.stdout}{r.stderr}"
        rep = r.report()
        state = rep["state"]
        assert state in RESTING, f"left in {state}"
        version = rep["installed_version"]
        assert rep["app_digest"] == rep["installed_digest"], "/app is not the installed bundle"
        assert rep["installed_digest"] in self.signed, "the running application is unsigned"
        assert f"APP {version}\n" in r.stdout, "the application did not run"
        return rep

    def finish(self) -> str:
        first = self.check_boot()
        second = self.check_boot()
        if first["state"] != "TRIAL":
            assert (second["state"], second["seq"]) == (first["state"], first["seq"]), (
                f"the journal reads {first['state']} seq {first['seq']}, then "
                f"{second['state']} seq {second['seq']} at the next boot")
        end = f"{second['state']}"
        # never bricked: a new signed update still installs and confirms
        self.version += 1
        app = random_app(random.Random(self.seed ^ 0x5A5A), self.version)
        app = build_bundle({"main.py": f"def main():\n    print('APP', {self.version})\n".encode(),
                            "x.bin": app[:500]})
        self.signed.add(hashlib.sha256(app).hexdigest())
        env = self.sign(app, self.version)
        pay = self.p.board.put_file("last.bundle", app)
        r = self.run("final stage", ["stage", env, pay])
        if not r.ok and r.error and r.error[0] == "StateError":  # a trial in the way: settle it
            self.run("final confirm", ["confirm"])
            r = self.run("final stage", ["stage", env, pay])
        assert r.ok, f"a new signed update is refused:\n{r.stdout}"
        rep = self.check_boot()
        assert (rep["state"], rep["installed_version"]) == ("TRIAL", self.version), rep
        assert self.run("final confirm", ["confirm"]).ok
        return end


def run_case(seed: int, workdir: Path, lib: Path, key: PrivateKey, tally: Tally,
             steps: int = 10) -> None:
    """Run one case; a broken invariant or a crash becomes a finding (with its seed)."""
    case = None
    try:
        case = Case(seed, workdir, lib, key, tally)
        fill = case.p.board.put_file("fill.py", FILL_JOURNAL.encode())
        case.run("journal", ["exec", fill, str(case.rng.randrange(0, 64))])
        for _ in range(steps):
            case.step()
        tally.end_states[case.finish()] += 1
    except (AssertionError, SimError) as e:
        log = "\n  ".join(case.log[-12:]) if case else ""
        tally.findings.append(f"seed {seed}: {type(e).__name__}: {e}\n  {log}")
    tally.cases += 1


def test_fault_campaign(
    tmp_path: Path, loader_lib: Path, signing_key: PrivateKey,
    figures: Callable[[str, object], None],
) -> None:
    tally = Tally()
    for n in range(CASES):
        run_case(SEED + n, tmp_path / f"case{n}", loader_lib, signing_key, tally)
    figures("campaign seed", SEED)
    figures("campaign cases", tally.cases)
    figures("campaign device runs", tally.runs)
    figures("campaign power cuts", f"{tally.cuts} {dict(tally.cut_kinds)}")
    figures("campaign steps", dict(tally.steps))
    figures("campaign end states", dict(tally.end_states))
    figures("campaign findings", len(tally.findings))
    assert tally.cases == CASES
    assert tally.cuts > CASES  # the faults really happened
    for finding in tally.findings:
        print(finding)
    assert not tally.findings, "\n\n".join(tally.findings[:5])


def test_campaign_checks_can_fail(
    tmp_path: Path, loader_lib: Path, signing_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invariants are live: a case that forgets which digests were signed finds the
    running application unsigned, and run_case reports it as a finding with its seed."""
    tally = Tally()
    case = Case(SEED, tmp_path / "forget", loader_lib, signing_key, tally)
    case.signed.clear()
    with pytest.raises(AssertionError, match="unsigned"):
        case.check_boot()
    check = Case.check_boot

    def forgetful(self: Case) -> dict[str, object]:
        self.signed.clear()
        return check(self)

    monkeypatch.setattr(Case, "check_boot", forgetful)
    run_case(SEED, tmp_path / "case", loader_lib, signing_key, tally, steps=2)
    assert tally.cases == 1
    assert len(tally.findings) == 1
    assert f"seed {SEED}: AssertionError: the running application is unsigned" in tally.findings[0]
