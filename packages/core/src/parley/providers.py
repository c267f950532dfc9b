"""What every provider plugin needs around its network calls: the API key, the pause before a
retry, a `ProviderError` from a refused HTTP request, and URL schemes.

```python
from parley import providers

key = providers.find_api_key(api_key, "ACME_API_KEY", part="Acme", signup="https://acme.dev/keys")
...
if response.status_code != 200:
    raise providers.http_error(AcmeError, "Acme", response.status_code, detail, retry_after=...)
...
await asyncio.sleep(providers.retry_delay(attempt, error.retry_after))
```

Light to import (stdlib only), so a plugin's entry module may use it.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from parley.errors import ProviderError

__all__ = [
    "RETRYABLE_STATUS",
    "MissingAPIKey",
    "describe",
    "find_api_key",
    "http_error",
    "json_body",
    "response_text",
    "retry_delay",
    "with_scheme",
]

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses after which the same request may succeed later."""

E = TypeVar("E", bound=ProviderError)


class MissingAPIKey(ValueError):
    """No API key was passed and none of the environment variables holding one is set."""


def find_api_key(
    explicit: str | None,
    variable: str,
    *more_variables: str,
    part: str,
    signup: str = "",
    hint: str = "",
) -> str:
    """The key passed to ``part``, else the first of the variables set in the environment.

    With neither, `MissingAPIKey` names the variables, ``hint`` (another way out) and where to
    get a key (``signup``).
    """
    variables = (variable, *more_variables)
    key = explicit or next((os.environ[v] for v in variables if os.environ.get(v)), None)
    if key:
        return key
    names = variable + (f" (or {', '.join(more_variables)})" if more_variables else "")
    message = f"{part} needs an API key: set {names} in the environment or pass api_key=..."
    if hint:
        message += f"; {hint}"
    if signup:
        message += f" (get one at {signup})"
    raise MissingAPIKey(message)


def retry_delay(
    attempt: int, retry_after: str | None = None, *, base: float = 0.25, cap: float = 20.0
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): the server's ``Retry-After``
    (seconds or an HTTP date) when it sent one, else ``base`` doubled per attempt with ±25 %
    jitter; never more than ``cap``."""
    if retry_after:
        try:
            return min(cap, max(0.0, float(retry_after)))
        except ValueError:
            import email.utils  # only for a date; keeps the module light

            try:
                when = email.utils.parsedate_to_datetime(retry_after)
                return min(cap, max(0.0, when.timestamp() - time.time()))
            except (TypeError, ValueError):
                pass  # unreadable: fall back to backoff
    return min(cap, base * 2.0 ** (attempt - 1)) * (0.75 + random.random() / 2)


def response_text(body: bytes | str) -> str:
    """An HTTP response body as text (undecodable bytes replaced)."""
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def json_body(text: str) -> dict[str, Any] | None:
    """The body's JSON object, or None when it is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def http_error(
    error: Callable[..., E],
    provider: str,
    status: int,
    detail: str,
    *,
    hint: str = "",
    retry_after: str | None = None,
) -> E:
    """``error`` (a `ProviderError` subclass taking ``status``, ``retryable`` and
    ``retry_after``) for a request ``provider`` refused with HTTP ``status``: the server's
    ``detail`` in the message, retryable for the `RETRYABLE_STATUS` (408, 429, 500, 502-504)."""
    return error(
        f"{provider} answered HTTP {status}: {detail or 'no details'}{hint}",
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=retry_after,
    )


def with_scheme(url: str, secure: str, plain: str) -> str:
    """``url`` without a trailing slash, its scheme turned into ``secure`` (from https or wss)
    or ``plain`` (from http or ws), e.g. ``with_scheme(url, "wss://", "ws://")``."""
    url = url.rstrip("/")
    for prefix, scheme in (
        ("https://", secure),
        ("wss://", secure),
        ("http://", plain),
        ("ws://", plain),
    ):
        if url.startswith(prefix):
            return scheme + url[len(prefix) :]
    return url


def describe(part: object) -> str:
    """How the engine names a provider in errors and logs: its class, and its model if any."""
    model = getattr(part, "model", "")
    return f"{type(part).__name__} ({model})" if model else type(part).__name__
