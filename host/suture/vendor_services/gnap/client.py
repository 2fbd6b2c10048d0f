"""A GNAP client instance (RFC 9635) for the hospital's scheduler.

The scheduler asks the vendor's AS for a token naming the rollout (release, devices, window),
fetches with it from the repository, rotates it before it expires and revokes it when done::

    client = GnapClient(http, grant_endpoint=as_uri, key=key, instance_id="st-mary")
    grant = client.request_grant([release_access("app-1.4.0", devices=[...],
                                                 window_start=t0, window_end=t1)])
    envelope = client.fetch(grant, f"{repo}/releases/app-1.4.0/envelope").content
    client.finish(grant)   # revoke the token and the grant

Every request is signed with the client's key (§7.3.1); every token is bound to it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from suture.vendor_services.clock import Clock, system_clock
from suture.vendor_services.errors import VendorServicesError
from suture.vendor_services.httpsig import SigningKey, sign_request

# Ceiling on an AS answer we parse.
MAX_RESPONSE = 256 * 1024
_CHALLENGE_PARAM = re.compile(r'([a-z_]+)="([^"]*)"')


class GnapClientError(VendorServicesError, RuntimeError):
    """A refusal from the AS or RS (``code`` is the GNAP error code when there is one)."""

    def __init__(self, status: int, code: str, description: str,
                 recall: dict[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {description}")
        self.status, self.code, self.description = status, code, description
        #: The vendor's recall of the release, when that is why the AS refused.
        self.recall = recall


@dataclass
class AccessToken:
    """A key-bound access token and how to manage it (RFC 9635 §3.2.1)."""

    value: str
    access: list[dict[str, Any]]
    expires_at: float
    manage_uri: str
    manage_token: str


@dataclass
class GrantState:
    """A grant as the client holds it: its token and how to continue it (§3.1)."""

    token: AccessToken
    continue_uri: str
    continue_token: str
    wait: int

    @property
    def reference(self) -> str:
        """What a device's schedule cites as the grant that allowed its installation.

        RFC 9635 gives a grant no identifier of its own; its continuation URI names it
        uniquely at the AS (and is useless without the continuation token and the client key).
        """
        return self.continue_uri


@dataclass(frozen=True)
class Challenge:
    """RFC 9635 §9.1: what a resource server said about where to get a token."""

    as_uri: str
    referrer: str | None


def parse_challenge(header: str) -> Challenge:
    """Parse ``WWW-Authenticate: GNAP as_uri="…", referrer="…"``."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme != "GNAP":
        raise GnapClientError(401, "invalid_challenge", f"not a GNAP challenge: {header[:80]}")
    params = dict(_CHALLENGE_PARAM.findall(rest))
    if "as_uri" not in params:
        raise GnapClientError(401, "invalid_challenge", "GNAP challenge without as_uri")
    return Challenge(params["as_uri"], params.get("referrer"))


def discover(http: httpx.Client, resource_url: str) -> Challenge:
    """RS-first discovery: call ``resource_url`` without a token and read the challenge."""
    response = http.get(resource_url)
    header = response.headers.get("www-authenticate")
    if response.status_code != 401 or header is None:
        raise GnapClientError(
            response.status_code, "no_challenge", f"{resource_url} did not ask for GNAP"
        )
    return parse_challenge(header)


def _error(response: httpx.Response) -> GnapClientError:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        recall = error.get("recall")
        return GnapClientError(
            response.status_code, str(error.get("code")), str(error.get("description", "")),
            recall if isinstance(recall, dict) else None,
        )
    if isinstance(error, str):
        return GnapClientError(response.status_code, error, "")
    return GnapClientError(response.status_code, "http_error", response.text[:200])


