"""Stream's API key and secret: passed to the edge, or read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from parley.providers import MissingAPIKey

KEY_VARIABLE = "STREAM_API_KEY"
SECRET_VARIABLE = "STREAM_API_SECRET"
BASE_URL_VARIABLE = "STREAM_BASE_URL"
DASHBOARD = "https://dashboard.getstream.io"


@dataclass(frozen=True, slots=True)
class StreamCredentials:
    api_key: str
    api_secret: str
    base_url: str | None = None  # None: the SDK's default API host

    def __repr__(self) -> str:  # never print the secret
        return f"StreamCredentials(api_key={self.api_key!r}, base_url={self.base_url!r})"


def find_credentials(
    api_key: str | None = None, api_secret: str | None = None, base_url: str | None = None
) -> StreamCredentials:
    """The key and secret given, else ``STREAM_API_KEY`` / ``STREAM_API_SECRET``.

    Raises `parley.providers.MissingAPIKey` (a ValueError) naming every one that is missing.
    """
    key = api_key or os.environ.get(KEY_VARIABLE) or None
    secret = api_secret or os.environ.get(SECRET_VARIABLE) or None
    missing = [
        variable
        for variable, value in ((KEY_VARIABLE, key), (SECRET_VARIABLE, secret))
        if value is None
    ]
    if key is None or secret is None:
        raise MissingAPIKey(
            f"the Stream edge needs {KEY_VARIABLE} and {SECRET_VARIABLE}; "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. "
            "Set them in the environment or pass getstream.Edge(api_key=..., api_secret=...) "
            f"(both are on your app's page at {DASHBOARD})"
        )
    return StreamCredentials(key, secret, base_url or os.environ.get(BASE_URL_VARIABLE) or None)
