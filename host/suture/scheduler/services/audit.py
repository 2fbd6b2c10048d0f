"""The audit log: append-only, hash-chained, keyed, with signed checkpoints kept elsewhere.

Each record carries two values:

- ``hash = SHA-256(prev_hash || canonical JSON of seq, at, actor, action, subject, detail)``
  (sorted keys, no spaces): the chain, which anyone can recompute;
- ``mac = HMAC-SHA256(mac_key, "suture-audit-record-v1" 0x00 || seq (8 bytes) || hash)``: with
  a key that is *not* in the database (the audit key file, ``AuditKey``), so someone who can
  write the database but not read that file cannot rewrite a record and recompute the chain.

The head row (``audit_head``: last seq and hash) carries a MAC of its own under another label,
so a head moved back over a deleted tail shows too. What a key holder could still do (rewrite
everything consistently, or put back an old head and its tail) is caught by **checkpoints**:
``{seq, hash, at, node}`` signed with the Ed25519 key of the same file and written *outside*
the database (a file the scheduler appends to, the SIEM through ``export``); ``verify`` checks
every checkpoint it is given against the log.

Appends lock the single ``audit_head`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), so several scheduler nodes keep one chain. The
database refuses ``UPDATE``, ``DELETE``, ``TRUNCATE``, ``INSERT OR REPLACE``/upsert and any
insert that is not the next ``seq`` (triggers, migration 0003); that stops mistakes and casual
edits, the MAC and the checkpoints stop the rest.

The session factory carries the key (``db.make_session_factory(engine, audit_key=...)``):
``append`` refuses to write an unkeyed record.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from suture.scheduler.db import SESSION_KEY
from suture.scheduler.driver_sql import DriverStatement
from suture.scheduler.errors import ConfigurationError, InvalidInputError
from suture.scheduler.models import DEFAULT_TENANT, AuditHead, AuditRecord

GENESIS_HASH: Final = "0" * 64
KEY_FORMAT: Final = "suture-audit-key-v1"
CHECKPOINT_TYPE: Final = "suture-audit-checkpoint"
RECORD_TYPE: Final = "suture-audit-record"
_RECORD_LABEL: Final = b"suture-audit-record-v1\x00"
_HEAD_LABEL: Final = b"suture-audit-head-v1\x00"
_CHECKPOINT_LABEL: Final = b"suture-audit-checkpoint-v1\n"
#: RFC 5424 structured-data id: the documentation enterprise number (RFC 5612).
SYSLOG_SD_ID: Final = "suture@32473"
_SYSLOG_PRI: Final = 13 * 8 + 5  # facility 13 (log audit), severity 5 (notice)


# --- the key ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditKey:
    """The audit key file: the HMAC key, the checkpoint signing key, and the first record the
    key covers (records before it were written by a scheduler that had no key)."""

    mac_key: bytes
    checkpoint_key: ed25519.Ed25519PrivateKey
    keyed_from_seq: int = 1

    def record_mac(self, seq: int, digest: str) -> str:
        return _mac(self.mac_key, _RECORD_LABEL, seq, digest)

    def head_mac(self, seq: int, digest: str) -> str:
        return _mac(self.mac_key, _HEAD_LABEL, seq, digest)

    @property
    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self.checkpoint_key.public_key()

    @property
    def key_id(self) -> str:
        return checkpoint_key_id(self.public_key)

    @staticmethod
    def generate(keyed_from_seq: int = 1) -> AuditKey:
        return AuditKey(os.urandom(32), ed25519.Ed25519PrivateKey.generate(), keyed_from_seq)


def _mac(key: bytes, label: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, label + seq.to_bytes(8, "big") + bytes.fromhex(digest),
                    hashlib.sha256).hexdigest()


def checkpoint_key_id(public: ed25519.Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def write_audit_key(path: Path, key: AuditKey) -> None:
    """Write the key file, mode 0600, refusing to replace one (a new key would make every
    record written so far unverifiable)."""
    seed = key.checkpoint_key.private_bytes(serialization.Encoding.Raw,
                                            serialization.PrivateFormat.Raw,
                                            serialization.NoEncryption())
    text = json.dumps({"format": KEY_FORMAT, "mac_key": key.mac_key.hex(),
                       "checkpoint_key": seed.hex(), "keyed_from_seq": key.keyed_from_seq},
                      indent=1) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def load_audit_key(path: Path) -> AuditKey:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigurationError(
            f"audit key {path}: {exc.strerror or exc} (`suture scheduler init` creates it)"
        ) from None
    except json.JSONDecodeError:
        raise ConfigurationError(f"audit key {path}: not JSON") from None
    try:
        if data["format"] != KEY_FORMAT:
            raise ValueError
        mac_key = bytes.fromhex(data["mac_key"])
        seed = bytes.fromhex(data["checkpoint_key"])
        since = int(data["keyed_from_seq"])
        if len(mac_key) < 32 or len(seed) != 32 or since < 1:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError(f"audit key {path}: malformed ({KEY_FORMAT} expected)") from None
    return AuditKey(mac_key, ed25519.Ed25519PrivateKey.from_private_bytes(seed), since)


def write_checkpoint_public_key(path: Path, key: AuditKey) -> None:
    """The checkpoint verification key (PEM) for auditors and the SIEM."""
    path.write_text(public_key_pem(key))


def public_key_pem(key: AuditKey) -> str:
    return key.public_key.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def session_key(session: Session) -> AuditKey:
    key = session.info.get(SESSION_KEY)
    if not isinstance(key, AuditKey):
        raise ConfigurationError("this scheduler session has no audit key: nothing can be "
                                 "audited, so nothing is changed")
    return key


# --- appending -------------------------------------------------------------------------------

def _canonical(seq: int, at: int, actor: str, action: str, subject: str, detail: str,
               tenant: str = DEFAULT_TENANT) -> bytes:
    record: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": detail,
    }
    if tenant != DEFAULT_TENANT:  # a tenant's record (vendor-run mode) is hashed with it
        record["tenant"] = tenant
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _detail_text(detail: dict[str, Any] | None) -> str:
    """A record's detail as it is stored and hashed: canonical JSON."""
    return json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), default=str)


