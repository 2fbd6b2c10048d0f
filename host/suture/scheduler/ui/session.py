"""The UI's sign-in session: an API token in a cookie, and the CSRF token of its forms.

- ``suture_session``: the API token a password sign-in issued (``operators.login``), ``HttpOnly``
  (no script reads it), ``SameSite=Strict`` (no other site's page sends it), ``Secure`` when the
  scheduler is reached over HTTPS. It is authenticated by the API's authenticator chain, so an
  expired, revoked or disabled account's session ends at its next request.
- The CSRF token of a signed-in operator's forms is an HMAC of the session token: a page of
  another origin can neither read it nor compute it; every node of a multi-node scheduler
  derives the same one.
- Before sign-in, the sign-in form carries a random token also set as a ``SameSite=Strict``
  cookie (``suture_signin``), so another site cannot sign a browser in to an account of its
  choosing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from fastapi import Request, Response

from suture.scheduler.api.deps import get_state
from suture.scheduler.authn import authenticate
from suture.scheduler.authz import Principal
from suture.scheduler.errors import ForbiddenError, SchedulerError
from suture.scheduler.models import DEFAULT_TENANT

SESSION_COOKIE: Final = "suture_session"
SIGNIN_COOKIE: Final = "suture_signin"
CSRF_FIELD: Final = "csrf_token"
_CSRF_LABEL: Final = b"suture-ui-csrf-v1"


class CsrfError(ForbiddenError):
    """A form without the session's CSRF token: refused, nothing changed."""

    code = "csrf"


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def check_csrf(session_token: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(csrf_token(session_token), given):
        raise CsrfError("the form's CSRF token is missing or wrong: reload the page and retry")


def session_token(request: Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    return token if token and len(token) <= 256 else None


def signed_in(request: Request) -> Principal | None:
    """The operator of the request's session cookie, None when there is none or it no longer
    authenticates (expired, revoked, account disabled). The UI serves the scheduler's own
    tenant: an operator of another tenant of the vendor-run scheduler (services/tenants.py)
    works through the API and the CLI, which scope everything to its tenant."""
    token = session_token(request)
    if token is None:
        return None
    state = get_state(request)
    session = state.sessions()
    try:
        principal = authenticate(state.authenticators, session, f"Bearer {token}",
                                 state.clock.now())
    except SchedulerError:
        return None
    finally:
        session.close()
    return principal if principal.tenant == DEFAULT_TENANT else None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=_secure(request))
    response.delete_cookie(SIGNIN_COOKIE, path="/")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def signin_token(request: Request) -> str:
    """The sign-in form's token: the browser's, or a new one."""
    return request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)


def set_signin_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SIGNIN_COOKIE, token, max_age=3600, path="/", httponly=True,
                        samesite="strict", secure=_secure(request))


def check_signin_token(request: Request, given: str | None) -> None:
    cookie = request.cookies.get(SIGNIN_COOKIE)
    if not cookie or not given or not hmac.compare_digest(cookie, given):
        raise CsrfError("the sign-in form expired: reload the page and sign in again")
