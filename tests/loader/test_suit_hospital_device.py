"""The loader's check of the hospital's manifest over the vendor's (loader/suit_hospital.py), on
the MicroPython unix port, with envelopes the host's create_dependent_envelope builds: the
vendor's envelope comes out only when the hospital's signature verifies under the scheduler's
anchors and every condition holds (device set, window on the device's clock, vendor and
class); each refusal has its own error and code. A hypothesis sweep mutates the envelope:
followed by the vendor's verification, only the loader's errors come out, or the vendor's
envelope with its signed manifest unchanged."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suture import keys

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suit"))
from suit_samples import CLASS_ID, VENDOR_ID, sample_description, write_images
from suture.suit import HospitalConditions, create_dependent_envelope, create_envelope

RunMpy = Callable[..., Any]
ME = uuid.UUID("8d4a3c35-0d6b-4bd5-9a5f-42f1f1b2c001")
OTHER = uuid.UUID("8d4a3c35-0d6b-4bd5-9a5f-42f1f1b2c002")
NOW = 1_800_000_000

UNWRAP = """
import sys, json
from loader import cbor, suit, suit_hospital
from loader.errors import LoaderError
cases = json.loads(open(sys.argv[1]).read())
vendor = open(sys.argv[2], "rb").read()
out = []
for c in cases:
    data = bytes.fromhex(c["env"])
    ids = (bytes.fromhex(c["vendor"]), bytes.fromhex(c["class"]), bytes.fromhex(c["device"]))
    try:
        got = suit_hospital.unwrap(data, [bytes.fromhex(c["key"])], ids, c["now"])
        if got == vendor:
            out.append("vendor")
        else:  # what the loader does next: the vendor's verification
            suit.authenticate(got, [bytes.fromhex(c["vendor_key"])])
            same = cbor.decode(got).value[3] == cbor.decode(vendor).value[3]
            out.append("vendor-manifest" if same else "other")
    except LoaderError as e:
        out.append([type(e).__name__, e.code])
print("RESULT " + json.dumps(out))
"""


def _point(key: keys.PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


class World:
    def __init__(self, tmp_path: Path) -> None:
        write_images(tmp_path)
        self.tmp = tmp_path
        self.vendor = keys.generate_private_key("ES256")
        self.hospital = keys.generate_private_key("ES256")
        self.vendor_env = create_envelope(sample_description(), self.vendor, base_dir=tmp_path)
        (tmp_path / "vendor.suit").write_bytes(self.vendor_env)

    def dependent(self, conditions: HospitalConditions, key: keys.PrivateKey | None = None
                  ) -> bytes:
        return create_dependent_envelope(self.vendor_env, self.vendor.public_key(),
                                         key or self.hospital, sequence_number=7,
                                         conditions=conditions)

    def case(self, env: bytes, *, device: uuid.UUID = ME, now: int | None = NOW,
             class_id: str = CLASS_ID, key: keys.PrivateKey | None = None) -> dict[str, Any]:
        return {"env": env.hex(), "vendor": uuid.UUID(VENDOR_ID).bytes.hex(),
                "class": uuid.UUID(class_id).bytes.hex(), "device": device.bytes.hex(),
                "now": now, "key": _point(key or self.hospital),
                "vendor_key": _point(self.vendor)}

    def run(self, run_mpy: RunMpy, cases: list[dict[str, Any]]) -> list[Any]:
        path = self.tmp / "cases.json"
        path.write_text(json.dumps(cases))
        got: list[Any] = run_mpy(UNWRAP, str(path), str(self.tmp / "vendor.suit"),
                                 heapsize="512K")
        return got


def test_the_vendors_envelope_comes_out_only_when_every_condition_holds(
    run_mpy: RunMpy, tmp_path: Path
) -> None:
    w = World(tmp_path)
    ward = w.dependent(HospitalConditions(devices=(OTHER, ME), not_before=NOW - 60,
                                          not_after=NOW + 3600))
    anyone = w.dependent(HospitalConditions(not_before=NOW - 60))
    no_window = w.dependent(HospitalConditions(devices=(ME,)))
    wrong_key = keys.generate_private_key("ES256")
    got = w.run(run_mpy, [
        w.case(ward),
        w.case(ward, device=OTHER),
        w.case(ward, device=uuid.uuid4()),
        w.case(ward, now=NOW - 61),
        w.case(ward, now=NOW + 3600),
        w.case(ward, now=None),
        w.case(ward, class_id=str(uuid.uuid4())),
        w.case(ward, key=wrong_key),
        w.case(w.dependent(HospitalConditions(devices=(ME,)), key=wrong_key)),
        w.case(anyone, device=uuid.uuid4()),
        w.case(no_window, now=None),
    ])
    assert got == [
        "vendor",
        "vendor",
        ["HospitalConditionFailed", 83],  # not in the device set
        ["HospitalConditionFailed", 83],  # before the window
        ["HospitalConditionFailed", 83],  # at use-before
        ["HospitalConditionFailed", 83],  # a window and no clock
        ["HospitalConditionFailed", 83],  # another device class
        ["HospitalSignatureError", 85],  # the device trusts another scheduler key
        ["HospitalSignatureError", 85],  # signed by a key the device does not trust
        "vendor",  # no device set: any device of the class
        "vendor",  # no window: no clock needed
    ]


def test_a_swapped_vendor_envelope_is_refused(run_mpy: RunMpy, tmp_path: Path) -> None:
    """The integrated envelope replaced by another one of the vendor's (the same size, another
    manifest): the hospital's manifest names the first by its digest."""
    import cbor2

    w = World(tmp_path)
    env = cbor2.loads(w.dependent(HospitalConditions(devices=(ME,))))
    inner = dict(env.value if isinstance(env, cbor2.CBORTag) else env)
    desc = sample_description()
    desc["sequence-number"] = desc["sequence-number"] + 1
    other = create_envelope(desc, w.vendor, base_dir=tmp_path)
    assert len(other) == len(inner["#vendor.suit"])
    inner["#vendor.suit"] = other
    swapped = cbor2.dumps(cbor2.CBORTag(107, inner))
    inner["#vendor.suit"] = other + b"\x00"
    longer = cbor2.dumps(cbor2.CBORTag(107, inner))
    got = w.run(run_mpy, [w.case(swapped), w.case(longer)])
    assert got == [["SignatureError", 23], ["SizeError", 30]]


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
                min_size=1, max_size=3))
def test_a_mutated_hospital_envelope_gives_a_loader_error_or_the_vendors(
    run_mpy: RunMpy, tmp_path: Path, flips: list[tuple[int, int]]
) -> None:
    w = World(tmp_path)
    env = bytearray(w.dependent(HospitalConditions(devices=(ME,), not_before=NOW - 60)))
    cases = []
    for at, xor in flips:
        mutated = bytearray(env)
        mutated[at % len(mutated)] ^= xor
        cases.append(w.case(bytes(mutated)))
    got = w.run(run_mpy, cases)
    for outcome in got:
        assert outcome in ("vendor", "vendor-manifest") or (
            isinstance(outcome, list) and 20 <= outcome[1] < 100), got
