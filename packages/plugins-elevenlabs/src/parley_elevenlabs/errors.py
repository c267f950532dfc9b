"""The exception type the ElevenLabs part raises for provider failures, and how a refused
request becomes one."""

from __future__ import annotations

from parley import providers
from parley.errors import ProviderError


class ElevenLabsError(ProviderError):
    """ElevenLabs refused or failed a request (a `parley.ProviderError`: ``status``,
    ``retryable``, ``retry_after``). A connection that breaks mid-stream raises
    `parley.ProviderDisconnected` instead."""

    provider_name = "ElevenLabs"


def http_error(status: int, body: bytes | str, retry_after: str | None = None) -> ElevenLabsError:
    """An `ElevenLabsError` from an error response (``{"detail": {"status", "message"}}``)."""
    text = providers.response_text(body)
    detail = (providers.json_body(text) or {}).get("detail", text.strip()[:300])
    if isinstance(detail, dict):
        detail = f"{detail.get('status', '')}: {detail.get('message', '')}".strip(": ")
    elif not isinstance(detail, str):
        detail = text.strip()[:300]
    hint = " (check ELEVENLABS_API_KEY)" if status in (401, 403) else ""
    if status == 404:
        hint = " (check the voice id)"
    elif status == 429:
        hint = " (rate limit or concurrency limit reached)"
    return providers.http_error(
        ElevenLabsError, "ElevenLabs", status, detail, hint=hint, retry_after=retry_after
    )
