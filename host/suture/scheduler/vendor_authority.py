"""A vendor's authorization server as the scheduler's services see it
(:class:`suture.scheduler.services.vendor_grants.VendorAuthority`), over GNAP (RFC 9635).

The scheduler asks for a grant whose rights describe a rollout, changes it when the rollout
changes (§5.3), polls it (§5.2) to learn of a withdrawal or a recall. It keeps the grant (its
continuation) and revokes every access token it is given at once: planning fetches nothing.

In the vendor-run mode (the vendor runs the scheduler for a hospital) the scheduler holds the
vendor's biscuit root key and issues each device a biscuit for its release and window
(:mod:`suture.vendor_services.biscuits`), which the device presents on the vendor's
``/direct/`` path.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from biscuit_auth import KeyPair

from suture.scheduler.errors import SchedulerError
from suture.scheduler.services.vendor_grants import GrantAnswer, IssuedBiscuit
from suture.scheduler.vendor_mirror import VendorEntry
from suture.vendor_services import biscuits
from suture.vendor_services.gnap.client import (
    AccessToken,
    GnapClient,
    GnapClientError,
    GrantState,
)
from suture.vendor_services.httpsig import SigningKey

#: Refusals that are the vendor's verdict on the rollout (anything else is an error).
_VERDICTS = frozenset({"request_denied", "user_denied"})


class VendorAuthorityError(SchedulerError, RuntimeError):
    """The vendor's AS could not be asked (unreachable, or it refused the client itself)."""

    status_code = 502
    code = "vendor_unavailable"


def _utc(moment: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC)


@dataclass
class GnapAuthority:
    """One vendor: its AS through ``client``, its repository ``location``, and for direct
    downloads its ``/direct/`` URL and biscuit root key."""

    name: str
    client: GnapClient
    location: str
    direct_url: str = ""
    biscuit_root: KeyPair | None = None

    def _answer(self, grant: GrantState) -> GrantAnswer:
        rights = grant.token.access[0] if grant.token.access else None
        # Planning fetches nothing: the token goes at once, the grant stays.
        self.client.revoke_token(grant)
        return GrantAnswer(True, reference=grant.continue_uri,
                           continue_token=grant.continue_token, rights=rights)

    def _refusal(self, e: GnapClientError) -> GrantAnswer:
        if e.code not in _VERDICTS:
            raise VendorAuthorityError(f"vendor {self.name}: {e}") from e
        return GrantAnswer(False, reason=e.description, recall=e.recall)

    @staticmethod
    def _held(reference: str, continue_token: str) -> GrantState:
        none = AccessToken(value="", access=[], expires_at=0.0, manage_uri="", manage_token="")
        return GrantState(token=none, continue_uri=reference, continue_token=continue_token,
                          wait=0)

    def request(self, right: dict[str, Any]) -> GrantAnswer:
        try:
            return self._answer(self.client.request_grant([right]))
        except GnapClientError as e:
            return self._refusal(e)

    def modify(self, reference: str, continue_token: str,
               right: dict[str, Any]) -> GrantAnswer:
        try:
            grant = self.client.modify(self._held(reference, continue_token), [right])
        except GnapClientError as e:
            if e.code == "invalid_continuation":  # the grant is gone: ask anew
                return self.request(right)
            return self._refusal(e)
        return self._answer(grant)

    def poll(self, reference: str, continue_token: str) -> GrantAnswer:
        try:
            grant = self.client.poll(self._held(reference, continue_token))
        except GnapClientError as e:
            if e.code == "invalid_continuation":
                return GrantAnswer(False, reason=f"the vendor ended the grant ({e.description})")
            if e.code == "too_fast":  # asked again within the grant's wait: nothing new yet
                return GrantAnswer(True, reference=reference, continue_token=continue_token)
            return self._refusal(e)
        return self._answer(grant)

    def issue_biscuit(self, device_id: str, vendor_release: str, not_before: int,
                      expires_at: int) -> IssuedBiscuit:
        if self.biscuit_root is None:
            raise VendorAuthorityError(f"vendor {self.name}: no biscuit root key for direct "
                                       "downloads")
        token = biscuits.issue(self.biscuit_root.private_key, device_id=device_id,
                               releases=[vendor_release], expires=_utc(expires_at))
        narrowed = biscuits.attenuate(token, release=vendor_release, expires=_utc(expires_at),
                                      not_before=_utc(not_before))
        return IssuedBiscuit(narrowed.to_base64(), token.revocation_ids[0])


def authority_for(entry: VendorEntry, http: httpx.Client) -> GnapAuthority:
    """The authority of a vendor of the scheduler's vendors file."""
    client = GnapClient(http, grant_endpoint=entry.as_uri,
                        key=SigningKey.from_file(Path(entry.client_key)),
                        instance_id=entry.instance_id)
    root = biscuits.load_root_key(Path(entry.biscuit_key)) if entry.biscuit_key else None
    return GnapAuthority(entry.name, client, entry.repository_url, entry.direct_url, root)
