"""Trust-anchor rotation on the simulated device (docs/formats/trust-store.md): a device trusting
vendor key A accepts a rotation to B signed by A, then stages releases signed by B and refuses
A's; a rotation not signed by a current anchor and a rollback of the trust store are refused;
the new anchors survive a revert and an application's migration; a power cut at every flash
operation of applying a rotation leaves the old anchors or the new ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from suture import keys
from suture.formats.trust_store import TrustUpdate, sec1_point, sign_trust_update
from suture.keys import PrivateKey
from suture.sim.device import PowerCut, SimBoard, SimDevice
from suture.sim.sweep import SweepReport, full_sweeps, sweep
from suture.sim.testing import Provisioned, example_app, sign_payload

TORN = 32
FREE = b'n = loader.nvm()\nout["free"] = n.bank.size - n.bank.end\n'


@pytest.fixture(scope="module")
def key_b() -> PrivateKey:
    return keys.generate_private_key("ES256")


@pytest.fixture(scope="module")
def key_c() -> PrivateKey:
    return keys.generate_private_key("ES256")


def _trust(p: Provisioned, name: str, doc: bytes) -> list[str]:
    return ["trust", p.board.put_file(name, doc)]


def _stage(p: Provisioned, version: int, key: PrivateKey, *extra: str) -> list[str]:
    payload = example_app(version)
    env = p.board.put_file(f"v{version}-{keys.key_id(key.public_key()).hex()[:8]}.suit",
                           sign_payload(payload, version, key))
    pay = p.board.put_file(f"v{version}.bundle", payload)
    return ["stage", env, pay, *extra]


def _vendor_record(p: Provisioned) -> list[object] | None:
    r = p.device.run(["report"])
    assert r.ok, r.stdout
    nvm = r.report()["nvm"]
    assert isinstance(nvm, dict)
    return nvm.get("trust.vendor")


def _error(p: Provisioned, *cmds: list[str]) -> str:
    r = p.device.run(*cmds)
    assert not r.ok, r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith("SUTURE-ERROR "))
    return line.split()[1]


def _rotation(old: PrivateKey, version: int, *new: PrivateKey) -> bytes:
    return sign_trust_update(TrustUpdate("vendor", version, tuple(sec1_point(k) for k in new)),
                             old)


def test_rotation_to_b_then_b_signs_and_a_is_refused(make_device: Callable[..., Provisioned],
                                                      key_b: PrivateKey) -> None:
    p = make_device()
    key_a = p.key
    assert _vendor_record(p) is None  # the factory keys of board.json: A
    r = p.device.run(_trust(p, "rot1.cose", _rotation(key_a, 1, key_b)))
    assert r.ok, r.stdout
    assert r.result["trust"] == ["vendor", 1]
    assert _vendor_record(p) == [2, "00000001" + sec1_point(key_b).hex()]
    # A is revoked: its release is refused before anything is written
    assert _error(p, _stage(p, 2, key_a)) == "SignatureError"
    assert p.board.current_record().state.name == "CONFIRMED"  # type: ignore[union-attr]
    assert p.device.run(_stage(p, 2, key_b)).ok
    r = p.device.run(["boot"], ["app"], ["confirm"], ["report"])
    assert r.ok, r.stdout
    rep = r.report()
    assert rep["installed_version"] == 2
    assert rep["state"] == "CONFIRMED"
    assert "APP 2\n" in r.stdout
    # the anchors came through the install (a migration copies them) and still refuse A
    assert _vendor_record(p) == [2, "00000001" + sec1_point(key_b).hex()]
    assert _error(p, _stage(p, 3, key_a)) == "SignatureError"


def test_rotation_not_signed_by_a_current_anchor_is_refused(
        make_device: Callable[..., Provisioned], key_b: PrivateKey, key_c: PrivateKey) -> None:
    p = make_device()
    assert _error(p, _trust(p, "rot-c.cose", _rotation(key_c, 1, key_b))) == "SignatureError"
    assert _error(p, _trust(p, "rot-c2.cose", _rotation(key_c, 1, key_c))) == "SignatureError"
    assert _vendor_record(p) is None
    assert _error(p, _stage(p, 2, key_c)) == "SignatureError"
    assert p.device.run(_stage(p, 2, p.key)).ok  # A still trusted


def test_a_trust_store_rollback_is_refused(make_device: Callable[..., Provisioned],
                                           key_b: PrivateKey, key_c: PrivateKey) -> None:
    p = make_device()
    key_a = p.key
    v2 = _rotation(key_a, 2, key_b)
    assert p.device.run(_trust(p, "v2.cose", v2)).ok
    after = p.board.snapshot()
    # an older version, even signed by the current anchor: refused
    assert _error(p, _trust(p, "v1.cose", _rotation(key_b, 1, key_a))) == "TrustRollbackError"
    # the same version with other keys: refused
    assert _error(p, _trust(p, "v2c.cose", _rotation(key_b, 2, key_c))) == "TrustRollbackError"
    # the older rotation A signed, replayed: A is no anchor any more
    assert _error(p, _trust(p, "v1a.cose", _rotation(key_a, 1, key_a))) == "SignatureError"
    assert _vendor_record(p) == [2, "00000002" + sec1_point(key_b).hex()]
    # the update in place, met again: accepted, nothing written
    r = p.device.run(_trust(p, "v2.cose", v2))
    assert r.ok, r.stdout
    assert r.result["trust"] == ["vendor", 2]
    assert r.ops_count == 0
    assert p.board.snapshot() == after
    # a newer version signed by B moves on (to B and C)
    assert p.device.run(_trust(p, "v3.cose", _rotation(key_b, 3, key_b, key_c))).ok
    assert _vendor_record(p) == [2, "00000003" + sec1_point(key_b).hex()
                                 + sec1_point(key_c).hex()]
    assert p.device.run(_stage(p, 2, key_c)).ok


def test_provisioned_nvm_anchors_are_authoritative(make_device: Callable[..., Provisioned],
                                                   key_b: PrivateKey) -> None:
    """trust.vendor written at provisioning (schema 1) is what the loader trusts, not the
    board configuration's keys."""
    p = make_device()
    assert p.device.run(["nvm-put", "trust.vendor", sec1_point(key_b).hex(), "1"]).ok
    assert _error(p, _stage(p, 2, p.key)) == "SignatureError"
    assert p.device.run(_stage(p, 2, key_b)).ok


