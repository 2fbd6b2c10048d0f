"""Mirror a release from a vendor's repository into the scheduler.

The scheduler is a GNAP client of the vendor (:mod:`suture.vendor_services.gnap.client`): it fetches
the release's files with a key-bound token whose rights name the rollout, checks each file
against the digests the repository lists, then hands them to
:func:`suture.scheduler.services.releases.import_release`, which verifies the SUIT signature
against the vendor's trust anchors and the payload against the manifest before storing
anything. A release that fails any check is not imported.

The release's deltas (published with it by the vendor: its listing's ``deltas``) come after it,
with the same token: each whose source image the scheduler holds (an earlier release of the
component with that payload digest) is fetched, checked against the listing and imported by
:func:`suture.scheduler.services.deltas.import_delta` (signature, the release's image, the patch,
the source). A delta whose source the scheduler lacks is skipped; one that fails a check is
refused and nothing of it is stored; both are reported (:class:`DeltaOutcome`) with the reason,
and the release stays imported (its devices get the full payload).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from suture.errors import SutureError
from suture.keys import PublicKey, load_public_key
from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import SchedulerError
from suture.scheduler.models import Release
from suture.scheduler.services import audit, deltas, vendor_releases
from suture.scheduler.services.releases import import_release
from suture.vendor_services.gnap.client import GnapClient, GnapClientError, GrantState, discover
from suture.vendor_services.gnap.rights import release_access
from suture.vendor_services.httpsig import SigningKey

ARTEFACTS = ("envelope", "payload", "sbom", "notes")
DELTA_ARTEFACTS = ("envelope", "patch")
# Ceilings on what is fetched (the repository enforces the same at publication).
MAX_ARTEFACT = {"envelope": 1 << 20, "payload": 64 << 20, "sbom": 4 << 20, "notes": 4 << 20,
                "patch": 64 << 20}
MAX_DELTAS = 64
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class MirrorError(SchedulerError, RuntimeError):
    """A release that could not be fetched, or whose files do not match their listing."""


@dataclass(frozen=True)
class FetchedRelease:
    """A release's files as fetched, checked against the repository's listing."""

    release_id: str
    envelope: bytes
    payload: bytes
    sbom: bytes
    notes: bytes
    #: The repository's listing of the release (``release.json``: digests, vendor metadata,
    #: recall).
    listing: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ListedDelta:
    """A delta of the release as its listing names it (``release.json``'s ``deltas``)."""

    source: str  #: the vendor's id of the source release
    source_sha256: str
    sizes: dict[str, int]
    sha256: dict[str, str]


@dataclass(frozen=True)
class DeltaOutcome:
    """What became of one delta of a mirrored release: ``imported`` (``delta_id``),
    ``skipped`` (the scheduler holds no release with its source image) or ``refused`` (a
    check failed; nothing of it stored), with the reason."""

    source: str
    status: str
    reason: str = ""
    delta_id: int | None = None
    source_release: int | None = None
    patch_size: int | None = None


@dataclass(frozen=True)
class MirrorResult:
    """A mirrored release and what became of its deltas."""

    release: Release
    deltas: list[DeltaOutcome] = field(default_factory=list)


def listed_deltas(release_id: str, listing: Any) -> list[ListedDelta]:
    """The deltas a release listing names; ``MirrorError`` when they are malformed or over
    the limits (checked before anything is imported)."""
    raw = listing.get("deltas", {}) if isinstance(listing, dict) else None
    if not isinstance(raw, dict) or len(raw) > MAX_DELTAS:
        raise MirrorError(f"{release_id}: malformed deltas in the release listing")
    out = []
    for source, entry in sorted(raw.items()):
        try:
            sizes = {n: int(entry[n]["size"]) for n in DELTA_ARTEFACTS}
            digests = {n: str(entry[n]["sha256"]) for n in DELTA_ARTEFACTS}
            source_sha256 = str(entry["source_sha256"])
        except (KeyError, TypeError, ValueError) as e:
            raise MirrorError(f"{release_id}: malformed delta from {source}: {e}") from e
        if not all(_SHA256_HEX.match(d) for d in [*digests.values(), source_sha256]) or any(
                not 0 < sizes[n] <= MAX_ARTEFACT[n] for n in DELTA_ARTEFACTS):
            raise MirrorError(f"{release_id}: the delta from {source} is malformed or too large")
        out.append(ListedDelta(str(source), source_sha256, sizes, digests))
    return out


def _fetch_listed(client: GnapClient, grant: GrantState, url: str, size: int, sha256: str, *,
                  mismatch: str) -> bytes:
    """The file at ``url``, which must have the ``size`` and ``sha256`` the release listing
    gives it; ``MirrorError(mismatch)`` otherwise."""
    data = client.fetch(grant, url).content
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise MirrorError(mismatch)
    return data


def fetch_release(
    client: GnapClient, grant: GrantState, repository_url: str, release_id: str
) -> FetchedRelease:
    """Fetch the four files of ``release_id`` with the grant's token."""
    base = repository_url.rstrip("/")
    try:
        listing: Any = client.fetch(grant, f"{base}/{release_id}").json()
        files: dict[str, bytes] = {}
        for name in ARTEFACTS:
            entry = listing["artefacts"][name]
            size, sha256 = int(entry["size"]), str(entry["sha256"])
            if size > MAX_ARTEFACT[name]:
                raise MirrorError(f"{release_id}/{name}: {size} bytes is over the limit")
            files[name] = _fetch_listed(
                client, grant, f"{base}/{release_id}/{name}", size, sha256,
                mismatch=f"{release_id}/{name}: does not match the repository listing")
    except GnapClientError as e:
        raise MirrorError(f"{release_id}: the vendor refused: {e}") from e
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise MirrorError(f"{release_id}: malformed release listing: {e}") from e
    return FetchedRelease(release_id, **files, listing=listing)


def mirror_release(
    session: Session,
    *,
    client: GnapClient,
    grant: GrantState,
    repository_url: str,
    release_id: str,
    trust_anchors: Sequence[PublicKey],
    actor: Principal,
    now: int | None = None,
    allow_missing_sbom: bool = False,
    vendor: str | None = None,
) -> MirrorResult:
    """Fetch ``release_id`` and import it (SUIT signature, digests and SBOM verified on
    import), then its deltas (:func:`mirror_deltas`). With ``vendor`` (the vendor's name in the
    vendors file) the release records where it came from and the vendor's metadata of its
    listing, validated before anything is imported (``services/vendor_releases.py``): its
    rollouts then need the vendor's grant."""
    fetched = fetch_release(client, grant, repository_url, release_id)
    try:
        notes = fetched.notes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MirrorError(f"{release_id}: release notes are not UTF-8") from e
    # The vendor's metadata and delta listing are checked before anything is imported.
    metadata, recall = vendor_releases.check_metadata(fetched.listing)
    listed = listed_deltas(release_id, fetched.listing)
    release = import_release(
        session,
        envelope=fetched.envelope,
        payload=fetched.payload,
        sbom=fetched.sbom or None,
        notes=notes,
        trust_anchors=trust_anchors,
        actor=actor,
        now=now,
        allow_missing_sbom=allow_missing_sbom,
    )
    if vendor is not None:
        release = vendor_releases.apply_metadata(
            session, release_id=release.id, vendor=vendor, vendor_release=release_id,
            metadata=metadata, recall=recall, actor=actor.name,
            now=release.imported_at if now is None else now)
    outcomes = mirror_deltas(session, client=client, grant=grant, repository_url=repository_url,
                             release_id=release_id, release=release, listed=listed,
                             trust_anchors=trust_anchors, actor=actor, now=now)
    return MirrorResult(release, outcomes)


def mirror_deltas(
    session: Session,
    *,
    client: GnapClient,
    grant: GrantState,
    repository_url: str,
    release_id: str,
    release: Release,
    listed: Sequence[ListedDelta],
    trust_anchors: Sequence[PublicKey],
    actor: Principal,
    now: int | None = None,
) -> list[DeltaOutcome]:
    """Fetch and import each listed delta of the vendor's ``release_id`` (imported here as
    ``release``) whose source image the scheduler holds; the others are skipped. Each delta
    is imported whole or not at all; the outcomes say which and why."""
    return [_mirror_delta(session, client=client, grant=grant,
                          base=f"{repository_url.rstrip('/')}/{release_id}/deltas/{d.source}",
                          release=release, listed=d, trust_anchors=trust_anchors, actor=actor,
                          now=now) for d in listed]


def _mirror_delta(session: Session, *, client: GnapClient, grant: GrantState, base: str,
                  release: Release, listed: ListedDelta, trust_anchors: Sequence[PublicKey],
                  actor: Principal, now: int | None) -> DeltaOutcome:
    with session.begin():
        source = session.execute(select(Release.id).where(
            Release.vendor_id == release.vendor_id, Release.class_id == release.class_id,
            Release.component == release.component,
            Release.payload_digest == listed.source_sha256,
            Release.sequence_number < release.sequence_number)).scalars().first()
    if source is None:
        return _not_imported(session, release, actor, now, DeltaOutcome(
            listed.source, "skipped",
            f"no earlier release here has its source image (the vendor's {listed.source}, "
            f"sha256 {listed.source_sha256[:16]}...)"))
    try:
        files = {name: _fetch_listed(client, grant, f"{base}/{name}", listed.sizes[name],
                                     listed.sha256[name],
                                     mismatch=f"its {name} does not match the repository listing")
                 for name in DELTA_ARTEFACTS}
        delta = deltas.import_delta(session, release_id=release.id, envelope=files["envelope"],
                                    patch=files["patch"], trust_anchors=trust_anchors,
                                    actor=actor, now=now)
    except (GnapClientError, httpx.HTTPError) as e:
        return _not_imported(session, release, actor, now, DeltaOutcome(
            listed.source, "refused", f"fetching it failed: {e}", source_release=source))
    except SchedulerError as e:
        return _not_imported(session, release, actor, now, DeltaOutcome(
            listed.source, "refused", str(e), source_release=source))
    return DeltaOutcome(listed.source, "imported", delta_id=delta.id, source_release=source,
                        patch_size=delta.payload_size)


def _not_imported(session: Session, release: Release, actor: Principal, now: int | None,
                  outcome: DeltaOutcome) -> DeltaOutcome:
    """``outcome`` (skipped or refused) kept in the audit log, under the release: a delta
    refused may be a file altered on its way, and the operators see why on the release's
    page."""
    with session.begin():
        audit.append(session, at=now if now is not None else int(time.time()),
                     actor=actor.name, action=deltas.NOT_IMPORTED_ACTIONS[outcome.status],
                     subject=f"release:{release.id}",
                     detail={"vendor_source": outcome.source, "reason": outcome.reason,
                             "source_release": outcome.source_release})
    return outcome


def mirror_vendor_release(
    session: Session,
    *,
    http: httpx.Client,
    entry: VendorEntry,
    release_id: str,
    devices: Sequence[str],
    window_start: int,
    window_end: int,
    actor: Principal,
    allow_missing_sbom: bool = False,
    now: int | None = None,
) -> tuple[MirrorResult, GrantState]:
    """Mirror ``release_id`` from the vendor ``entry`` of the vendors file, as
    ``suture scheduler vendor mirror`` and the operator UI do: ask the vendor's AS for a grant
    naming the release, the rollout's devices and window, fetch and import the release and its
    deltas (:func:`mirror_release`, recording the vendor), then revoke the grant. A refusal of
    the release (the operator's role, the vendor, a file that does not verify) raises a
    ``SchedulerError`` with the reason and imports nothing; a delta's is in the result."""
    require(actor, Permission.RELEASE_IMPORT)
    names = [d for d in devices if d]
    if not names:
        raise MirrorError("name at least one device of the rollout (the vendor's grant names them)")
    if window_end <= window_start:
        raise MirrorError("the rollout window ends before it starts")
    try:
        key = SigningKey.from_file(Path(entry.client_key))
        anchors = [load_public_key(Path(p)) for p in entry.trust_anchors]
    except (OSError, ValueError, SutureError) as e:
        raise MirrorError(f"vendor {entry.name}: its keys cannot be read: {e}") from e
    client = GnapClient(http, grant_endpoint=entry.as_uri, key=key, instance_id=entry.instance_id)
    try:
        grant = client.request_grant([
            release_access(release_id, devices=names, window_start=window_start,
                           window_end=window_end, location=entry.repository_url)
        ])
    except GnapClientError as e:
        raise MirrorError(f"{release_id}: the vendor refused: {e}") from e
    except httpx.HTTPError as e:
        raise MirrorError(f"vendor {entry.name} ({entry.as_uri}) cannot be reached: {e}") from e
    try:
        result = mirror_release(
            session, client=client, grant=grant, repository_url=entry.repository_url,
            release_id=release_id, trust_anchors=anchors, actor=actor, vendor=entry.name,
            allow_missing_sbom=allow_missing_sbom, now=now)
    except httpx.HTTPError as e:
        raise MirrorError(f"vendor {entry.name}: fetching {release_id} failed: {e}") from e
    finally:
        client.finish(grant)
    return result, grant


# -- the scheduler's list of vendors ----------------------------------------------------------


@dataclass(frozen=True)
class VendorEntry:
    """A vendor the scheduler mirrors from: where, who it is to the vendor, whom to trust."""

    name: str
    repository_url: str
    as_uri: str
    client_key: str
    trust_anchors: tuple[str, ...]
    instance_id: str | None = None
    #: The vendor-run mode: the vendor's biscuit root key (PEM path); devices then download
    #: from the vendor's ``/direct/`` path with biscuits this scheduler issues.
    biscuit_key: str | None = None

    @property
    def direct_url(self) -> str:
        """The vendor's direct-download base (beside ``/releases/``), in the vendor-run mode."""
        if self.biscuit_key is None:
            return ""
        base = self.repository_url.rstrip("/")
        return base.removesuffix("/releases") + "/direct/"


def load_vendors(path: Path) -> dict[str, VendorEntry]:
    """The vendors file (absent: none)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        entries = [
            VendorEntry(**{**e, "trust_anchors": tuple(e["trust_anchors"])})
            for e in data["vendors"]
        ]
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise MirrorError(f"{path}: not a vendors file: {e}") from e
    return {e.name: e for e in entries}


def save_vendors(path: Path, vendors: dict[str, VendorEntry]) -> None:
    """Write the vendors file atomically."""
    data = {"vendors": [{**asdict(v), "trust_anchors": list(v.trust_anchors)}
                        for v in vendors.values()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vendors.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def discover_vendor(http: httpx.Client, repository_url: str) -> str:
    """RS-first discovery (RFC 9635 §9.1), then the AS's discovery document (§9): returns the
    grant endpoint, after checking that it accepts HTTP Message Signatures."""
    try:
        challenge = discover(http, repository_url)
        response = http.options(challenge.as_uri)
        document = response.json() if response.status_code == 200 else {}
    except (GnapClientError, httpx.HTTPError, ValueError) as e:
        raise MirrorError(f"{repository_url}: not a GNAP-protected repository: {e}") from e
    if not isinstance(document, dict) or "httpsig" not in document.get(
        "key_proofs_supported", []
    ):
        raise MirrorError(f"{challenge.as_uri}: the AS does not accept httpsig key proofs")
    # The discovered endpoint must be the one the AS names itself (§9).
    if document.get("grant_request_endpoint") != challenge.as_uri:
        raise MirrorError(f"{challenge.as_uri}: the AS names another grant endpoint")
    return challenge.as_uri
