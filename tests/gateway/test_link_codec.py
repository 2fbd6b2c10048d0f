"""The device link's codecs: the examples of docs/formats/device-link.md, checked against the
host's codec (suture.gateway.frames) and the device's (agent/transport/link.py on the unix
port), and the two codecs against each other both ways, so that neither drifts."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from device_codec import CODEC
from link_harness import REPO
from suture.gateway.frames import (
    MAX_PAYLOAD,
    TYPES,
    FrameError,
    FrameReader,
    LinkFrame,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode_frame,
)
from suture.sim.testing import run_script

DOC = REPO / "docs" / "formats" / "device-link.md"
DEVICE_DIR = REPO / "device"


def doc_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```text\n(example:.*?)```", DOC.read_text(), re.S)
    out = []
    for block in blocks:
        fields = {}
        for line in block.strip().splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        out.append({
            "name": fields["example"],
            "kind": ord(fields["type"]),
            "rid": int(fields["rid"], 16),
            "seq": int(fields["seq"]),
            "payload": bytes.fromhex(fields["payload"]),
            "raw": bytes.fromhex(fields["raw"]),
            "wire": bytes.fromhex(fields["wire"]),
        })
    return out


def run_device(cases: list[list[Any]], tmp_path: Path) -> list[Any]:
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    result: list[Any] = run_script(CODEC, str(path), str(DEVICE_DIR), micropypath=[DEVICE_DIR],
                                   cwd=tmp_path, heapsize="1M", timeout=120)
    return result


def test_the_page_has_examples_of_every_type() -> None:
    kinds = {e["kind"] for e in doc_examples()}
    assert kinds == set(TYPES)


def test_doc_examples_host() -> None:
    for e in doc_examples():
        assert cobs_decode(e["wire"][:-1]) == e["raw"], e["name"]
        assert cobs_encode(e["raw"]) + b"\x00" == e["wire"], e["name"]
        assert encode_frame(e["kind"], e["rid"], e["seq"], e["payload"]) == e["wire"], e["name"]
        assert decode_frame(e["wire"][:-1]) == LinkFrame(e["kind"], e["rid"], e["seq"],
                                                         e["payload"]), e["name"]


def test_doc_examples_device(tmp_path: Path) -> None:
    examples = doc_examples()
    cases: list[list[Any]] = [["enc", e["kind"], e["rid"], e["seq"], e["payload"].hex()]
                              for e in examples]
    cases += [["dec", e["wire"].hex(), 3, 256] for e in examples]
    results = run_device(cases, tmp_path)
    n = len(examples)
    for e, wire in zip(examples, results[:n], strict=True):
        assert bytes.fromhex(wire) == e["wire"], e["name"]
    for e, frames in zip(examples, results[n:], strict=True):
        assert frames == [["F", e["kind"], e["rid"], e["seq"], e["payload"].hex()]], e["name"]


def _payloads(rng: random.Random) -> list[bytes]:
    fixed = [b"", b"\x00", b"\x00" * 300, bytes(range(1, 255)), bytes(range(1, 256)),
             bytes(253) + b"\x01", b"\xff" * MAX_PAYLOAD, bytes(MAX_PAYLOAD),
             bytes(range(1, 255)) + b"\x00" + bytes(range(1, 255))]
    for _ in range(40):
        n = rng.choice([rng.randrange(16), rng.randrange(MAX_PAYLOAD + 1), MAX_PAYLOAD])
        zeros = rng.random()
        fixed.append(bytes(0 if rng.random() < zeros else rng.randrange(1, 256)
                           for _ in range(n)))
    return fixed


def test_host_and_device_agree_both_ways(tmp_path: Path) -> None:
    rng = random.Random(14)
    frames = [LinkFrame(rng.choice(sorted(TYPES)), rng.randrange(0x10000),
                        rng.randrange(0x10000), p) for p in _payloads(rng)]
    # device encodes, host decodes
    wires = run_device([["enc", f.kind, f.rid, f.seq, f.payload.hex()] for f in frames],
                       tmp_path)
    for f, wire in zip(frames, wires, strict=True):
        data = bytes.fromhex(wire)
        assert data == f.encode()
        assert decode_frame(data[:-1]) == f
    # host encodes, device decodes: one stream with every frame, fed in odd-sized reads
    stream = b"".join(f.encode() for f in frames)
    got = run_device([["dec", stream.hex(), 97, 256], ["dec", stream.hex(), 1500, 64]],
                     tmp_path)
    want = [["F", f.kind, f.rid, f.seq, f.payload.hex()] for f in frames]
    assert got == [want, want]


def test_resynchronisation_after_garbage_and_cut_frames(tmp_path: Path) -> None:
    good = [LinkFrame(ord("B"), 9, i, bytes([i]) * 40) for i in range(1, 4)]
    stream = (b"\x13\x37garbage" + b"\x00" + good[0].encode() + good[1].encode()[:20]
              + b"\x00" + good[2].encode() + b"\xff" * 2000 + b"\x00" + good[0].encode())
    reader = FrameReader()
    host = list(reader.feed(stream))
    host_frames = [x for x in host if isinstance(x, LinkFrame)]
    assert host_frames == [good[0], good[2], good[0]]
    assert all(isinstance(x, FrameError) for x in host if not isinstance(x, LinkFrame))
    assert reader.damaged == 3
    (dev,) = run_device([["dec", stream.hex(), 50, 256]], tmp_path)
    assert [x for x in dev if x[0] == "F"] == [["F", f.kind, f.rid, f.seq, f.payload.hex()]
                                               for f in (good[0], good[2], good[0])]
    assert dev.count(["D"]) == 3


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x05\x01", "cobs"), (b"\x02\x41", "short"), (cobs_encode(bytes(2000)), "long"),
    (cobs_encode(b"\x41" + bytes(8)), "crc"),
])
def test_host_errors_are_named(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as e:
        decode_frame(data)
    assert e.value.reason == reason


def test_unknown_type_is_named() -> None:
    import struct
    import zlib
    raw = struct.pack("<BHH", 0x7A, 1, 0)
    with pytest.raises(FrameError) as e:
        decode_frame(cobs_encode(raw + struct.pack("<I", zlib.crc32(raw))))
    assert e.value.reason == "type"


