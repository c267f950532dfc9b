"""Keys, retry delays and error messages for the ElevenLabs client."""

from __future__ import annotations

import email.utils
import json
import os
import random
import time

from parley_elevenlabs.errors import ElevenLabsError

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def api_key_from(api_key: str | None) -> str:
    key = api_key or os.environ.get("ELEVENLABS_API_KEY")
    if not key:
        raise ValueError(
            "ElevenLabs needs an API key: set ELEVENLABS_API_KEY in the environment or pass "
            "api_key=... (create one at https://elevenlabs.io/app/settings/api-keys)"
        )
    return key


def retry_delay(attempt: int, retry_after: str | None = None, *, cap: float = 20.0) -> float:
    """Seconds before retry number ``attempt`` (1-based): Retry-After when the server sent
    one, else exponential backoff with jitter."""
    if retry_after:
        try:
            return min(cap, max(0.0, float(retry_after)))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
                return min(cap, max(0.0, when.timestamp() - time.time()))
            except (TypeError, ValueError):
                pass
    return min(cap, 0.25 * 2.0 ** (attempt - 1)) * (0.75 + random.random() / 2)


def http_error(status: int, body: bytes | str, retry_after: str | None = None) -> ElevenLabsError:
    """A `ElevenLabsError` from an error response (``{"detail": {"status", "message"}}``)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    detail = text.strip()[:300]
    try:
        data = json.loads(text).get("detail", detail)
        if isinstance(data, dict):
            detail = f"{data.get('status', '')}: {data.get('message', '')}".strip(": ")
        elif isinstance(data, str):
            detail = data
    except (ValueError, AttributeError):
        pass
    hint = " (check ELEVENLABS_API_KEY)" if status in (401, 403) else ""
    if status == 404:
        hint = " (check the voice id)"
    elif status == 429:
        hint = " (rate limit or concurrency limit reached)"
    return ElevenLabsError(
        f"ElevenLabs answered HTTP {status}: {detail or 'no details'}{hint}",
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=retry_after,
    )
