"""How an operator request proves who it is: a chain of authenticators, tried in order.

Today the chain holds one, ``ApiTokenAuthenticator`` (``Authorization: Bearer sto_...``, the
tokens of ``services/operators.py``: issued by a password sign-in or made for a service
account). An identity provider plugs in as one more ``Authenticator``: an OIDC one would take
``Bearer <JWT>`` (no ``sto_`` prefix, so the token authenticator passes it on), check the
signature against the provider's JWKS, ``iss``, ``aud`` and ``exp``, map ``iss``/``sub`` to an
operator account an administrator linked, and return that account's ``Principal``; the roles
stay the scheduler's (docs/security.md, "Operators").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from suture.scheduler.authz import Principal
from suture.scheduler.errors import AuthenticationError
from suture.scheduler.services import operators


class Authenticator(Protocol):
    def authenticate(self, session: Session, authorization: str, now: int) -> Principal | None:
        """The operator the ``Authorization`` header names, None when the header is not this
        authenticator's kind, ``AuthenticationError`` when it is and does not verify."""


class ApiTokenAuthenticator:
    """``Authorization: Bearer sto_...``: an API token of ``services/operators.py``."""

    def authenticate(self, session: Session, authorization: str, now: int) -> Principal | None:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.startswith(operators.TOKEN_PREFIX):
            return None
        return operators.authenticate_token(session, token=credential.strip(), now=now)


DEFAULT_AUTHENTICATORS: tuple[Authenticator, ...] = (ApiTokenAuthenticator(),)


def authenticate(authenticators: Sequence[Authenticator], session: Session,
                 authorization: str | None, now: int) -> Principal:
    if not authorization:
        raise AuthenticationError("operator requests need 'Authorization: Bearer <token>' "
                                  "(`suture scheduler login`, or a token an administrator made)")
    for authenticator in authenticators:
        principal = authenticator.authenticate(session, authorization, now)
        if principal is not None:
            return principal
    raise AuthenticationError("operator token not recognised, expired or revoked")
