"""The one exception tree of pulseloop.

Every error a user can meet derives from :class:`PulseloopError`, carries a stable
``code`` (the HTTP layer maps codes to statuses in one place) and a message that says
what was wrong and what to do::

    PulseloopError
    ├── InvalidDuration          a duration string/number that cannot be read
    ├── DuplicateStepName        a step name used twice in one run
    ├── ContextUnavailable       a ctx used outside its step
    ├── NotSerializable          a step result / event body that is not JSON
    ├── LimitExceeded            too many steps, payload too large, wait too long
    ├── StepFailed               a step that failed for good (re-raised on replay)
    ├── StepTimeout              one attempt ran longer than its timeout
    ├── RunTimeout               a whole run passed its deadline (stored as its error)
    ├── WaitTimeout              a durable wait whose deadline passed
    │   └── ScanTimeout          ... waiting for a facial scan
    ├── NoScanProvisioned        wait_for_scan with no scan made earlier in the run
    ├── ScanNotFound             a scan link or id that does not exist (HTTP 404)
    ├── ScanExpired              a scan link past its expiry (HTTP 410)
    ├── ScanAlreadyUploaded      a second upload to a single-use link (HTTP 409)
    ├── NonRetryableError        raise it from a step to fail it at once
    ├── LoopNotFound             trigger of a loop no App serves
    ├── RunNotFound              no run with that id (in this organization)
    ├── InvalidRunState          an operator action that does not fit the run's status
    ├── ScheduleNotFound         no schedule with that id (in this organization)
    ├── Unauthorized             no API key, an unknown key or a revoked one (HTTP 401)
    ├── RateLimited              too many requests from one client (HTTP 429)
    ├── InvalidRequest           a request the API cannot read (HTTP 422)
    │   ├── InvalidRunId         a run id outside 1-200 of ``A-Za-z0-9._~:-`` (HTTP 422)
    │   ├── InvalidSchedule      a bad cron expression, time zone, policy or date range
    │   ├── InvalidWebhook       a webhook URL that is not http(s), or an unknown event type
    │   └── InvalidFlowControl   a bad concurrency limit or key, priority or rate limit
    ├── WebhookNotFound          no webhook endpoint with that id (in this organization)
    ├── WebhookSignatureError    a notification whose signature does not verify (receivers)
    ├── OrgNotFound / OrgExists  organizations (``pulseloop orgs``)
    ├── KeyNotFound              an API key id that does not exist
    └── StoreError               the database refused (newer schema, unreachable)
        ├── SchemaTooNew
        └── EncryptionKeyError   the master key is missing, malformed or not this database's

Control flow that user code must never swallow (suspension, lease loss) derives from
``BaseException`` and lives in :mod:`pulseloop.engine.suspend`, not here.
"""

from __future__ import annotations

from typing import Any


class PulseloopError(Exception):
    """Root of every pulseloop error."""

    code = "pulseloop_error"


class InvalidDuration(PulseloopError, ValueError):
    """A duration that cannot be read, e.g. ``"30 minuets"``."""

    code = "invalid_duration"


class DuplicateStepName(PulseloopError):
    """A step name was used twice in one run; names are the replay key."""

    code = "duplicate_step_name"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"step name {name!r} is used twice in this run; step names are the replay key "
            "and must be unique within a run (add a distinguishing suffix, e.g. an index)"
        )
        self.name = name


class ContextUnavailable(PulseloopError):
    """A ``ctx`` was used after (or outside) the step it was given to."""

    code = "context_unavailable"


class NotSerializable(PulseloopError, TypeError):
    """A value that must be stored is not JSON-serialisable."""

    code = "not_serializable"


class LimitExceeded(PulseloopError):
    """A documented limit was exceeded (steps per run, payload size, wait length)."""

    code = "limit_exceeded"


class StepFailed(PulseloopError):
    """A step failed for good: its retries are used up or it raised NonRetryableError.

    Replays re-raise the same failure (same type name and message) without calling the
    step again, so code that catches it takes the same path every time.
    """

    code = "step_failed"

    def __init__(self, step: str, error_type: str, message: str, attempts: int) -> None:
        super().__init__(
            f"step {step!r} failed after {attempts} attempt(s): {error_type}: {message}"
        )
        self.step = step
        self.error_type = error_type
        self.error_message = message
        self.attempts = attempts


class StepTimeout(PulseloopError, TimeoutError):
    """One attempt of a step ran past its ``timeout``; it counts as a failed attempt."""

    code = "step_timeout"


class RunTimeout(PulseloopError, TimeoutError):
    """A run did not finish before its deadline (``Loop.run_timeout`` or the trigger's
    ``run_timeout``) and was failed, even if it was parked or paused at that moment.
    It is the run's stored error, never raised inside the run's code."""

    code = "run_timeout"


class WaitTimeout(PulseloopError, TimeoutError):
    """A durable wait reached its deadline before what it waited for arrived."""

    code = "wait_timeout"


