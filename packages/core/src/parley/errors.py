"""The errors every provider part raises, whatever SDK or protocol it speaks.

A part catches what its SDK, HTTP client or WebSocket library raises and re-raises it as one
of these, with the original chained (``raise ProviderDisconnected(...) from exc``), so an
application handles a failing provider the same way for every plugin and every version of
the SDK underneath.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ProviderError(Exception):
    """A provider refused or failed a request.

    ``provider`` names it (``"Deepgram"``, ``"Anthropic (claude-…)"``); ``status`` is the HTTP
    status or WebSocket close code when there was one; ``retryable`` says whether trying again
    later may help; ``retry_after`` is the server's ``Retry-After`` header, if any. A plugin's
    subclass names its provider once, in ``provider_name``, the default of ``provider``.
    """

    provider_name: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = self.provider_name if provider is None else provider
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its message and fields, not by calling __init__ again with the message
        # (the subclasses' constructors take other arguments): copy and pickle round-trip.
        return (_rebuild, (type(self), self.args, self.__dict__))


class ProviderDisconnected(ProviderError, ConnectionError):
    """The connection to the provider broke after its answer had started: what was streamed
    so far stands, the rest is lost. The transport's own error (or the SDK's wrapper of it) is
    the ``__cause__``; ``detail`` may be that error. Always ``retryable``: nothing says the
    provider itself is failing. Also a `ConnectionError`, which parts raised before."""

    def __init__(self, provider: str, detail: object = "", *, status: int | None = None) -> None:
        text = _describe(detail)
        reason = f": {text}" if text else ""
        super().__init__(
            f"{provider}: the connection broke mid-stream{reason}",
            provider=provider,
            status=status,
            retryable=True,
        )


def _describe(detail: object) -> str:
    """``detail`` as text; an exception by its message (its class name if it has none) and
    that of its cause, which is often the transport's own word ("Connection error. (peer
    closed connection without complete body)")."""
    if not isinstance(detail, BaseException):
        return str(detail)
    text = str(detail) or type(detail).__name__
    cause = detail.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


def _rebuild(
    cls: type[ProviderError], args: tuple[Any, ...], state: dict[str, Any]
) -> ProviderError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error