def chain_hash(prev_hash: str, seq: int, at: int, actor: str, action: str, subject: str,
               detail: str, tenant: str = DEFAULT_TENANT) -> str:
    """The hash of one record given its predecessor's hash."""
    body = _canonical(seq, at, actor, action, subject, detail, tenant)
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def append(
    session: Session, *, at: int, actor: str, action: str, subject: str,
    detail: dict[str, Any] | None = None, tenant: str = DEFAULT_TENANT,
) -> AuditRecord:
    """Append one record inside the caller's transaction (it commits with the change it audits).
    ``tenant``: whose operators see it (``services/tenants.py``)."""
    key = session_key(session)
    head = session.execute(_HEAD_OBJECT_FOR_UPDATE).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
    detail_text = _detail_text(detail)
    seq = head.seq + 1
    actor, subject = actor[:80], subject[:128]
    digest = chain_hash(head.hash, seq, at, actor, action, subject, detail_text, tenant)
    record = AuditRecord(
        seq=seq, at=at, actor=actor, action=action, subject=subject, tenant=tenant,
        detail=detail_text, prev_hash=head.hash, hash=digest, mac=key.record_mac(seq, digest),
    )
    session.add(record)
    session.flush()  # the record first: the database accepts only the next seq
    head.seq = seq
    head.hash = digest
    head.mac = key.head_mac(seq, digest)
    session.flush()
    return record


# The ORM append reads the head as it is now (populate_existing): a Core append of the same
# session may have moved it since.
_HEAD_OBJECT_FOR_UPDATE = (select(AuditHead).where(AuditHead.id == 1).with_for_update()
                           .execution_options(populate_existing=True))
# Statements of ``AuditBatch``, compiled once a dialect and run on the driver's cursor
# (``driver_sql``).
_HEAD_FOR_UPDATE = DriverStatement(select(AuditHead.seq, AuditHead.hash)
                                   .where(AuditHead.id == 1).with_for_update())
_ADD_RECORD = DriverStatement(insert(AuditRecord).values(
    **{name: bindparam(name) for name in ("seq", "at", "actor", "action", "subject", "tenant",
                                          "detail", "prev_hash", "hash", "mac")}))
_ADD_HEAD = DriverStatement(insert(AuditHead).values(
    id=1, seq=0, hash=GENESIS_HASH, mac=None))
_MOVE_HEAD = DriverStatement(update(AuditHead).where(AuditHead.id == 1).values(
    seq=bindparam("new_seq"), hash=bindparam("new_hash"), mac=bindparam("new_mac")))