class ScanTimeout(WaitTimeout):
    """``wait_for_scan`` reached its timeout before the scan finished.

    Catching it leaves the run healthy: it may provision another scan and wait again.
    """

    code = "scan_timeout"


class NoScanProvisioned(PulseloopError):
    """``wait_for_scan`` was reached but no earlier step of this run created a scan."""

    code = "no_scan_provisioned"


class ScanNotFound(PulseloopError, LookupError):
    """No scan behind this link or id."""

    code = "scan_not_found"


class ScanExpired(PulseloopError):
    """The scan's link expired; the loop must provision a new scan."""

    code = "scan_expired"


class ScanAlreadyUploaded(PulseloopError):
    """The link accepts one upload and already had it."""

    code = "scan_already_uploaded"


class NonRetryableError(PulseloopError):
    """Raise this (or a subclass) inside a step to fail it at once, without retries."""

    code = "non_retryable"


class LoopNotFound(PulseloopError, LookupError):
    """No loop of that name is served by this App."""

    code = "loop_not_found"


class RunNotFound(PulseloopError, LookupError):
    """No run with that id exists in this organization."""

    code = "run_not_found"


class InvalidRunState(PulseloopError):
    """An operator action that does not fit the run's current status."""

    code = "invalid_run_state"


class Unauthorized(PulseloopError):
    """The request carries no valid credential (missing, unknown or revoked API key)."""

    code = "unauthorized"


class RateLimited(PulseloopError):
    """Too many requests from one client; ``retry_after_s`` says when to try again."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidRequest(PulseloopError, ValueError):
    """A request the API cannot read; ``field`` names the offending part when known."""

    code = "invalid_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidRunId(InvalidRequest):
    """A run id given to trigger that is not 1-200 characters of ``A-Z a-z 0-9 . _ ~ : -``
    (or is only dots): ids appear in URLs and file names, so nothing else is accepted."""

    code = "invalid_run_id"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="id")


class InvalidSchedule(InvalidRequest):
    """A schedule that cannot be kept: a cron expression the cron library refuses, an
    unknown IANA time zone, an unknown missed-tick policy, an end before the start, or an
    id outside the allowed characters. ``field`` names the offending part."""

    code = "invalid_schedule"


class InvalidFlowControl(InvalidRequest):
    """A flow-control setting that cannot be kept: a concurrency limit below 1, a
    concurrency key function that fails or returns no text, a priority that is not an
    integer in range, or a rate limit that is not ``"<count>/<unit>"``. ``field`` names
    the offending part."""

    code = "invalid_flow_control"


class ScheduleNotFound(PulseloopError, LookupError):
    """No schedule with that id in this organization."""

    code = "schedule_not_found"


class InvalidWebhook(InvalidRequest):
    """A webhook endpoint that cannot be added: a URL that is not ``http``/``https`` with a
    host, or an event type pulseloop does not send. ``field`` names the offending part."""

    code = "invalid_webhook"


class WebhookNotFound(PulseloopError, LookupError):
    """No webhook endpoint with that id in this organization."""

    code = "webhook_not_found"


class WebhookSignatureError(PulseloopError, ValueError):
    """A received notification whose ``Pulseloop-Signature`` is missing, malformed, does
    not match the body and secret, or is outside the replay window
    (:func:`pulseloop.webhooks.verify_webhook`): reject the request."""

    code = "webhook_signature"


class OrgNotFound(PulseloopError, LookupError):
    """No organization of that name."""

    code = "org_not_found"


class OrgExists(PulseloopError):
    """An organization of that name exists already."""

    code = "org_exists"


class KeyNotFound(PulseloopError, LookupError):
    """No API key with that id."""

    code = "key_not_found"


class StoreError(PulseloopError):
    """The database could not be opened or refused an operation."""

    code = "store_error"


class SchemaTooNew(StoreError):
    """The database was written by a newer pulseloop; it is refused, never touched."""

    code = "schema_too_new"


class EncryptionKeyError(StoreError):
    """Payloads cannot be sealed or opened: the master key is missing or malformed, it is
    not the key this database's data keys were wrapped with, or a ciphertext does not
    belong where it was found. Never answered with garbage or plaintext."""

    code = "encryption_key"


class ChildLoopFailed(PulseloopError):
    """A child run started by ``step.run_loop`` ended without completing: it failed, was
    cancelled or passed its own deadline. Raised in the parent at that ``run_loop`` line
    (on the first run and every replay alike); catch it to carry on without the child."""

    code = "child_loop_failed"

    def __init__(self, child_run_id: str, loop: str, reason: str) -> None:
        super().__init__(
            f"child run {child_run_id!r} of loop {loop!r} did not complete: {reason}; see "
            "that run for details, retry it, or catch ChildLoopFailed to carry on"
        )
        self.child_run_id = child_run_id
        self.loop = loop
        self.reason = reason


def error_info(exc: BaseException) -> dict[str, Any]:
    """The JSON shape an error is stored as: type, message and (for ours) code."""
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "code": getattr(exc, "code", None),
    }
