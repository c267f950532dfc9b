"""Keys, base URLs, the SDK client, the read deadline and the mid-stream errors shared by the
OpenAI parts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from parley.errors import ProviderDisconnected
from parley.providers import find_api_key

if TYPE_CHECKING:
    from openai import AsyncOpenAI

T = TypeVar("T")

KEY_VARIABLE = "OPENAI_API_KEY"
BASE_URL_VARIABLE = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Sent to OpenAI-compatible servers that want no key (Ollama, llama.cpp, vLLM by default).
NO_KEY = "no-key"


def resolve_base_url(base_url: str | None) -> str:
    return (base_url or os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL).rstrip("/")


def resolve_api_key(api_key: str | None, base_url: str, part: str) -> str:
    """The key from the argument or ``OPENAI_API_KEY``.

    OpenAI itself needs one, so its absence fails here rather than as a 401 mid-call; another
    (OpenAI-compatible) server may need none, and then a placeholder is sent.
    """
    if not is_openai(base_url):
        return api_key or os.environ.get(KEY_VARIABLE) or NO_KEY
    return find_api_key(
        api_key,
        KEY_VARIABLE,
        part=part,
        hint="for an OpenAI-compatible server that needs no key (Ollama, vLLM, llama.cpp) "
        "pass its base_url=...",
        signup="https://platform.openai.com/api-keys",
    )


def is_openai(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.com")


def make_client(
    *,
    api_key: str | None,
    base_url: str | None,
    part: str,
    timeout: float,
    max_retries: int,
    organization: str | None = None,
) -> AsyncOpenAI:
    """An async SDK client. The SDK retries connection errors, 408/409/429 and 5xx answers
    ``max_retries`` times with exponential backoff, honouring ``Retry-After``."""
    from openai import AsyncOpenAI

    url = resolve_base_url(base_url)
    return AsyncOpenAI(
        api_key=resolve_api_key(api_key, url, part),
        base_url=url,
        organization=organization,
        timeout=timeout,
        max_retries=max_retries,
    )


async def within(stream: AsyncIterable[T], timeout: float, what: str) -> AsyncIterator[T]:
    """Items of ``stream``; a gap longer than ``timeout`` seconds raises `TimeoutError`, so a
    stalled server never hangs a session."""
    iterator = aiter(stream)
    while True:
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                item = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            if scope.expired():
                raise TimeoutError(f"{what}: the server sent nothing for {timeout:g} s") from exc
            raise
        yield item


@contextlib.contextmanager
def mid_stream(what: str) -> Iterator[None]:
    """Around the reading of a streamed answer: a broken connection leaves as
    `parley.ProviderDisconnected` and the SDK's read timeout as `TimeoutError` (the original
    chained), whichever form the SDK gives them (see `stream_errors`)."""
    stalls, breaks = stream_errors()
    try:
        yield
    except stalls as exc:
        raise TimeoutError(f"{what}: the stream stalled: {exc}") from exc
    except breaks as exc:  # an ``error`` event is an APIError of another kind: not caught
        raise ProviderDisconnected(what, exc) from exc


def stream_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """What reading a started stream raises when it stalls, and when its connection breaks.

    The SDK wraps a failed read of a server-sent-event stream in ``APITimeoutError`` or
    ``APIConnectionError`` (the transport's error chained); other bodies (speech) and other
    SDK versions let the HTTP client's own error through: httpx2's, legacy httpx's when the
    client was built on it, or a TLS failure httpx2 leaves unmapped (``ssl.SSLError``,
    ``anyio.EndOfStream``). Timeouts come first: they are subclasses of the others.
    """
    import ssl

    import anyio
    import httpx2
    import openai

    stalls: list[type[Exception]] = [openai.APITimeoutError, httpx2.TimeoutException]
    breaks: list[type[Exception]] = [
        openai.APIConnectionError,
        httpx2.TransportError,
        ssl.SSLError,
        anyio.EndOfStream,
    ]
    legacy = sys.modules.get("httpx")  # the SDK takes a legacy httpx client, if one is loaded
    if legacy is not None:
        stalls.append(legacy.TimeoutException)
        breaks.append(legacy.TransportError)
    return tuple(stalls), tuple(breaks)


def sdk_kwargs(method: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as keyword arguments of an SDK ``method``: the ones it names are passed as
    such, the rest in ``extra_body`` (e.g. ``top_k`` for vLLM, ``options`` for Ollama)."""
    known = _parameters(getattr(method, "__func__", method))  # cached per function, not client
    kwargs = {k: v for k, v in options.items() if k in known}
    extra = {k: v for k, v in options.items() if k not in known}
    if extra:
        kwargs["extra_body"] = {**extra, **(kwargs.get("extra_body") or {})}
    return kwargs


@functools.cache
def _parameters(method: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(method).parameters)