@dataclass(frozen=True)
class _Pending:
    at: int
    actor: str
    action: str
    subject: str
    detail: str
    tenant: str


class AuditBatch:
    """Records appended by Core statements within one transaction and written together: at
    ``flush``, the head is read and locked, the records are chained from it in the order they
    were appended (the same hashes and MACs as ``append`` one by one), written by one
    ``executemany``, and the head is moved once. Nothing is written before ``flush``, and the
    head is locked there only: for a group of device reports
    (``api/routes/device.DeviceTransaction``) it stays the last lock the transaction takes.
    A transaction that also appends another way (``append``) flushes the batch first."""

    def __init__(self, conn: Connection, key: AuditKey) -> None:
        self.conn, self.key = conn, key
        self._pending: list[_Pending] = []

    def append(self, *, at: int, actor: str, action: str, subject: str,
               detail: dict[str, Any] | None = None, tenant: str = DEFAULT_TENANT) -> None:
        """One record, written at the next ``flush``."""
        self._pending.append(_Pending(at, actor[:80], action, subject[:128],
                                      _detail_text(detail), tenant))

    def flush(self) -> int:
        """Writes the records appended since the last flush; the last one's seq (0, and nothing
        read or locked, when there was none)."""
        if not self._pending:
            return 0
        row = _HEAD_FOR_UPDATE.first(self.conn, {})
        seq, digest = (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))
        if row is None:  # the first record of a log
            _ADD_HEAD.rows(self.conn, {})
        key, records = self.key, []
        for r in self._pending:
            prev, seq = digest, seq + 1
            digest = chain_hash(prev, seq, r.at, r.actor, r.action, r.subject, r.detail,
                                r.tenant)
            records.append({"seq": seq, "at": r.at, "actor": r.actor, "action": r.action,
                            "subject": r.subject, "tenant": r.tenant, "detail": r.detail,
                            "prev_hash": prev, "hash": digest,
                            "mac": key.record_mac(seq, digest)})
        self._pending = []
        _ADD_RECORD.many(self.conn, records)
        _MOVE_HEAD.rows(self.conn, {"new_seq": seq, "new_hash": digest,
                                    "new_mac": key.head_mac(seq, digest)})
        return seq


