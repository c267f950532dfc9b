"""Terminal niceties for ``run`` and ``serve``: logging set-up, the splash and printed URLs."""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import TextIO

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_SPLASH = r"""
  ___          _
 | _ \__ _ _ _| |___ _  _
 |  _/ _` | '_| / -_) || |
 |_| \__,_|_| |_\___|\_, |
                     |__/   {version} · {mode}
"""


def configure_logging(log_level: str = "INFO", http_log_level: str = "INFO") -> None:
    """Parley's loggers at ``log_level``; uvicorn's at ``http_log_level``."""
    level = _level(log_level)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level,
            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    root.setLevel(min(level, _level(http_log_level)))
    logging.getLogger("parley").setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(_level(http_log_level))


def _level(name: str) -> int:
    upper = name.upper()
    if upper not in LOG_LEVELS:
        raise ValueError(f"unknown log level {name!r}; use one of {', '.join(LOG_LEVELS)}")
    level: int = getattr(logging, upper)
    return level


def show_splash(mode: str, *, enabled: bool = True, stream: TextIO | None = None) -> bool:
    """Print the banner when ``enabled`` and the stream is an interactive terminal."""
    out = stream or sys.stdout
    if not enabled or not out.isatty():
        return False
    from parley import __version__

    out.write(_SPLASH.format(version=__version__, mode=mode) + "\n")
    out.flush()
    return True


def base_url(host: str, port: int) -> str:
    """The URL people can open for a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
