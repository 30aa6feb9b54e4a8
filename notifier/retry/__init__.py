"""Retry a failed task from its alert or notification (issue 23, item 1).

A task opts in (``@import_job(..., retryable=True)`` or ``notifier_retry_all_tasks``); the
worker seals its arguments (``payloads``) into the failure report, the recorder keeps them
as a failed run, an admin asks for a retry (``requests``), and a worker sends it.
"""

from __future__ import annotations

from .payloads import RETRY_KEY_ENV as RETRY_KEY_ENV
from .payloads import generate_key as generate_key
from .payloads import retry_keys as retry_keys
from .payloads import rotate as rotate
from .payloads import seal as seal
from .payloads import unseal as unseal
from .requests import FAILED as FAILED
from .requests import PENDING as PENDING
from .requests import RETRY_ALL_LIMIT as RETRY_ALL_LIMIT
from .requests import SENT as SENT
from .requests import SUCCEEDED as SUCCEEDED
from .requests import UNSENDABLE as UNSENDABLE
from .requests import NotRetryableError as NotRetryableError
from .requests import PendingRetry as PendingRetry
from .requests import RetryBatch as RetryBatch
from .requests import RetryInFlightError as RetryInFlightError
from .requests import RetrySummary as RetrySummary
from .requests import alert_summaries as alert_summaries
from .requests import alert_summary as alert_summary
from .requests import claim_pending as claim_pending
from .requests import finish_retry as finish_retry
from .requests import keep_failed_runs as keep_failed_runs
from .requests import notification_summaries as notification_summaries
from .requests import prune_retries as prune_retries
from .requests import reseal_runs as reseal_runs
from .requests import retry_alert as retry_alert
from .requests import retry_notification as retry_notification

__all__ = [
    "FAILED",
    "PENDING",
    "RETRY_ALL_LIMIT",
    "RETRY_KEY_ENV",
    "SENT",
    "SUCCEEDED",
    "UNSENDABLE",
    "NotRetryableError",
    "PendingRetry",
    "RetryBatch",
    "RetryInFlightError",
    "RetrySummary",
    "alert_summaries",
    "alert_summary",
    "claim_pending",
    "finish_retry",
    "generate_key",
    "keep_failed_runs",
    "notification_summaries",
    "prune_retries",
    "reseal_runs",
    "retry_alert",
    "retry_keys",
    "retry_notification",
    "rotate",
    "seal",
    "unseal",
]