# --- checkpoints -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: int
    node: str
    key_id: str
    sig: str

    def body(self) -> dict[str, Any]:
        return {"type": CHECKPOINT_TYPE, "v": 1, "seq": self.seq, "hash": self.hash,
                "at": self.at, "node": self.node, "key_id": self.key_id}

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "sig": self.sig}

    def signed_bytes(self) -> bytes:
        return _CHECKPOINT_LABEL + json.dumps(self.body(), sort_keys=True,
                                              separators=(",", ":")).encode()

    def signature_ok(self, public: ed25519.Ed25519PublicKey) -> bool:
        if self.key_id != checkpoint_key_id(public):
            return False
        try:
            public.verify(base64.b64decode(self.sig, validate=True), self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True


def head(session: Session) -> tuple[int, str]:
    """The last record's seq and hash (0 and the genesis hash for an empty log)."""
    with session.begin():
        row = session.get(AuditHead, 1)
        return (row.seq, row.hash) if row is not None else (0, GENESIS_HASH)


def sign_checkpoint(key: AuditKey, *, seq: int, digest: str, at: int,
                    node: str | None = None) -> Checkpoint:
    unsigned = Checkpoint(seq, digest, at, (node or socket.gethostname())[:64], key.key_id, "")
    sig = base64.b64encode(key.checkpoint_key.sign(unsigned.signed_bytes())).decode()
    return Checkpoint(seq, digest, at, unsigned.node, key.key_id, sig)


def checkpoint(session: Session, *, now: int, node: str | None = None) -> Checkpoint:
    """A signed statement of the log's current end."""
    seq, digest = head(session)
    return sign_checkpoint(session_key(session), seq=seq, digest=digest, at=now, node=node)


def append_checkpoint_file(path: Path, cp: Checkpoint) -> None:
    """Add one checkpoint line to ``path`` (JSON lines; appended, never rewritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    with os.fdopen(fd, "a") as fh:
        fh.write(json.dumps(cp.to_json(), sort_keys=True) + "\n")


def parse_checkpoints(lines: Iterable[str], *, source: str = "checkpoints") -> list[Checkpoint]:
    """The checkpoint lines of a checkpoint file or a JSON-lines export (other lines skipped)."""
    out = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or CHECKPOINT_TYPE not in text:
            continue
        try:
            data = json.loads(text)
            if data.get("type") != CHECKPOINT_TYPE:
                continue
            out.append(Checkpoint(int(data["seq"]), str(data["hash"]), int(data["at"]),
                                  str(data["node"]), str(data["key_id"]), str(data["sig"])))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise InvalidInputError(f"{source}:{number}: malformed checkpoint") from None
    return out


# --- verifying -------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    #: The first record that does not verify (None when ``ok``).
    first_bad_seq: int | None
    reason: str
    #: Checkpoints checked against the log.
    checkpoints: int = 0


def verify(session: Session, *, key: AuditKey | None = None,
           checkpoints: Iterable[Checkpoint] = (),
           checkpoint_key: ed25519.Ed25519PublicKey | None = None,
           batch: int = 5000) -> VerifyResult:
    """Recompute the chain and every MAC; check the head, and every checkpoint given (signed by
    ``checkpoint_key``, by default the audit key's). Reports the first record that fails."""
    key = key or session_key(session)
    public = checkpoint_key or key.public_key
    wanted: dict[int, list[Checkpoint]] = {}
    for cp in checkpoints:
        if not cp.signature_ok(public):
            return VerifyResult(False, 0, cp.seq,
                                f"a checkpoint of record {cp.seq} ({_iso(cp.at)}, {cp.node}) "
                                f"does not verify against the checkpoint key {key.key_id}")
        wanted.setdefault(cp.seq, []).append(cp)
    checked = 0
    with session.begin():
        prev = GENESIS_HASH
        count = 0
        while True:
            rows = session.execute(
                select(AuditRecord).where(AuditRecord.seq > count)
                .order_by(AuditRecord.seq).limit(batch)
            ).scalars().all()
            if not rows:
                break
            for rec in rows:
                seq = count + 1
                if rec.seq != seq:
                    return VerifyResult(False, count, seq, "a record is missing", checked)
                if rec.prev_hash != prev:
                    return VerifyResult(False, count, seq, "prev_hash does not chain", checked)
                digest = chain_hash(prev, seq, rec.at, rec.actor, rec.action, rec.subject,
                                    rec.detail, rec.tenant or DEFAULT_TENANT)
                if digest != rec.hash:
                    return VerifyResult(False, count, seq, "record content was altered", checked)
                if (rec.mac is not None or seq >= key.keyed_from_seq) and not (
                        rec.mac is not None and hmac.compare_digest(
                            rec.mac, key.record_mac(seq, digest))):
                    return VerifyResult(False, count, seq,
                                        "the record's MAC does not verify with the audit key "
                                        "(rewritten by someone without the key)", checked)
                for cp in wanted.pop(seq, []):
                    if cp.hash != digest:
                        return VerifyResult(False, count, seq,
                                            f"record {seq} differs from the checkpoint of "
                                            f"{_iso(cp.at)} ({cp.node}): the chain was rewritten",
                                            checked)
                    checked += 1
                prev = digest
                count = seq
            session.expunge_all()
        head_row = session.get(AuditHead, 1)
    if count + 1 < key.keyed_from_seq:
        return VerifyResult(False, count, count + 1,
                            f"records were removed from the end (the audit key covers records "
                            f"from {key.keyed_from_seq} on)", checked)
    if wanted:
        last = max(wanted)
        cp = wanted[last][0]
        return VerifyResult(False, count, count + 1,
                            f"records were removed from the end: the log ends at {count}, a "
                            f"checkpoint of {_iso(cp.at)} ({cp.node}) saw record {last}", checked)
    head_seq, head_hash, head_mac = ((head_row.seq, head_row.hash, head_row.mac) if head_row
                                     else (0, GENESIS_HASH, None))
    if head_seq != count or head_hash != prev:
        return VerifyResult(False, count, count + 1, "records were removed from the end", checked)
    if count >= key.keyed_from_seq and not (
            head_mac is not None and hmac.compare_digest(head_mac, key.head_mac(count, prev))):
        return VerifyResult(False, count, count + 1,
                            "the head's MAC does not verify with the audit key: records were "
                            "removed from the end", checked)
    return VerifyResult(True, count, None, "chain intact", checked)


# --- reading and exporting -------------------------------------------------------------------

def recent(session: Session, *, limit: int = 50, tenant: str | None = None
           ) -> list[AuditRecord]:
    """The last ``limit`` records (of ``tenant``'s, when given)."""
    query = select(AuditRecord)
    if tenant is not None:
        query = query.where(AuditRecord.tenant == tenant)
    with session.begin():
        rows = session.execute(
            query.order_by(AuditRecord.seq.desc()).limit(limit)
        ).scalars().all()
        return list(reversed(rows))


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def detail_of(rec: AuditRecord) -> Any:
    """The record's detail parsed (the JSON it was written as; a text that is not JSON as it
    is)."""
    try:
        return json.loads(rec.detail)
    except json.JSONDecodeError:
        return rec.detail


def record_json(rec: AuditRecord) -> dict[str, Any]:
    """One record as a SIEM takes it: the stored fields, the time in ISO 8601, the detail
    parsed."""
    out = {"type": RECORD_TYPE, "seq": rec.seq, "at": rec.at, "time": _iso(rec.at),
           "actor": rec.actor, "action": rec.action, "subject": rec.subject,
           "detail": detail_of(rec),
           "prev_hash": rec.prev_hash, "hash": rec.hash, "mac": rec.mac}
    if rec.tenant and rec.tenant != DEFAULT_TENANT:
        out["tenant"] = rec.tenant
    return out


def iter_records(session: Session, *, since: int = 0, batch: int = 2000,
                 tenant: str | None = None) -> Iterator[AuditRecord]:
    """Records after ``since`` (of ``tenant``'s, when given), in order, a batch per short
    transaction."""
    last = since
    scope = () if tenant is None else (AuditRecord.tenant == tenant,)
    while True:
        with session.begin():
            rows = session.execute(
                select(AuditRecord).where(AuditRecord.seq > last, *scope)
                .order_by(AuditRecord.seq).limit(batch)
            ).scalars().all()
            session.expunge_all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def export_lines(session: Session, *, since: int = 0, fmt: str = "jsonl", now: int,
                 node: str | None = None, tenant: str | None = None) -> Iterator[str]:
    """The records after ``since`` as JSON lines or RFC 5424 syslog messages, then one signed
    checkpoint of the last record exported (so the SIEM holds the anchor too)."""
    if fmt not in ("jsonl", "syslog"):
        raise InvalidInputError("export format: jsonl or syslog")
    key = session_key(session)
    host = (node or socket.gethostname())[:64]
    last: tuple[int, str] | None = None
    for rec in iter_records(session, since=since, tenant=tenant):
        yield json.dumps(record_json(rec), sort_keys=True) if fmt == "jsonl" else \
            syslog_line(rec, host)
        last = (rec.seq, rec.hash)
    if last is None:
        return
    cp = sign_checkpoint(key, seq=last[0], digest=last[1], at=now, node=host)
    yield json.dumps(cp.to_json(), sort_keys=True) if fmt == "jsonl" else \
        _syslog(now, host, "audit.checkpoint",
                {"seq": str(cp.seq), "hash": cp.hash, "key_id": cp.key_id},
                json.dumps(cp.to_json(), sort_keys=True))


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _syslog(at: int, host: str, msgid: str, params: dict[str, str], message: str) -> str:
    stamp = _iso(at)
    safe_id = "".join(c for c in msgid if 33 <= ord(c) <= 126)[:32] or "-"
    safe_host = "".join(c for c in host if 33 <= ord(c) <= 126)[:255] or "-"
    sd = "".join(f' {k}="{_sd_value(v)}"' for k, v in params.items())
    return (f"<{_SYSLOG_PRI}>1 {stamp} {safe_host} suture-scheduler - {safe_id} "
            f"[{SYSLOG_SD_ID}{sd}] {message}")


def syslog_line(rec: AuditRecord, host: str) -> str:
    """One record as an RFC 5424 message: facility log-audit, MSGID the action, the record's
    fields as structured data, the detail (JSON) as the message."""
    return _syslog(rec.at, host, rec.action,
                   {"seq": str(rec.seq), "actor": rec.actor, "subject": rec.subject,
                    "hash": rec.hash, "mac": rec.mac or ""}, rec.detail)