class GnapClient:
    """Talks to one AS (and its resource servers) with one key."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        grant_endpoint: str,
        key: SigningKey,
        instance_id: str | None = None,
        clock: Clock = system_clock,
        rotate_margin: float = 60.0,
    ) -> None:
        self.http = http
        self.grant_endpoint = grant_endpoint
        self.key = key
        self.instance_id = instance_id
        self.clock = clock
        self.rotate_margin = rotate_margin

    # -- transport ---------------------------------------------------------------------------

    def send(
        self, method: str, url: str, *, token: str | None = None, body: Any = None
    ) -> httpx.Response:
        """A signed request (RFC 9635 §7.3.1), with ``Authorization: GNAP`` (§7.2)."""
        headers: dict[str, str] = {}
        content = b""
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"GNAP {token}"
        signed = sign_request(self.key, method, url, headers, content or None, clock=self.clock)
        return self.http.request(method, url, content=content or None, headers=signed)

    def _json(self, response: httpx.Response, expected: int = 200) -> dict[str, Any]:
        if response.status_code != expected:
            raise _error(response)
        if len(response.content) > MAX_RESPONSE:
            raise GnapClientError(response.status_code, "invalid_response", "answer too large")
        try:
            data = response.json()
        except ValueError as e:
            raise GnapClientError(response.status_code, "invalid_response", str(e)) from e
        if not isinstance(data, dict):
            raise GnapClientError(response.status_code, "invalid_response", "not an object")
        return data

    def _token(self, data: Any) -> AccessToken:
        try:
            manage = data["manage"]
            return AccessToken(
                value=str(data["value"]),
                access=list(data["access"]),
                expires_at=self.clock() + float(data.get("expires_in", 0)),
                manage_uri=str(manage["uri"]),
                manage_token=str(manage["access_token"]["value"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise GnapClientError(200, "invalid_response", f"bad access_token: {e}") from e

    def _grant(self, data: dict[str, Any]) -> GrantState:
        token = self._token(data.get("access_token"))
        try:
            cont = data["continue"]
            return GrantState(
                token=token,
                continue_uri=str(cont["uri"]),
                continue_token=str(cont["access_token"]["value"]),
                wait=int(cont.get("wait", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise GnapClientError(200, "invalid_response", f"bad continue: {e}") from e

    # -- RFC 9635 §2, §5: grants --------------------------------------------------------------

    def request_grant(self, access: list[dict[str, Any]]) -> GrantState:
        """Ask for one key-bound token with ``access`` (§2.1.1)."""
        client: Any
        if self.instance_id is not None:
            client = self.instance_id  # §2.3.1: by reference
        else:
            client = {"key": {"proof": "httpsig", "jwk": self.key.jwk()}}  # §2.3.2: by value
        body = {"access_token": {"access": access}, "client": client}
        return self._grant(self._json(self.send("POST", self.grant_endpoint, body=body)))

    def poll(self, grant: GrantState) -> GrantState:
        """§5.2: continue the grant (after ``wait`` seconds); a fresh token replaces the old."""
        data = self._json(self.send("POST", grant.continue_uri, token=grant.continue_token))
        new = self._grant(data)
        grant.token, grant.wait = new.token, new.wait
        return grant

    def modify(self, grant: GrantState, access: list[dict[str, Any]]) -> GrantState:
        """§5.3: change the rollout; the AS judges it again and issues a new token."""
        body = {"access_token": {"access": access}}
        data = self._json(
            self.send("PATCH", grant.continue_uri, token=grant.continue_token, body=body)
        )
        grant.token = self._grant(data).token
        return grant

    def revoke_grant(self, grant: GrantState) -> None:
        """§5.4: end the grant and every token from it."""
        response = self.send("DELETE", grant.continue_uri, token=grant.continue_token)
        if response.status_code != 204:
            raise _error(response)

    # -- RFC 9635 §6: tokens ------------------------------------------------------------------

    def rotate(self, grant: GrantState) -> AccessToken:
        """§6.1: a new value for the same rights; the old value stops working."""
        token = grant.token
        data = self._json(self.send("POST", token.manage_uri, token=token.manage_token))
        grant.token = self._token(data.get("access_token"))
        return grant.token

    def revoke_token(self, grant: GrantState) -> None:
        """§6.2: revoke the current access token."""
        token = grant.token
        response = self.send("DELETE", token.manage_uri, token=token.manage_token)
        if response.status_code != 204:
            raise _error(response)

    def ensure_fresh(self, grant: GrantState) -> AccessToken:
        """Rotate the token when it has less than ``rotate_margin`` seconds left."""
        if grant.token.expires_at - self.clock() < self.rotate_margin:
            return self.rotate(grant)
        return grant.token

    def finish(self, grant: GrantState) -> None:
        """Done with the rollout's downloads: revoke the token, then the grant."""
        self.revoke_token(grant)
        self.revoke_grant(grant)

    # -- resource server ----------------------------------------------------------------------

    def fetch(self, grant: GrantState, url: str) -> httpx.Response:
        """A signed ``GET`` with the grant's (fresh) token; raises on any refusal."""
        token = self.ensure_fresh(grant)
        response = self.send("GET", url, token=token.value)
        if response.status_code != 200:
            raise _error(response)
        return response
