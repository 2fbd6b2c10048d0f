# Named errors of the loader. Every failure the loader can report has its own class, and every
# class carries a small integer code that fits the journal's `progress` field of a FAILED record.
# The codes are a copy of the loader's table in host/suture/formats/error_codes.toml (the one
# table of the device's error codes, docs/formats/error-codes.md), checked both ways by
# tests/formats/test_error_code_copies.py. The loader's range is 20..99: stage0 (1..19) and the
# agent (100..199) write into the same journal field, and no code is two layers'.
from micropython import const

ABORTED = const(43)  # not an exception: the scheduler asked to discard the staged update


class LoaderError(Exception):
    """Any other error: an install or a revert that failed on an OSError, or on an exception
    raised by the application's code."""

    code = 90


class CborError(LoaderError):
    """Malformed, oversized or unsupported CBOR."""

    code = 28


class SuitError(LoaderError):
    """A SUIT envelope or manifest that does not follow the format."""

    code = 20


class SuitUnsupported(SuitError):
    code = 21


class UnsignedError(SuitError):
    """The authentication wrapper holds no signature."""

    code = 22


class SignatureError(SuitError):
    """No trusted key verifies the COSE_Sign1 signature, or the manifest digest differs."""

    code = 23


class ConditionFailed(SuitError):
    """A SUIT condition (vendor, class, device identifier, image match) does not hold."""

    code = 24


class RollbackError(SuitError):
    """The manifest's sequence number is not above the installed version."""

    code = 25


class LoaderImageError(SuitError):
    """A release for the loader component whose payload is not a loader image for this board
    (magic, load address or size), or a component this device does not have."""

    code = 26


class SequenceNumberError(SuitError):
    """The manifest's sequence number does not fit in 32 bits: the journal keeps a release's
    number as u32 (docs/formats/journal.md), so a larger one would be truncated."""

    code = 27


class SizeError(LoaderError):
    """An input is larger than its ceiling (manifest, payload vs slot, path, file count)."""

    code = 30


class NoSpaceError(SizeError):
    """littlefs has no room for the bundle: refused before /app is touched (free blocks plus
    those of the running application's files, against the bundle's), or out of space while
    the bundle was written (ENOSPC)."""

    code = 33


class MemoryShortError(SizeError):
    """The heap ran out while an update was verified or staged: the update is refused (its
    record, if one was opened, is FAILED) and nothing else changes."""

    code = 34


class DeltaError(LoaderError):
    """A delta patch that does not follow docs/formats/delta.md, is not the manifest's, or
    does not produce its target: the record is FAILED and the full payload is the way left."""

    code = 35


class DigestError(LoaderError):
    """A payload, a staged image or an installed copy does not match its expected SHA-256."""

    code = 31


class BundleError(LoaderError):
    """An application bundle archive that does not follow docs/formats/bundle.md."""

    code = 32


class StateError(LoaderError):
    """The request does not fit the journal's current state (e.g. confirm outside TRIAL)."""

    code = 40


class InterruptedStagingError(LoaderError):
    """An operation was interrupted by a reset (download abandoned)."""

    code = 41


class BackupError(LoaderError):
    """The backup slot holds no valid backup."""

    code = 42


class FlashError(LoaderError):
    """Out-of-range or misaligned flash access."""

    code = 50


class FlashProgramError(FlashError):
    """Programming would need a 0->1 bit transition (the target was not erased)."""

    code = 51


class NvmError(LoaderError):
    code = 60


class NvmFull(NvmError):
    code = 61


class MigrationError(NvmError):
    """The new application's NVM migration (`nvm_migrations.py`, code the loader did not write)
    failed: it did not import, raised, returned something other than None or (schema, value),
    or ended the boot each time it ran (the INSTALLING record counts the attempts)."""

    code = 62


class TrustStoreError(LoaderError):
    """A trust-store update (docs/formats/trust-store.md) that does not follow the format or
    names keys that are not P-256 points."""

    code = 70


class TrustRollbackError(TrustStoreError):
    """A trust-store update whose version is not above the device's for that role."""

    code = 71


class KeyUnwrapError(SuitError):
    """An encrypted payload that none of the device's provisioned keys opens: no recipient of
    its SUIT_Encryption_Info is for a key the device has, or the AES key unwrap's integrity
    check fails (a wrong KEK). Refused before anything is installed."""

    code = 80


class EncryptionUnsupported(SuitUnsupported):
    """An encrypted payload whose content encryption or key distribution the device does not
    implement (the loader has A128KW/A256KW and ECDH-ES+A128KW/A256KW, A128CTR/A256CTR and
    A128GCM/A256GCM; cryptolib has no AES-192)."""

    code = 81


class TagMismatchError(DigestError):
    """The AES-GCM authentication tag of an encrypted payload does not verify: the ciphertext
    or its encryption info was altered. Checked before STAGED, so nothing is installed."""

    code = 82


class HospitalConditionFailed(ConditionFailed):
    """A condition of the hospital's manifest (docs/formats/suit-extensions.md) does not hold:
    the device is not in its device set, the rollout's window is not open on the device's
    clock (or the device has no clock to check it), or the manifest is for another device
    class. Checked before any section of the vendor's manifest runs: nothing is written."""

    code = 83


class HospitalManifestRequired(SuitError):
    """A vendor's envelope on its own, on a device provisioned to require the hospital's
    manifest over it (NVM record suit.hospital): a replayed or side-loaded release is refused
    before anything is written."""

    code = 84


class HospitalSignatureError(SignatureError):
    """The hospital's manifest is not signed by a key the device trusts for the scheduler's
    role (docs/formats/trust-store.md)."""

    code = 85


class PowerCut(BaseException):
    """The simulated supply failed. Derives from BaseException so that no handler in the loader
    catches it; the simulator's entry point turns it into the exit status 99."""


class Reset(BaseException):
    """Raised by a board's reset(): the entry point ends the run (the simulator's process, the
    firmware's machine) and the harness, or the hardware, starts the next boot."""
