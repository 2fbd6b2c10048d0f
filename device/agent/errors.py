# Named errors of the agent. Each carries a small code that goes into reports (`error.code`), and
# into the journal's `progress` when the agent abandons a download for its own reason. The codes
# are a copy of the agent's table in host/suture/formats/error_codes.toml (the one table of the
# device's error codes, docs/formats/error-codes.md), checked both ways by
# tests/formats/test_error_code_copies.py. The agent's range is 100..199: stage0's (1..19) and
# the loader's (20..99) never overlap it.
from micropython import const

# Codes of a report that are not exceptions:
NO_TRIAL_TO_REVERT = const(150)  # a revert was asked for, but the release was confirmed
UNHEALTHY = const(151)  # the trial failed its health check: the revert was requested


class AgentError(Exception):
    code = 100


class ScheduleError(AgentError):
    """A schedule document that must not be acted on (docs/formats/schedule.md, checks)."""

    code = 110


class ScheduleSignatureError(ScheduleError):
    """Not signed by the provisioned scheduler key, or not an ES256 COSE_Sign1."""

    code = 111


class ScheduleDeviceError(ScheduleError):
    """The document is for another device."""

    code = 112


class ScheduleReplayError(ScheduleError):
    """The schedule number is below the highest one accepted (a replay)."""

    code = 113


class ScheduleWindowError(ScheduleError):
    """The install window has closed, or is not open yet."""

    code = 114


class TransportError(AgentError):
    """The connection failed, timed out, or the peer broke the protocol."""

    code = 120


class HttpError(TransportError):
    """An HTTP status the agent did not expect."""

    code = 121

    def __init__(self, status, message="", retry_after=None):
        super().__init__("HTTP %d %s" % (status, message))
        self.status = status
        # A 503's Retry-After in seconds (the delta form); 0 when absent or not that.
        after = retry_after.strip() if retry_after else ""
        self.retry_after = int(after) if after.isdigit() else 0


class ResponseTooLarge(TransportError):
    """A response (headers or body) beyond its ceiling."""

    code = 122


class DownloadError(AgentError):
    """A download that does not match what the schedule announced (size, digest)."""

    code = 130


class ConfigError(AgentError):
    """The device lacks part of its identity (NVM keys written at provisioning)."""

    code = 140
