"""One API call with our own retries, on the signals the anthropic SDK itself honours.

The SDK's retries are off (max_retries=0) so that each retry is counted, logged and timed by us.
Like the SDK: a server's `x-should-retry: true|false` decides first; otherwise 408, 409, 429 and
every 5xx (529, overloaded, included), timeouts and dropped connections are retried; the wait is
the server's `retry-after-ms` or `retry-after` (seconds or an HTTP date) where it sends one, else
exponential backoff with jitter, and never longer than `retry_max_wait_s`. Errors are read from
the status code, the response's headers and its JSON body, which every SDK version exposes.
"""
from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import anthropic

from lab.agents.turns import BackendError

log = logging.getLogger("lab.agents.backends.claude")

RETRIED_STATUS = {408, 409, 429}   # and every 5xx
# A 400 with these words: no error code names the cause, so the wording is all there is.
TOO_LONG = ("prompt is too long", "exceed context limit")
T = TypeVar("T")


class PromptTooLong(BackendError):
    """The request does not fit the model's context window: the conversation must restart shorter."""


@dataclass(frozen=True)
class Failure:
    reason: str                    # one line: for the log, and the error once retries are spent
    retry: bool
    wait_s: float | None = None    # what the server asked for, if it did
    too_long: bool = False


def failure_of(exc: anthropic.APIError, timeout_s: float) -> Failure:
    if isinstance(exc, anthropic.APIStatusError):
        return status_failure(exc.status_code, exc.response.headers, exc.body, exc.message)
    if isinstance(exc, anthropic.APITimeoutError):
        return Failure(f"no reply within {timeout_s:g} s", retry=True)
    return Failure(f"connection failed: {exc.__cause__ or exc.message}", retry=True)


def status_failure(status: int, headers, body, fallback: str) -> Failure:
    kind, message = error_of(body)
    reason = f"HTTP {status} {kind or 'error'}: {message or fallback}"
    told = headers.get("x-should-retry")
    if told in ("true", "false"):
        retry = told == "true"
        reason += f" (x-should-retry: {told})"
    else:
        retry = status in RETRIED_STATUS or status >= 500
    too_long = status == 413 or (status == 400 and any(words in (message or "").lower() for words in TOO_LONG))
    return Failure(reason, retry and not too_long, retry_after_s(headers), too_long)


def error_of(body) -> tuple[str | None, str | None]:
    """(error.type, error.message) of an API error body: {"type": "error", "error": {"type", "message"}}."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    return (kind if isinstance(kind, str) else None), (message if isinstance(message, str) else None)


def retry_after_s(headers) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, else retry-after (seconds or an HTTP date)."""
    for name, per_second in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers.get(name)) / per_second
        except (TypeError, ValueError):
            pass
    when = email.utils.parsedate_tz(headers.get("retry-after") or "")
    return email.utils.mktime_tz(when) - time.time() if when else None


def backoff_s(attempt: int, base_s: float, max_wait_s: float) -> float:
    return min(base_s * 2 ** (attempt - 1), max_wait_s) * random.uniform(0.5, 1.0)


def call_with_retries(call: Callable[[], T], cfg, on_retry: Callable[[], None]) -> T:
    """call() until it succeeds; BackendError when refused or out of tries, PromptTooLong when too long.

    cfg is the [claude] section: max_retries, retry_base_s, retry_max_wait_s, timeout_s.
    """
    tries = cfg.max_retries + 1
    for attempt in range(1, tries + 1):
        try:
            return call()
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:   # a timeout is a connection error
            failed = failure_of(exc, cfg.timeout_s)
        if failed.too_long:
            raise PromptTooLong(f"the prompt does not fit the model's context window ({failed.reason})")
        if not failed.retry:
            raise BackendError(f"claude API refused the request ({failed.reason})")
        if attempt == tries:
            break
        asked = failed.wait_s
        wait = min(asked, cfg.retry_max_wait_s) if asked and asked > 0 else backoff_s(
            attempt, cfg.retry_base_s, cfg.retry_max_wait_s)
        log.warning("%s claude API try %d of %d failed (%s); retrying in %.1f s",
                    datetime.now().astimezone().isoformat(timespec="seconds"), attempt, tries, failed.reason, wait)
        on_retry()
        time.sleep(wait)
    raise BackendError(f"claude API call failed after {tries} tries; last: {failed.reason}")
