"""stage0's parsers fuzzed through the host build: damaged image headers, journal slots full of
junk, and staged-update records with arbitrary fields. Whatever the input, stage0 starts only
the verified loader (or none), and bad input changes nothing it should not."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suture.keys import PrivateKey

from . import flashimg as fi

HOST_LOAD = 0x00020200
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def images(signing_key: PrivateKey) -> tuple[bytes, bytes]:
    old = fi.make_image(signing_key, os.urandom(6000), counter=1, load_address=HOST_LOAD)
    new = fi.make_image(signing_key, os.urandom(7000), counter=2, load_address=HOST_LOAD)
    return old, new


def _boot(build: Path, tmp: Path, internal: bytes, external: bytes) -> tuple[int, bytes, bytes]:
    i, e = tmp / "int.bin", tmp / "ext.bin"
    i.write_bytes(internal)
    e.write_bytes(external)
    proc = subprocess.run([str(build / "host" / "stage0-host"), "boot", str(i), str(e)],
                          capture_output=True, text=True, check=False, timeout=30)
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    return proc.returncode, i.read_bytes(), e.read_bytes()


@FUZZ
@given(pos=st.integers(0, fi.HEADER_SIZE - 1), flip=st.integers(1, 255))
def test_damaged_header_is_refused_and_nothing_changes(
        stage0_build: Path, signing_key: PrivateKey, images: tuple[bytes, bytes],
        tmp_path: Path, pos: int, flip: int) -> None:
    image = bytearray(images[0])
    image[pos] ^= flip
    internal = bytes(fi.provisioned_internal(signing_key, bytes(image)))
    external = bytes(fi.staged_external(None))
    rc, internal_after, external_after = _boot(stage0_build, tmp_path, internal, external)
    assert rc == 3
    assert internal_after == internal
    assert external_after == external


@FUZZ
@given(junk=st.lists(st.binary(min_size=64, max_size=64), min_size=1, max_size=70),
       magic=st.booleans())
def test_junk_journal_still_boots_the_verified_loader(
        stage0_build: Path, signing_key: PrivateKey, images: tuple[bytes, bytes],
        tmp_path: Path, junk: list[bytes], magic: bool) -> None:
    external = fi.blank(fi.EXTERNAL_SIZE)
    for n, slot in enumerate(junk):
        if magic:  # looks like a record until the CRC is checked
            slot = struct.pack("<I", 0x4C4E4A53) + slot[4:]
        fi.put(external, fi.JOURNAL_OFF + 64 * n, slot)
    internal = bytes(fi.provisioned_internal(signing_key, images[0]))
    rc, internal_after, _ = _boot(stage0_build, tmp_path, internal, bytes(external))
    assert rc == 0
    assert fi.slot_image(internal_after, fi.LOADER_OFF) == images[0]


@FUZZ
@given(size=st.integers(0, 0xFFFFFFFF), good_digest=st.booleans(), flags=st.integers(0, 255),
       state=st.sampled_from(["STAGED", "BACKUP", "INSTALLING", "TRIAL", "REVERTING",
                              "CONFIRMED"]),
       boot_count=st.integers(0, 255))
def test_arbitrary_loader_records_never_start_an_unverified_loader(
        stage0_build: Path, signing_key: PrivateKey, images: tuple[bytes, bytes],
        tmp_path: Path, size: int, good_digest: bool, flags: int, state: str,
        boot_count: int) -> None:
    old, new = images
    external = fi.blank(fi.EXTERNAL_SIZE)
    fi.put(external, fi.STAGING_OFF, new)
    digest = hashlib.sha256(new).digest() if good_digest else os.urandom(32)
    fi.put(external, fi.JOURNAL_OFF, fi.journal_record(
        1, fi.COMPONENT_LOADER, state, flags=flags, size=size, version=2, digest=digest,
        boot_count=boot_count))
    internal = bytes(fi.provisioned_internal(signing_key, old))
    rc, internal_after, external_after = _boot(stage0_build, tmp_path, internal,
                                               bytes(external))
    assert rc == 0  # the old loader or the new one, both verified
    assert fi.slot_image(internal_after, fi.LOADER_OFF) in (old, new)
    if fi.slot_image(internal_after, fi.LOADER_OFF) == new:
        # only an install that checked the staged bytes against the record may put it there
        assert fi.read_journal(external_after)[-1].state_name == "TRIAL"
    if state == "CONFIRMED":
        # whatever the record says, the backup gets the verified loader slot, nothing else
        assert fi.slot_image(internal_after, fi.LOADER_OFF) == old
        assert fi.slot_image(external_after, fi.BACKUP_OFF) == old
