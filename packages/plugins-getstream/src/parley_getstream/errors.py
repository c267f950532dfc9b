"""`StreamError`: Stream's API refused or failed a request the edge made."""

from __future__ import annotations

from typing import Any

from parley.errors import ProviderError
from parley.providers import RETRYABLE_STATUS

from parley_getstream.credentials import KEY_VARIABLE, SECRET_VARIABLE


class StreamError(ProviderError):
    provider_name = "Stream"


def api_error(error: Any, doing: str) -> StreamError:
    """The SDK's `StreamApiException` as a `StreamError` that says what was being done and,
    for a refused key, what to check."""
    status = getattr(error, "status_code", None)
    detail = getattr(error, "message", "") or str(error)
    message = f"Stream refused to {doing} (HTTP {status}): {detail}"
    if status in (401, 403):
        message += f"; check {KEY_VARIABLE} and {SECRET_VARIABLE} (they belong to one Stream app)"
    rate_limit = getattr(error, "retry_after", None)
    return StreamError(
        message,
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=None if rate_limit is None else str(rate_limit),
    )
