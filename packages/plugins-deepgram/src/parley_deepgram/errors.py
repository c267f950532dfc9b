"""The exception type the Deepgram parts raise for provider failures, and how a refused
request becomes one."""

from __future__ import annotations

from parley import providers
from parley.errors import ProviderError


class DeepgramError(ProviderError):
    """Deepgram refused or failed a request (a `parley.ProviderError`: ``status``,
    ``retryable``, ``retry_after``). A connection that breaks mid-stream raises
    `parley.ProviderDisconnected` instead."""

    provider_name = "Deepgram"


def http_error(
    status: int, body: bytes | str, headers_error: str | None = None, retry_after: str | None = None
) -> DeepgramError:
    """A `DeepgramError` from a refused request (JSON body ``err_msg``/``message``, or the
    ``dg-error`` header a refused WebSocket handshake carries)."""
    text = providers.response_text(body)
    data = providers.json_body(text) or {}
    detail = data.get("err_msg") or data.get("message") or data.get("reason")
    hint = " (check DEEPGRAM_API_KEY)" if status in (401, 403) else ""
    if status == 429:
        hint = " (too many concurrent requests)"
    return providers.http_error(
        DeepgramError,
        "Deepgram",
        status,
        detail or headers_error or text.strip()[:300],
        hint=hint,
        retry_after=retry_after,
    )
