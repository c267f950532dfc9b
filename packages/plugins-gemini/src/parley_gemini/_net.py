"""Keys, retry delays and error messages shared by the LLM and Live clients."""

from __future__ import annotations

import email.utils
import json
import os
import random
import time

from parley_gemini.errors import GeminiError

KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def api_key_from(api_key: str | None) -> str:
    """The explicit key, else the environment's; a missing key says which variable to set."""
    key = api_key or next((os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), None)
    if not key:
        raise ValueError(
            "Gemini needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment "
            "or pass api_key=... (get one at https://aistudio.google.com/apikey)"
        )
    return key


def retry_delay(attempt: int, retry_after: str | None = None, *, cap: float = 20.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): the server's Retry-After
    when it sent one, else exponential backoff with jitter."""
    if retry_after:
        try:
            return min(cap, max(0.0, float(retry_after)))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
                return min(cap, max(0.0, when.timestamp() - time.time()))
            except (TypeError, ValueError):
                pass  # unreadable: fall back to backoff
    return min(cap, 0.5 * 2.0 ** (attempt - 1)) * (0.75 + random.random() / 2)


def http_error(status: int, body: bytes | str, retry_after: str | None = None) -> GeminiError:
    """A `GeminiError` from an error response (Google's ``{"error": {...}}`` JSON body)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    detail = text.strip()[:500]
    try:
        error = json.loads(text).get("error", {})
        detail = f"{error.get('status', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        pass
    hint = ""
    if status in (401, 403) or "API_KEY" in detail or "API key" in detail:
        hint = " (check GEMINI_API_KEY)"
    elif status == 404:
        hint = " (check the model name)"
    elif status == 429:
        hint = " (rate limit or quota exceeded)"
    return GeminiError(
        f"Gemini answered HTTP {status}: {detail or 'no details'}{hint}",
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=retry_after,
    )