def test_a_rotation_in_a_trial_survives_its_revert_and_migrations_never_see_it(
        make_device: Callable[..., Provisioned], key_b: PrivateKey) -> None:
    p = make_device()
    key_a = p.key
    drop_all = "def migrate(key, schema, value):\n    return None\n"
    payload = example_app(2, migrations=drop_all)
    env = p.board.put_file("v2.suit", sign_payload(payload, 2, key_a))
    pay = p.board.put_file("v2.bundle", payload)
    assert p.device.run(["stage", env, pay]).ok
    r = p.device.run(["boot"], ["report"])
    assert r.ok, r.stdout
    assert r.report()["state"] == "TRIAL"
    r = p.device.run(["boot"], _trust(p, "rot.cose", _rotation(key_a, 1, key_b)), ["revert"])
    assert r.ok, r.stdout
    r = p.device.run(["boot"], ["report"])
    assert r.ok, r.stdout
    rep = r.report()
    assert rep["state"] == "REVERTED"
    assert rep["installed_version"] == 1
    assert _vendor_record(p) == [2, "00000001" + sec1_point(key_b).hex()]
    assert _error(p, _stage(p, 3, key_a)) == "SignatureError"
    # an install whose migration drops every record keeps the anchors
    assert p.device.run(_stage(p, 3, key_b)).ok
    r = p.device.run(["boot"], ["report"])
    assert r.ok, r.stdout
    assert r.report()["installed_version"] == 3
    assert _vendor_record(p) == [2, "00000001" + sec1_point(key_b).hex()]


def _sweep_report(name: str, rep: SweepReport, figures: Callable[[str, object], None]) -> None:
    figures(f"{name} cut points (clean + torn)", rep.cut_points + rep.torn_points)
    figures(f"{name} hard cuts", rep.hard_points)
    figures(f"{name} outcomes", dict(rep.outcomes))
    assert rep.total_ops > 0
    assert rep.cut_points == rep.total_ops
    assert rep.torn_points == rep.total_ops
    assert rep.hard_points == rep.total_ops * (4 if full_sweeps() else 1)


