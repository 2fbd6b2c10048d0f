# The loader's one door: the update agent and the application use the loader through this
# module only (tests/agent/test_loader_door.py fails when device/ imports any other loader
# module, or reaches past it). One Loader per boot, on the board the HAL selects; the heavy
# modules (SUIT, ES256, staging) are imported when first needed.
from loader.errors import ABORTED, LoaderError  # noqa: F401  (part of the API)
from loader.journal import (  # noqa: F401  (the journal's states, components and flags by name)
    BACKUP,
    CLOSED,
    COMPONENT_APP,
    COMPONENT_LOADER,
    CONFIRMED,
    DOWNLOADING,
    FAILED,
    FLAG_INSTALL_REQUESTED,
    FLAG_KEEP_BACKUP,
    FLAG_REVERT_REQUESTED,
    IDLE,
    INSTALLING,
    REVERTED,
    REVERTING,
    STAGED,
    TRIAL,
)

_loader = None


def loader():
    """The Loader of this boot: for the loader's own entry points and host-side tools; the
    agent and the application use the functions below."""
    global _loader
    if _loader is None:
        from loader.core import Loader
        from loader.hal import board

        _loader = Loader(board())
    return _loader


# ---- what the device is doing, and what it runs ---------------------------------------------
def current():
    """The journal's current record (loader.journal.Record: state, component, flags, version,
    size, digest, progress, seq, boot_count; name() is the state's name). Do not change it."""
    return loader().journal.current


status = current


def records():
    """Every valid journal record, oldest first (diagnostics)."""
    return loader().journal.records()


def installed():
    """The installed application: .version (its SUIT sequence number), .size, .digest."""
    return loader().installed()


def loader_seq():
    """The sequence number of the confirmed loader release (0: the factory loader)."""
    return loader().loader_seq()


def backup_version():
    """The version of the application in the backup slot, or None when it holds none."""
    hdr = loader().backup_header()
    return None if hdr is None else hdr.version


def component(name):
    """The journal component of a SUIT component name ("app", "loader"), or None when this
    device has no such component."""
    from loader.staging import COMPONENTS

    return COMPONENTS.get(name.encode())


def app_dir():
    """The folder of the installed application bundle."""
    return loader().app_dir


def nvm():
    """The versioned NVM store (loader.nvm.Nvm) as the running application sees it."""
    return loader().nvm()


# ---- staging an update ----------------------------------------------------------------------
def stage(envelope, stream, install=True, now=None):
    """Verify a SUIT envelope and copy its payload from stream (readinto) into the staging
    slot; STAGED, with INSTALL_REQUESTED when install. Returns the verified SUIT plan. now:
    the device's unix time, for the window of a hospital's manifest (None: no clock)."""
    from loader import staging

    return staging.stage(loader(), envelope, stream, install, now)


def begin_staging(envelope, now=None):
    """Verify a SUIT envelope and open its staging in pieces, resuming a DOWNLOADING record of
    the same payload. Returns the loader.staging.Stager: .offset (where the payload goes on),
    .size, .digest, .version and .component of the signed image; write(data) programs and
    hashes the next bytes; finish(install) records STAGED once size and digest match. For a
    delta release (docs/formats/delta.md) it is a loader.delta.DeltaStager: .offset, .size and
    .digest are the patch's (what is downloaded), .image_size and .image_digest the target's,
    .delta is True. A hospital's envelope (its manifest over the vendor's, integrated) is
    checked first: its signature under the scheduler's anchors and its conditions, the window
    at now (the device's unix time; None: no clock, and a window is refused).
    docs/formats/suit-extensions.md."""
    from loader import staging

    return staging.begin(loader(), envelope, now=now)


def abandon(code=ABORTED):
    """Discard a download in progress or a staged update not yet asked to install: FAILED with
    code (ABORTED: the scheduler asked; another layer's code for its own reason). Returns the
    current record."""
    from loader import staging

    return staging.abandon(loader(), code)


# ---- the update's steps after staging -------------------------------------------------------
def request_install():
    """Install the staged update at the next boot (then reset())."""
    loader().request_install()


def confirm():
    """The application is healthy: make the trial version permanent."""
    loader().confirm()


def request_revert():
    """Ask for the previous version back; it is restored at the next boot (then reset())."""
    loader().request_revert()


def reset():
    """End this boot: the board resets and the loader acts on the journal."""
    loader().board.reset()


# ---- signed documents ----------------------------------------------------------------------
def open_sign1(document, keys):
    """The payload of an ES256 COSE_Sign1 (tagged, payload attached) that one of keys (65-byte
    SEC1 points) signed, decoded from CBOR. Raises a LoaderError otherwise."""
    from loader import cose

    return cose.open_sign1(document, keys)


def sign_es256(private_key, message_hash):
    """ES256 (RFC 6979 nonces): the 64-byte r || s of a 32-byte hash with a 32-byte P-256
    private key (the device key the agent signs its reports with)."""
    from loader import ecdsa_p256

    return ecdsa_p256.sign(private_key, message_hash)


# ---- SUIT reports (docs/formats/suit-report.md) -------------------------------------------
def suit_trace():
    """What the SUIT processor did with the last envelope it processed (begin_staging, stage):
    a loader.suit.Trace (.digest of the manifest, .uri, .records of the conditions that held,
    .failed: the one that failed), or None. Taken once: a second call gives None. Does not
    import the SUIT processor when this boot has not used it."""
    import sys

    suit = sys.modules.get("loader.suit")
    if suit is None:
        return None
    t = suit.last
    suit.last = None
    return t


def suit_report(manifest_digest, fields, records=(), failed_at=None, uri=None, nonce=None,
                installed_digest=None, key=None, mac_key=None):
    """The device's SUIT report of fields (the agent's report: state, installed, error, ...)
    with the trace's records ([section, offset, component, command]) and failing record: a
    tagged COSE_Sign1 (ES256) under key (the device key, 32 bytes); without one, a tagged
    COSE_Mac0 (HMAC 256/256) under mac_key (suit_report_mac_key); the bare SUIT_Report (CBOR)
    when both are empty (the request's MAC then carries it)."""
    from loader import suit_report as sr

    rep = sr.report(manifest_digest, fields, records, failed_at, uri, nonce, installed_digest)
    if key:
        return sr.sign(rep, key)
    return sr.mac(rep, mac_key) if mac_key else sr.encode(rep)


def suit_report_mac_key(secret, device_id):
    """The 32-byte key a device without a key pair MACs its SUIT reports with, derived from
    its device secret (docs/formats/suit-report.md)."""
    from loader import suit_report as sr

    return sr.mac_key(secret, device_id)


# ---- trust anchors (docs/formats/trust-store.md) -------------------------------------------
def trust_keys(role):
    """The 65-byte SEC1 points the device trusts now for role ("vendor": SUIT envelopes;
    "scheduler": schedule documents)."""
    from loader import trust

    return trust.keys(loader(), role)


def trust_version(role):
    """The version of role's anchors (0: as provisioned)."""
    from loader import trust

    return trust.anchors(loader(), role)[0]


def update_trust(document):
    """Verify a trust-store update against the current anchors of its role and make its keys
    the role's anchors (one atomic NVM record; the update already in place changes nothing).
    Returns (role, version); raises SignatureError, TrustStoreError or TrustRollbackError."""
    from loader import trust

    return trust.update(loader(), document)
