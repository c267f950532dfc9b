"""Twilio's request signature (``X-Twilio-Signature``): proof that a request comes from Twilio.

Twilio signs each webhook and each Media Streams WebSocket handshake with the account's auth
token: HMAC-SHA1 over the full URL it requested (scheme, host, path and query, exactly as
configured), followed, for a form POST, by every parameter's name and value, sorted by name;
the digest is sent base64-encoded. The WebSocket handshake has no parameters: its URL alone
is signed. Checking it needs the URL as Twilio saw it, which behind a proxy or tunnel is not
the one this server sees: `public_url` rebuilds it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"


def compute_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]] = ()
) -> str:
    """The signature Twilio sends for a request to ``url`` with form ``params``."""
    items = params.items() if isinstance(params, Mapping) else params
    values: dict[str, set[str]] = {}
    for name, value in items:
        values.setdefault(name, set()).add(value)
    # By name, then a repeated name's distinct values sorted: as Twilio's helper libraries.
    payload = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_signature(
    auth_token: str,
    signature: str | None,
    url: str,
    params: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> bool:
    """Whether ``signature`` is Twilio's for this request (constant-time comparison).

    Twilio may have signed the URL with or without an explicit default port (``:443``): both
    forms are tried, as Twilio's own helper libraries do.
    """
    if not signature or not auth_token:
        return False
    items = list(params.items() if isinstance(params, Mapping) else params)
    for candidate in _url_forms(url):
        expected = compute_signature(auth_token, candidate, items)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
    return False


def public_url(
    seen: str, base: str | None = None, forwarded: Mapping[str, str] | None = None
) -> str:
    """The URL Twilio requested, from the one this server saw.

    ``base`` (``https://agent.example.com``, the public address Twilio was given) replaces
    the scheme and host; else ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` headers from a
    proxy do. A WebSocket URL keeps a WebSocket scheme (``https`` → ``wss``). A forged header
    can only make the check fail: it never stands in for the auth token.
    """
    parts = urlsplit(seen)
    scheme, netloc = parts.scheme, parts.netloc
    websocket = scheme in ("ws", "wss")
    if base:
        target = urlsplit(base if "://" in base else f"https://{base}")
        scheme, netloc = target.scheme, target.netloc
        prefix = target.path.rstrip("/")
    else:
        prefix = ""
        headers = {k.lower(): v for k, v in (forwarded or {}).items()}
        if proto := headers.get("x-forwarded-proto"):
            scheme = proto.split(",")[0].strip()
        if host := headers.get("x-forwarded-host"):
            netloc = host.split(",")[0].strip()
    if websocket:
        scheme = {"https": "wss", "http": "ws"}.get(scheme, scheme)
    else:
        scheme = {"wss": "https", "ws": "http"}.get(scheme, scheme)
    return urlunsplit((scheme, netloc, prefix + parts.path, parts.query, ""))


def _url_forms(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "wss": 443, "http": 80, "ws": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is not None and parts.port == default:
        bare = urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
        return [url, bare]
    if parts.port is None and default is not None:
        explicit = urlunsplit((parts.scheme, f"{host}:{default}", parts.path, parts.query, ""))
        return [url, explicit]
    return [url]
