"""The one exception type the Gemini parts raise for provider failures."""

from __future__ import annotations


class GeminiError(Exception):
    """Gemini refused or failed a request. ``status`` is the HTTP status (or WebSocket close
    code) when there was one; ``retryable`` says whether trying again later may help, and
    ``retry_after`` is the server's Retry-After header, if any."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
