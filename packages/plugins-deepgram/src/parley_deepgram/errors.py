"""The exception type the Deepgram parts raise for provider failures."""

from __future__ import annotations

from parley.errors import ProviderError


class DeepgramError(ProviderError):
    """Deepgram refused or failed a request (a `parley.ProviderError`: ``status``,
    ``retryable``, ``retry_after``). A connection that breaks mid-stream raises
    `parley.ProviderDisconnected` instead."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(
            message,
            provider="Deepgram",
            status=status,
            retryable=retryable,
            retry_after=retry_after,
        )
