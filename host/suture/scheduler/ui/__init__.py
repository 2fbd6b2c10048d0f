"""The operator's web UI, served by the scheduler itself (``mount_ui``): server-rendered pages
over the same services, permissions and audit log as the API.

An operator signs in with an account's password; the session is an API token of
``services/operators.py`` (issued by the sign-in, revoked by the sign-out) kept in an
``HttpOnly``, ``SameSite=Strict`` cookie, authenticated by the same authenticator chain as a
bearer token. Every page and every action names the API operation it mirrors, and checks that
operation's permission (``x-suture-permission``), so a page is allowed or refused exactly as
the equivalent API request would be. Every form that changes something carries a CSRF token
derived from the session's token. All assets are local; live views poll an HTML fragment.
"""

from suture.scheduler.ui.mount import mount_ui

__all__ = ["mount_ui"]
