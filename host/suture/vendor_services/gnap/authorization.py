"""The GNAP authorization server's decisions (RFC 9635, RFC 9767), free of any web framework.

Each public method takes the request as received (method, absolute URL, headers, body) and
returns ``(status, JSON body or None)``, or raises :class:`GnapError`. The FastAPI routes in
:mod:`suture.vendor_services.gnap.server` only translate.
"""

from __future__ import annotations

import contextlib
import fnmatch
import secrets
from collections.abc import Callable
from typing import Any

from suture.vendor_services.clock import Clock
from suture.vendor_services.gnap.clients import RegisteredClient, Registry, RegistryError
from suture.vendor_services.gnap.errors import GnapError
from suture.vendor_services.gnap.grants import AccessToken, Grant, GrantStore, new_value, token_hash
from suture.vendor_services.gnap.jsonbody import parse_json
from suture.vendor_services.gnap.policies import PolicyError, PolicyStore
from suture.vendor_services.gnap.rights import covers_request, rollout_count, validate_access
from suture.vendor_services.httpsig import (
    JwkError,
    PublicKey,
    SignatureError,
    load_jwk,
    verify_request,
)
from suture.vendor_services.seen_nonces import SeenNonces
from suture.vendor_services.settings import VendorSettings
from suture.vendor_services.statedb import StateDb

# Bounds for a client presenting an unknown key (only with allow_unregistered_clients).
UNREGISTERED_MAX_DEVICES = 10
UNREGISTERED_MAX_WINDOW = 24 * 3600
Response = tuple[int, dict[str, Any] | None]


def presented_token(headers: Any) -> str | None:
    """RFC 9635 §7.2: ``Authorization: GNAP <token>``."""
    value = headers.get("authorization")
    if not isinstance(value, str):
        return None
    scheme, _, token = value.partition(" ")
    if scheme != "GNAP" or not token.strip():
        raise GnapError("invalid_request", "Authorization must be 'GNAP <token>'")
    return str(token.strip())


