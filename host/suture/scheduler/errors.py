"""The scheduler's error families. Each maps to one HTTP status in the API and one CLI message."""

from __future__ import annotations

from suture.errors import SutureError


class SchedulerError(SutureError):
    """Base of every error the scheduler raises on purpose."""

    status_code = 400
    code = "scheduler_error"
    #: extra response headers (a device resync on a 401)
    headers: dict[str, str] = {}  # noqa: RUF012 - replaced per instance, never mutated


class InvalidInputError(SchedulerError):
    """The request is well-formed but its content is not acceptable."""

    status_code = 422
    code = "invalid_input"


class FilterSyntaxError(InvalidInputError):
    """A rollout target filter expression does not parse."""

    code = "invalid_filter"


class ReleaseVerificationError(InvalidInputError):
    """A release's envelope or payload does not verify against the trust anchors."""

    code = "release_not_verified"


class PayloadTooLargeError(InvalidInputError):
    """A request body over its route's bound (refused before the rest is read)."""

    status_code = 413
    code = "too_large"


class NestingTooDeepError(SchedulerError):
    """A JSON body nested deeper than ``MAX_JSON_DEPTH`` (refused before it is parsed)."""

    status_code = 400
    code = "too_deep"


class NotFoundError(SchedulerError):
    status_code = 404
    code = "not_found"


class ConflictError(SchedulerError):
    """The operation is not allowed in the current state (e.g. start before approval)."""

    status_code = 409
    code = "conflict"


class NotRevertibleError(ConflictError):
    """A revert asked of devices that confirmed the release: a confirmed version keeps no
    backup to go back to, so only devices in trial can be reverted."""

    code = "not_revertible"


class AuthenticationError(SchedulerError):
    """Missing or bad credentials."""

    status_code = 401
    code = "unauthenticated"


class ForbiddenError(SchedulerError):
    """Authenticated, but not allowed to act on this resource."""

    status_code = 403
    code = "forbidden"


class ReplayError(AuthenticationError):
    """A device request reused (or went back on) its counter."""

    code = "replayed"


class ClockSkewError(AuthenticationError):
    """A device request's MAC verifies but its time is too far from the scheduler's."""

    code = "clock_skew"


class ConfigurationError(SchedulerError):
    """The scheduler is not set up (no signing key, default secret, ...)."""

    status_code = 500
    code = "misconfigured"