def _anchor_check(p: Provisioned, key_a: PrivateKey, key_b: PrivateKey, doc: str,
                  new_value: str, others: dict[str, list[object]]
                  ) -> Callable[[SimBoard, SimDevice, PowerCut], str]:
    env_a = p.board.put_file("pc-a.suit", sign_payload(example_app(2), 2, key_a))
    env_b = p.board.put_file("pc-b.suit", sign_payload(example_app(2), 2, key_b))
    pay = p.board.put_file("pc.bundle", example_app(2))

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        r = dev.run(["boot"], ["report"])
        assert r.ok, f"{cut}: {r.stdout}"
        nvm = dict(r.report()["nvm"])  # type: ignore[call-overload]
        record = nvm.pop("trust.vendor", None)
        for k, v in others.items():
            assert nvm.get(k) == v, f"{cut}: record {k} lost: {nvm.get(k)}"
        assert record in (None, [2, new_value]), f"{cut}: half-written anchors {record}"
        old = record is None
        snap = board.snapshot()
        # the anchors in force are whole: exactly one of A and B verifies
        ra = dev.run(["stage", env_a, pay, "noinstall"])
        board.restore(snap)
        rb = dev.run(["stage", env_b, pay, "noinstall"])
        board.restore(snap)
        assert (ra.ok, rb.ok) == (old, not old), f"{cut}: A {ra.ok}, B {rb.ok}"
        # the rotation is applied again (the agent does so at its next poll)
        r = dev.run(["trust", doc])
        assert r.ok, f"{cut}: {r.stdout}"
        r = dev.run(["report"])
        assert r.ok, f"{cut}: {r.stdout}"
        assert r.report()["nvm"]["trust.vendor"] == [2, new_value]  # type: ignore[index]
        return "old" if old else "new"

    return check


def test_powercut_rotation(make_device: Callable[..., Provisioned], key_b: PrivateKey,
                           figures: Callable[[str, object], None]) -> None:
    p = make_device()
    assert p.device.run(["nvm-put", "cal", "0102", "1"]).ok
    doc = p.board.put_file("rot.cose", _rotation(p.key, 1, key_b))
    new_value = "00000001" + sec1_point(key_b).hex()
    check = _anchor_check(p, p.key, key_b, doc, new_value, {"cal": [1, "0102"]})
    rep = sweep(p.device, [["trust", doc]], check, torn_bytes=TORN, hard=True, seed=11)
    _sweep_report("trust rotation", rep, figures)
    # the record is the update's last (here its only) program: a cut of it leaves the old one
    assert rep.outcomes["old"] == rep.runs


def test_powercut_rotation_that_compacts(make_device: Callable[..., Provisioned],
                                         key_b: PrivateKey,
                                         figures: Callable[[str, object], None]) -> None:
    """The bank is so full that the rotation's put compacts the store into the other bank:
    every erase and program of the compaction is cut too."""
    p = make_device()
    assert p.device.run(["nvm-put", "cal", "0102", "1"]).ok
    doc = p.board.put_file("rot.cose", _rotation(p.key, 1, key_b))
    nvm = p.board.board.regions["nvm"]
    sector = p.board.board.external.sector
    first, last = nvm.offset // sector, (nvm.offset + nvm.size) // sector

    def erases() -> int:
        return sum(p.board.erase_counters()[first:last])

    script = p.board.put_file("free.py", FREE)

    def free() -> int:
        r = p.device.run(["exec", script])
        assert r.ok, r.stdout
        value = r.result["free"]
        assert isinstance(value, int)
        return value

    n = 0
    while free() > 600:
        n += 1
        assert p.device.run(["nvm-fill", f"f{n % 4}", "7", "500", "1"]).ok
    # leave 48..63 bytes: the rotation's record (96) does not fit, the put compacts
    room = free()
    assert p.device.run(["nvm-fill", "last", "9", str(room - 64), "1"]).ok
    assert 48 <= free() < 64
    before = erases()
    snap = p.board.snapshot()
    assert p.device.run(["trust", doc]).ok
    assert erases() > before
    p.board.restore(snap)
    new_value = "00000001" + sec1_point(key_b).hex()
    check = _anchor_check(p, p.key, key_b, doc, new_value, {"cal": [1, "0102"]})
    rep = sweep(p.device, [["trust", doc]], check, torn_bytes=TORN, hard=True, seed=12)
    _sweep_report("trust rotation with compaction", rep, figures)
    assert rep.total_ops > 3
    assert rep.outcomes["old"] == rep.runs
