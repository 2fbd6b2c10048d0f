"""The agent downloads an encrypted release (AES-GCM) from a fake scheduler on the unix port: the
schedule announces the ciphertext, the loader decrypts while it stages, and a reset in the
middle of the download resumes at the journal's checkpoint with an HTTP Range on the
ciphertext (the GHASH rebuilt from the staged plaintext), ending STAGED with the plaintext."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from agent_env import DEVICE_DIR, DEVICE_ID, FakeScheduler, cut_power_while_stalled
from suture.cose.mac0 import SymmetricKey
from suture.formats import identity
from suture.keys import PrivateKey
from suture.scheduler.schedule_doc import Artifact, Schedule, sign_schedule
from suture.sim.journal import State
from suture.sim.testing import Provisioned, encrypt_payload, example_app

KEK = bytes(range(16))


def _serve(fake: FakeScheduler, vendor_key: PrivateKey, scheduler_key: PrivateKey,
           plaintext: bytes) -> bytes:
    envelope, ciphertext = encrypt_payload(plaintext, 2, vendor_key,
                                           [SymmetricKey(KEK, b"ward-3")])
    now = int(time.time())
    art = Artifact(release_id=5, component="app", sequence_number=2,
                   envelope_uri=fake.url + "/api/v1/releases/5/envelope",
                   envelope_digest=hashlib.sha256(envelope).digest(),
                   envelope_size=len(envelope),
                   payload_uri=fake.url + "/api/v1/releases/5/payload",
                   payload_digest=hashlib.sha256(ciphertext).digest(),
                   payload_size=len(ciphertext))
    fake.schedule = sign_schedule(Schedule(
        device_id=DEVICE_ID, number=3, issued_at=now, action=1, next_poll=now + 1,
        poll_interval=1, rollout_id=9, artifact=art), scheduler_key)
    fake.envelope = envelope
    fake.payload = ciphertext
    return ciphertext


def test_an_encrypted_download_resumes_after_a_reset(
    agent_device: Provisioned, fake_scheduler: FakeScheduler, vendor_key: PrivateKey,
    scheduler_key: PrivateKey, loader_lib: Path
) -> None:
    record = identity.encryption_keys([(identity.ENC_KIND_KEK, b"ward-3", KEK)])
    r = agent_device.device.run(["nvm-put", identity.ENC_KEYS, record.hex(), "1"])
    assert r.ok, r.stdout + r.stderr
    plaintext = example_app(2, filler=80_000)
    ciphertext = _serve(fake_scheduler, vendor_key, scheduler_key, plaintext)
    fake_scheduler.stall_after = 45_000
    cut_power_while_stalled(agent_device, fake_scheduler, loader_lib)
    cur = agent_device.board.current_record()
    assert cur is not None
    assert (cur.state, cur.progress) == (State.DOWNLOADING, 32768)
    assert cur.digest == hashlib.sha256(plaintext).digest()  # the record is the plaintext's
    fake_scheduler.release.set()
    r = agent_device.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), "6"])
    assert r.exit_code == 0, r.stdout + r.stderr
    cur = agent_device.board.current_record()
    assert cur is not None
    assert (cur.state, cur.size) == (State.STAGED, len(plaintext))
    assert agent_device.board.region_bytes("staging")[: len(plaintext)] == plaintext
    assert len(ciphertext) == len(plaintext) + 16
    ranges = [h.get("Range") for m, p, h in fake_scheduler.requests if p.endswith("/payload")]
    assert ranges == [None, "bytes=32768-"]
