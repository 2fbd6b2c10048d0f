"""The host's loader image and provisioning records put each field where the C headers
(stage0/include/suture/, the one definition of each format) say it is."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from suture.image import LoaderImageHeader, provision_record
from suture.image.header import HEADER_SIZE, IMAGE_MAGIC, SIGNED_SIZE
from suture.keys import PrivateKey


def _c_offsets(repo_root: Path, header: str, struct_name: str) -> dict[str, int]:
    text = (repo_root / "stage0" / "include" / "suture" / header).read_text()
    found = re.findall(r"offsetof\(" + struct_name + r",\s*(\w+)\)\s*==\s*(\w+)", text)
    consts = dict(re.findall(r"#define (SUTURE_\w+) (\d+)u", text))
    return {field: int(consts.get(value, value)) for field, value in found}


def test_image_header_offsets(repo_root: Path) -> None:
    off = _c_offsets(repo_root, "image.h", "suture_image_header_t")
    assert len(off) == 11  # every field but magic (at 0) and the version bytes after major
    hdr = LoaderImageHeader(version=(0x11, 0x22, 0x3344), security_counter=0x55667788,
                            load_address=0x99AABBCC, image_size=0x0D0E0F10,
                            key_id=bytes(range(1, 9)), digest=bytes(range(100, 132)),
                            signature=bytes(range(200, 255)) + bytes(9))
    raw = hdr.to_bytes()
    assert len(raw) == HEADER_SIZE
    assert off["signature"] == SIGNED_SIZE
    assert struct.unpack_from("<I", raw, 0)[0] == IMAGE_MAGIC
    assert struct.unpack_from("<HH", raw, off["header_version"]) == (1, HEADER_SIZE)
    assert raw[off["version_major"]] == 0x11
    assert struct.unpack_from("<I", raw, off["security_counter"])[0] == 0x55667788
    assert struct.unpack_from("<I", raw, off["load_address"])[0] == 0x99AABBCC
    assert struct.unpack_from("<I", raw, off["image_size"])[0] == 0x0D0E0F10
    assert struct.unpack_from("<I", raw, off["sig_alg"])[0] == 1
    assert raw[off["key_id"] : off["key_id"] + 8] == bytes(range(1, 9))
    assert raw[off["digest"] : off["digest"] + 32] == bytes(range(100, 132))
    assert not any(raw[off["reserved"] : off["signature"]])


def test_provision_record_offsets(repo_root: Path, signing_key: PrivateKey) -> None:
    off = _c_offsets(repo_root, "counter.h", "suture_provision_record_t")
    rec = provision_record(signing_key.public_key())
    x = signing_key.public_key().public_numbers().x.to_bytes(32, "big")
    assert rec[off["public_key"] : off["public_key"] + 32] == x
    assert off["crc32"] == len(rec) - 4