class AuthorizationServer:
    """Grants, continuation, token management, introspection and discovery.

    Grants, tokens and seen nonces live in ``state`` (the data directory's ``state.db`` in
    the app; a private in-memory database when none is given)."""

    def __init__(
        self,
        settings: VendorSettings,
        registry: Registry,
        *,
        release_exists: Callable[[str], bool],
        clock: Clock,
        state: StateDb | None = None,
        policies: PolicyStore | None = None,
        recall_of: Callable[[str], dict[str, Any] | None] = lambda _release: None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.release_exists = release_exists
        self.policies = policies if policies is not None else PolicyStore(None)
        self.recall_of = recall_of
        self.clock = clock
        state = state if state is not None else StateDb(None)
        self.store = GrantStore(state)
        self.nonces = SeenNonces(state, "as", clock)

    # -- helpers ---------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock())

    def _verify(
        self, method: str, url: str, headers: Any, body: bytes, kid: str, key: PublicKey, code: str
    ) -> None:
        try:
            verify_request(
                method,
                url,
                headers,
                body,
                kid=kid,
                public_key=key,
                nonces=self.nonces,
                clock=self.clock,
                max_age=self.settings.signature_max_age_seconds,
            )
        except SignatureError as e:
            # RFC 9635 §3.6 invalid_client: "the client's signature validation failed".
            raise GnapError(code, str(e), 401) from e

    def _registered(self, grant: Grant) -> bool:
        """A grant lasts only while its client is registered, with the same key (a removed
        client loses its grants at once, however ``clients.json`` was edited)."""
        if grant.instance_id is None:
            return self.settings.allow_unregistered_clients
        with contextlib.suppress(RegistryError):  # a half-edited file: keep the last good one
            self.registry.refresh()
        client = self.registry.clients.get(grant.instance_id)
        return client is not None and client.kid == grant.kid

    def _live(self, grant: Grant) -> bool:
        """Not revoked, and its client still registered (revoked now if it is not)."""
        if grant.revoked:
            return False
        if not self._registered(grant):
            self.store.revoke_grant(grant)
            return False
        return True

    def _token_response(self, token: AccessToken, value: str, manage: str) -> dict[str, Any]:
        # RFC 9635 §3.2.1: no "key" field means the token is bound to the client's key.
        return {
            "value": value,
            "access": token.access,
            "expires_in": max(0, token.expires_at - self._now()),
            "manage": {
                "uri": f"{self.settings.grant_endpoint}/token/{token.token_id}",
                "access_token": {"value": manage},
            },
        }

    def _check_policy(
        self, client: RegisteredClient | None, access: list[dict[str, Any]]
    ) -> None:
        now = self._now()
        patterns = client.releases if client else ["*"]
        max_devices = client.max_devices if client else UNREGISTERED_MAX_DEVICES
        max_window = client.max_window_seconds if client else UNREGISTERED_MAX_WINDOW
        for right in access:
            release = right["identifier"]
            if not self.release_exists(release):
                raise GnapError("request_denied", f"no published release {release!r}")
            if not any(fnmatch.fnmatchcase(release, p) for p in patterns):
                raise GnapError("request_denied", f"release {release!r} is not granted to you")
            locations = right.get("locations")
            if locations is not None and not all(
                u.startswith(self.settings.releases_url) for u in locations
            ):
                raise GnapError("request_denied", "locations must be this vendor's repository")
            if rollout_count(right["rollout"]) > max_devices:
                raise GnapError("request_denied", f"more than {max_devices} devices in a rollout")
            window = right["rollout"]["window"]
            if window["end"] <= now:
                raise GnapError("request_denied", "the rollout window has already ended")
            if window["end"] - window["start"] > max_window:
                raise GnapError("request_denied", f"rollout window longer than {max_window} s")
            recall = self.recall_of(release)
            if recall is not None:
                raise GnapError("request_denied",
                                f"release {release!r} was recalled by the vendor: "
                                f"{recall.get('reason', '')}", recall=recall)
            # The vendor's rollout policy for this hospital and release: the client's, or, from
            # a scheduler the vendor runs for several hospitals, the hospital's it names.
            hospital = right["rollout"].get("hospital")
            if hospital is not None and (client is None or hospital not in client.hospitals):
                raise GnapError("request_denied",
                                f"this client does not plan rollouts for hospital {hospital!r}")
            with contextlib.suppress(PolicyError):  # a half-edited file: keep the last good one
                self.policies.refresh()
            policy = self.policies.match(
                hospital if hospital is not None else client.instance_id if client else None,
                release)
            reason = policy.judge(right) if policy is not None else None
            if reason is not None:
                raise GnapError("request_denied", reason)

    # -- RFC 9635 §2: grant request ------------------------------------------------------

    def request_grant(self, method: str, url: str, headers: Any, body: bytes) -> Response:
        # A half-edited file: keep serving with the clients already known.
        with contextlib.suppress(RegistryError):
            self.registry.refresh()
        data = parse_json(body)
        # §2.3 / §2.3.1: the client instance, by value (key) or by reference (instance id).
        client_field = data.get("client")
        registered: RegisteredClient | None
        if isinstance(client_field, str):
            registered = self.registry.clients.get(client_field)
            if registered is None:
                raise GnapError("invalid_client", "unknown client instance_id")
            kid, key, jwk = registered.kid, registered.public_key, registered.jwk
        elif isinstance(client_field, dict):
            key_field = client_field.get("key")
            if not isinstance(key_field, dict):
                raise GnapError("invalid_request", "client.key is required")
            # §7.3: the proofing method; this AS supports httpsig (§7.3.1) only.
            proof = key_field.get("proof")
            if proof != "httpsig":
                raise GnapError("invalid_client", "client key proof must be 'httpsig'")
            try:
                kid, key = load_jwk(key_field.get("jwk"))
            except JwkError as e:
                raise GnapError("invalid_client", str(e)) from e
            jwk = key_field["jwk"]
            registered = self.registry.client_by_kid(kid)
            if registered is None and not self.settings.allow_unregistered_clients:
                raise GnapError("invalid_client", "this AS only serves registered clients")
        else:
            raise GnapError("invalid_request", "client is required (an object or instance id)")
        # §7.3.1: the request must be signed with the client's key.
        self._verify(method, url, headers, body, kid, key, "invalid_client")
        # §2.5: no interaction modes: the vendor's policy decides without a person.
        if "interact" in data:
            raise GnapError("invalid_interaction", "this AS supports no interaction modes")
        token_request = data.get("access_token")
        # §2.1.2 (several tokens) is not supported: one token per rollout.
        if not isinstance(token_request, dict):
            raise GnapError("invalid_request", "access_token must be a single request object")
        flags = token_request.get("flags", [])
        # §2.1.1: "bearer" asks for a token without key binding; suture never issues one.
        if not isinstance(flags, list) or flags:
            raise GnapError("invalid_flag", "no access token flags are supported (no bearer)")
        access = validate_access(token_request.get("access"))
        self._check_policy(registered, access)
        continue_value = new_value()
        grant = Grant(
            grant_id=secrets.token_urlsafe(12),
            kid=kid,
            jwk=dict(jwk),
            instance_id=registered.instance_id if registered else None,
            access=access,
            continue_hash=token_hash(continue_value),
            next_poll_at=self.clock() + self.settings.continue_wait_seconds,
        )
        self.store.purge(self._now())
        self.store.add_grant(grant)
        token, value, manage = self.store.issue(
            grant, now=self._now(), lifetime=self.settings.token_lifetime_seconds
        )
        # §3: the grant response; §3.1: how to continue it.
        response: dict[str, Any] = {
            "access_token": self._token_response(token, value, manage),
            "continue": {
                "access_token": {"value": continue_value},
                "uri": f"{self.settings.grant_endpoint}/continue/{grant.grant_id}",
                "wait": self.settings.continue_wait_seconds,
            },
        }
        return 200, response

    # -- RFC 9635 §5: continuation ---------------------------------------------------------

    def _continued_grant(
        self, grant_id: str, method: str, url: str, headers: Any, body: bytes
    ) -> Grant:
        grant = self.store.grant(grant_id)
        value = presented_token(headers)
        # §5: the continuation access token must be presented, and match this grant.
        if grant is None or value is None or grant.revoked:
            raise GnapError("invalid_continuation", "unknown or finished grant")
        if not secrets.compare_digest(token_hash(value), grant.continue_hash):
            raise GnapError("invalid_continuation", "wrong continuation access token")
        # §5: signed with the same key as the grant request.
        self._verify(method, url, headers, body, grant.kid, grant.public_key, "invalid_client")
        if not self._live(grant):
            raise GnapError("invalid_continuation", "the client is no longer registered")
        return grant

    def continue_grant(
        self, grant_id: str, method: str, url: str, headers: Any, body: bytes
    ) -> Response:
        grant = self._continued_grant(grant_id, method, url, headers, body)
        now = self.clock()
        if method == "DELETE":
            # §5.4: revoke the grant and every token issued from it.
            self.store.revoke_grant(grant)
            return 204, None
        if method == "PATCH":
            # §5.3: modify the grant: new access rights, judged by the same policy.
            data = parse_json(body)
            token_request = data.get("access_token")
            if not isinstance(token_request, dict):
                raise GnapError("invalid_request", "access_token must be an object")
            access = validate_access(token_request.get("access"))
            registered = self.registry.clients.get(grant.instance_id or "")
            self._check_policy(registered, access)
            grant.access = access
        else:
            # §5.2: polling; the client must respect "wait" (too_fast otherwise). The grant's
            # rights are judged again: a recall or a changed policy ends them.
            if now < grant.next_poll_at:
                raise GnapError("too_fast", f"wait {self.settings.continue_wait_seconds} s")
            grant.next_poll_at = now + self.settings.continue_wait_seconds
            self.store.update_grant(grant)
            self._check_policy(self.registry.clients.get(grant.instance_id or ""), grant.access)
        grant.next_poll_at = now + self.settings.continue_wait_seconds
        self.store.update_grant(grant)
        token, value, manage = self.store.issue(
            grant, now=self._now(), lifetime=self.settings.token_lifetime_seconds
        )
        return 200, {
            "access_token": self._token_response(token, value, manage),
            "continue": {
                "access_token": {"value": presented_token(headers)},
                "uri": f"{self.settings.grant_endpoint}/continue/{grant.grant_id}",
                "wait": self.settings.continue_wait_seconds,
            },
        }

    # -- RFC 9635 §6: token management -----------------------------------------------------

    def manage_token(
        self, token_id: str, method: str, url: str, headers: Any, body: bytes
    ) -> Response:
        token = self.store.token(token_id)
        value = presented_token(headers)
        # §6: the token management access token is presented, signed with the token's key.
        if token is None or value is None:
            raise GnapError("invalid_rotation", "unknown access token", 404)
        if not secrets.compare_digest(token_hash(value), token.manage_hash):
            raise GnapError("invalid_rotation", "wrong token management access token", 401)
        grant = self.store.grant(token.grant_id)
        if grant is None:
            raise GnapError("invalid_rotation", "unknown access token", 404)
        self._verify(method, url, headers, body, grant.kid, grant.public_key, "invalid_client")
        if method == "DELETE":
            # §6.2: revocation is idempotent: 204 even if already revoked.
            self.store.revoke_token(token)
            return 204, None
        # §6.1: rotation; a revoked or expired token cannot be rotated.
        if token.revoked or not self._live(grant):
            raise GnapError("invalid_rotation", "the access token was revoked")
        if token.expires_at <= self._now():
            raise GnapError("invalid_rotation", "the access token has expired")
        if body:
            # §6.1.1 key rotation is not offered: the token stays bound to the client key.
            raise GnapError("key_rotation_not_supported", "only the token value can be rotated")
        token, new = self.store.rotate(
            token, now=self._now(), lifetime=self.settings.token_lifetime_seconds
        )
        response = self._token_response(token, new, value)
        return 200, {"access_token": response}

    # -- RFC 9767 §3.3: introspection --------------------------------------------------------

    def introspect(self, method: str, url: str, headers: Any, body: bytes) -> Response:
        data = parse_json(body)
        rs_id = data.get("resource_server")
        rs = self.registry.resource_servers.get(rs_id) if isinstance(rs_id, str) else None
        # §3.2: the RS identifies itself (by reference here) and signs with its own key.
        if rs is None:
            raise GnapError("invalid_resource_server", "unknown resource server")
        kid, key = load_jwk(rs.jwk)
        try:
            verify_request(
                method, url, headers, body, kid=kid, public_key=key, nonces=self.nonces,
                clock=self.clock, max_age=self.settings.signature_max_age_seconds,
            )
        except SignatureError as e:
            raise GnapError("invalid_resource_server", str(e)) from e
        value = data.get("access_token")
        if not isinstance(value, str):
            raise GnapError("invalid_request", "access_token is required")
        inactive: Response = (200, {"active": False})
        token = self.store.by_value(value)
        # §3.3: active = issued here, not revoked, not expired, bound with "proof", and
        # appropriate for the "access" asked (when given). Otherwise only {"active": false}.
        if token is None or token.revoked:
            return inactive
        grant = self.store.grant(token.grant_id)
        if grant is None or not self._live(grant) or token.expires_at <= self._now():
            return inactive
        if data.get("proof", "httpsig") != "httpsig":
            return inactive
        wanted = data.get("access")
        if wanted is not None and not covers_request(
            token.access, wanted, self.settings.releases_url
        ):
            return inactive
        # The response never contains the token value (§3.3).
        return 200, {
            "active": True,
            "access": token.access,
            "key": {"proof": "httpsig", "jwk": grant.jwk},
            "flags": [],
            "exp": token.expires_at,
            "iat": token.issued_at,
            "iss": self.settings.grant_endpoint,
            **({"instance_id": grant.instance_id} if grant.instance_id else {}),
        }

    # -- discovery -----------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """RFC 9635 §9: the answer to ``OPTIONS`` on the grant endpoint."""
        return {
            "grant_request_endpoint": self.settings.grant_endpoint,
            "interaction_start_modes_supported": [],
            "interaction_finish_methods_supported": [],
            "key_proofs_supported": ["httpsig"],
        }

    def rs_discovery(self) -> dict[str, Any]:
        """RFC 9767 §3.1: ``.well-known/gnap-as-rs``."""
        return {
            "grant_request_endpoint": self.settings.grant_endpoint,
            "introspection_endpoint": f"{self.settings.grant_endpoint}/introspect",
            "key_proofs_supported": ["httpsig"],
        }
