"""The exception type the Gemini parts raise for provider failures, how a refused request
becomes one, and the key lookup both parts share."""

from __future__ import annotations

from parley import providers
from parley.errors import ProviderError


class GeminiError(ProviderError):
    """Gemini refused or failed a request (a `parley.ProviderError`: ``status``,
    ``retryable``, ``retry_after``). A connection that breaks mid-stream raises
    `parley.ProviderDisconnected` instead."""

    provider_name = "Gemini"


def api_key_from(api_key: str | None) -> str:
    """The explicit key, else the environment's; a missing key says which variable to set."""
    return providers.find_api_key(
        api_key,
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        part="Gemini",
        signup="https://aistudio.google.com/apikey",
    )


def http_error(status: int, body: bytes | str, retry_after: str | None = None) -> GeminiError:
    """A `GeminiError` from an error response (Google's ``{"error": {...}}`` JSON body)."""
    text = providers.response_text(body)
    detail = text.strip()[:500]
    error = (providers.json_body(text) or {}).get("error")
    if isinstance(error, dict):
        detail = f"{error.get('status', '')}: {error.get('message', '')}".strip(": ")
    hint = ""
    if status in (401, 403) or "API_KEY" in detail or "API key" in detail:
        hint = " (check GEMINI_API_KEY)"
    elif status == 404:
        hint = " (check the model name)"
    elif status == 429:
        hint = " (rate limit or quota exceeded)"
    return providers.http_error(
        GeminiError, "Gemini", status, detail, hint=hint, retry_after=retry_after
    )


def retry_delay(attempt: int, retry_after: str | None = None) -> float:
    """Seconds before retry number ``attempt``: Gemini's backoff starts at half a second."""
    return providers.retry_delay(attempt, retry_after, base=0.5)
