"""schedule.verify on the unix port, fuzzed with hypothesis: whatever CBOR or COSE structure a
peer sends (any bytes, any CBOR item, a COSE_Sign1 with any field of any type, and documents
really signed by the scheduler key whose protected header or payload holds anything), the only
exception that leaves verify is a ScheduleError."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from agent_env import DEVICE_ID
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suture import keys
from suture.keys import PrivateKey
from suture.scheduler.schedule_doc import Artifact, Schedule

NOW = 1_767_225_600

VERIFY_ANY = """
import json, sys, binascii, gc
from agent import schedule as S
from agent.errors import ScheduleError
f = open(sys.argv[1])
keys = [binascii.unhexlify(k) for k in json.loads(f.readline())]
out = []
for line in f:
    doc, dev, last, now = json.loads(line)
    try:
        s = S.verify(binascii.unhexlify(doc), keys, dev, last, now)
        s.action_name()
        s.in_window(NOW if now is None else now)
        out.append(["ok"])
    except ScheduleError as e:
        out.append([type(e).__name__])
    except Exception as e:
        out.append(["CRASH", type(e).__name__, str(e)])
    gc.collect()
print("RESULT " + json.dumps(out))
""".replace("NOW", str(NOW))

# The agent's own key, shared by every example (hypothesis does not reset module fixtures).
KEY: PrivateKey = keys.generate_private_key("ES256")


def _base_map() -> dict[int, Any]:
    art = Artifact(release_id=7, component="app", sequence_number=4,
                   envelope_uri="http://127.0.0.1:1/e", envelope_digest=b"\x11" * 32,
                   envelope_size=402, payload_uri="http://127.0.0.1:1/p",
                   payload_digest=b"\x22" * 32, payload_size=183040)
    s = Schedule(device_id=DEVICE_ID, number=12, issued_at=NOW, action=2, next_poll=NOW + 90,
                 poll_interval=90, rollout_id=3, artifact=art, not_before=NOW - 60,
                 not_after=NOW + 3600)
    return s.to_map()


BASE = _base_map()

leaves = st.one_of(
    st.integers(-(2**64), 2**64 - 1),
    st.integers(-(2**70), 2**70),
    st.binary(max_size=40),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.sampled_from([DEVICE_ID, -7, 18, b"\x11" * 32]),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys_ = st.one_of(st.integers(-30, 40), st.text(max_size=6), st.binary(max_size=4))
    return st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys_, children, max_size=5),
        st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 18, 24, 98, 2**16]), children),
        children.map(cbor2.dumps),  # bstr-wrapped CBOR, as COSE nests it
    )


values = st.recursive(leaves, _containers, max_leaves=25)


def _sign(protected: bytes, payload: bytes) -> bytes:
    """A real ES256 signature by KEY over the COSE Sig_structure of protected and payload."""
    assert isinstance(KEY, ec.EllipticCurvePrivateKey)
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(KEY.sign(tbs, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@st.composite
def mutated_payload(draw: st.DrawFn) -> Any:
    m: dict[Any, Any] = dict(BASE)
    for _ in range(draw(st.integers(1, 4))):
        k = draw(st.one_of(st.integers(1, 21), st.text(max_size=3)))
        if draw(st.integers(0, 4)) == 0:
            m.pop(k, None)
        else:
            m[k] = draw(values)
    return m


@st.composite
def cose_documents(draw: st.DrawFn) -> bytes:
    protected = draw(st.one_of(
        st.just(cbor2.dumps({1: -7})),
        st.just(b""),
        values.map(cbor2.dumps),
        values,  # not a byte string at all (the issue: the integer 5)
        st.just(5),
    ))
    unprotected = draw(st.one_of(st.just({4: b"kid"}), st.just({}), values))
    payload = draw(st.one_of(
        mutated_payload().map(lambda m: cbor2.dumps(m)),
        values.map(cbor2.dumps),
        values,
        st.just(cbor2.dumps(BASE)),
    ))
    if isinstance(protected, bytes) and isinstance(payload, bytes) and draw(st.booleans()):
        signature: Any = _sign(protected, payload)
    else:
        signature = draw(st.one_of(st.binary(min_size=64, max_size=64), values))
    fields = [protected, unprotected, payload, signature]
    if draw(st.integers(0, 9)) == 0:
        fields = fields[: draw(st.integers(0, 3))] + draw(st.lists(values, max_size=2))
    tag = draw(st.one_of(st.just(18), st.just(18), st.sampled_from([17, 98, 0])))
    return cbor2.dumps(cbor2.CBORTag(tag, fields))


@st.composite
def signed_documents(draw: st.DrawFn) -> bytes:
    """Really signed by the scheduler key, ES256 header: only the payload's fields are off."""
    protected = cbor2.dumps({1: -7})
    payload = cbor2.dumps(draw(mutated_payload()))
    return cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, _sign(protected, payload)]))


documents = st.one_of(
    signed_documents(),
    signed_documents(),
    cose_documents(),
    cose_documents(),
    values.map(cbor2.dumps),
    st.binary(max_size=200),
)
case = st.tuples(
    documents,
    st.sampled_from([DEVICE_ID, "bed-8"]),
    st.sampled_from([-1, 0, 12, 2**40]),
    st.one_of(st.none(), st.sampled_from([NOW, NOW + 7200, 0])),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(batch=st.lists(case, min_size=30, max_size=30))
def test_only_schedule_errors_escape(batch: list[tuple[bytes, str, int, int | None]],
                                     run_mpy_once: Callable[..., Any],
                                     tmp_path_factory: Any) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "cases.jsonl"
    lines = [json.dumps([keys.public_key_bytes(KEY.public_key()).hex()])]
    lines += [json.dumps([d.hex(), dev, last, now]) for d, dev, last, now in batch]
    path.write_text("\n".join(lines) + "\n")
    results = run_mpy_once(VERIFY_ANY, str(path))
    assert len(results) == len(batch)
    for (doc, *_), res in zip(batch, results, strict=True):
        assert res[0] != "CRASH", (res, doc.hex())


def test_the_reported_document_is_refused(run_mpy_once: Callable[..., Any],
                                          tmp_path_factory: Any) -> None:
    """The attack campaign's case: a COSE_Sign1 whose protected header is the integer 5, and
    signed documents whose fields have the wrong types or a release number beyond u32."""
    payload = cbor2.dumps(BASE)
    prot = cbor2.dumps({1: -7})
    docs = [cbor2.dumps(cbor2.CBORTag(18, [5, {}, payload, _sign(prot, payload)]))]
    for key, bad in ((13, "soon"), (14, [1]), (5, -1), (15, "x"), (7, b"x"), (18, 2**32),
                     (2, 7)):
        m = dict(BASE)
        m[key] = bad
        body = cbor2.dumps(m)
        docs.append(cbor2.dumps(cbor2.CBORTag(18, [prot, {}, body, _sign(prot, body)])))
    path = Path(tmp_path_factory.mktemp("fuzz")) / "cases.jsonl"
    lines = [json.dumps([keys.public_key_bytes(KEY.public_key()).hex()])]
    lines += [json.dumps([d.hex(), DEVICE_ID, -1, NOW]) for d in docs]
    path.write_text("\n".join(lines) + "\n")
    results = run_mpy_once(VERIFY_ANY, str(path))
    assert [r[0] for r in results] == [
        "ScheduleSignatureError", "ScheduleError", "ScheduleError", "ScheduleError",
        "ScheduleError", "ScheduleError", "ScheduleError", "ScheduleDeviceError",
    ], results
