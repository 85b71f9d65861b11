"""One API call with our own retries, on the signals the anthropic SDK itself honours, and on a broken stream.

The SDK's retries are off (max_retries=0) so that each retry is counted, logged and timed by us,
and because the SDK retries only until a response begins: a stream that breaks after its headers
(the connection cut, a read timeout between events, an `error` event such as `overloaded_error`
inside a 200 reply) reaches the caller as it is. Like the SDK: a server's `x-should-retry:
true|false` decides first; otherwise 408, 409, 429 and every 5xx (529, overloaded, included),
timeouts, dropped connections and broken streams are retried; the wait is the server's
`retry-after-ms` or `retry-after` (seconds or an HTTP date) where it sends one, else exponential
backoff with jitter, and never longer than `retry_max_wait_s`. Errors are read from the status
code, the response's headers and its JSON body, which every SDK version exposes; an error event
inside a stream is read by its error type, as the status the API gives that type.
"""
from __future__ import annotations

import email.utils
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import anthropic

from lab.agents.turns import BackendError

if TYPE_CHECKING:
    from lab.settings import ClaudeSettings

log = logging.getLogger("lab.agents.backends.claude")

RETRIED_STATUS = {408, 409, 429}   # and every 5xx
# The status the API answers each error type with: how an `error` event inside a 200 stream is read.
STATUS_OF_TYPE = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                  "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                  "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
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


def http_library():
    """The HTTP library the SDK is built on (httpx; httpx2 in later versions), as the SDK's own client class says:
    a stream that breaks after its headers raises that library's errors from inside the SDK's iterator."""
    base = next(c for c in anthropic.DefaultHttpxClient.__mro__ if c.__module__.partition(".")[0] != "anthropic")
    return sys.modules[base.__module__.partition(".")[0]]


def transient() -> tuple[type[Exception], ...]:
    """What a call may raise that is worth another try: the API's errors (read further by failure_of), the
    transport's (a connection cut or a read timeout in the middle of a stream) and an event cut mid-JSON."""
    return anthropic.APIStatusError, anthropic.APIConnectionError, http_library().TransportError, json.JSONDecodeError


def failure_of(exc: Exception, timeout_s: float) -> Failure:
    if isinstance(exc, anthropic.APIStatusError):
        return status_failure(exc.status_code, exc.response.headers, exc.body, exc.message)
    if isinstance(exc, anthropic.APITimeoutError):
        return Failure(f"no reply within {timeout_s:g} s", retry=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return Failure(f"connection failed: {exc.__cause__ or exc.message}", retry=True)
    if isinstance(exc, http_library().TimeoutException):
        return Failure(f"the stream broke: no event within {timeout_s:g} s", retry=True)
    return Failure(f"the stream broke: {type(exc).__name__}: {exc}", retry=True)


def status_failure(status: int, headers, body, fallback: str) -> Failure:
    kind, message = error_of(body)
    if status < 400:   # an error event inside a streamed 200 reply: read as the status the API gives its type
        as_status = STATUS_OF_TYPE.get(kind or "", 500)
        reason = f"the stream broke with an error event: {kind or 'error'}: {message or fallback}"
        return Failure(reason, as_status in RETRIED_STATUS or as_status >= 500, None, as_status == 413)
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


def call_with_retries(call: Callable[[], T], cfg: ClaudeSettings, timeout_s: float,
                      on_retry: Callable[[], None]) -> T:
    """call() until it succeeds; BackendError when refused or out of tries, PromptTooLong when too long.

    cfg is the [claude] section: max_retries, retry_base_s, retry_max_wait_s; timeout_s is the call's own.
    """
    tries = cfg.max_retries + 1
    for attempt in range(1, tries + 1):
        try:
            return call()
        except transient() as exc:   # an API timeout is a connection error
            failed = failure_of(exc, timeout_s)
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
