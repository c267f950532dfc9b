"""Keys, URLs, retry delays and error messages shared by the STT and TTS clients."""

from __future__ import annotations

import email.utils
import json
import os
import random
import time

from parley_deepgram.errors import DeepgramError

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def api_key_from(api_key: str | None) -> str:
    key = api_key or os.environ.get("DEEPGRAM_API_KEY")
    if not key:
        raise ValueError(
            "Deepgram needs an API key: set DEEPGRAM_API_KEY in the environment or pass "
            "api_key=... (create one at https://console.deepgram.com)"
        )
    return key


def with_scheme(url: str, secure: str, plain: str) -> str:
    """``url`` with its scheme turned into ``secure``/``plain`` (e.g. https -> wss)."""
    url = url.rstrip("/")
    for prefix, scheme in (("https://", secure), ("wss://", secure), ("http://", plain)):
        if url.startswith(prefix):
            return scheme + url[len(prefix) :]
    if url.startswith("ws://"):
        return plain + url[len("ws://") :]
    return url


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


def http_error(
    status: int, body: bytes | str, headers_error: str | None = None, retry_after: str | None = None
) -> DeepgramError:
    """A `DeepgramError` from a refused request (JSON body ``err_msg``/``message``, or the
    ``dg-error`` header a refused WebSocket handshake carries)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    detail = headers_error or text.strip()[:300]
    try:
        data = json.loads(text)
        detail = data.get("err_msg") or data.get("message") or data.get("reason") or detail
    except (ValueError, AttributeError):
        pass
    hint = " (check DEEPGRAM_API_KEY)" if status in (401, 403) else ""
    if status == 429:
        hint = " (too many concurrent requests)"
    return DeepgramError(
        f"Deepgram answered HTTP {status}: {detail or 'no details'}{hint}",
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=retry_after,
    )
